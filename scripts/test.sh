#!/usr/bin/env bash
# Runs every Chorus test: Rust unit and integration tests, the Node interop suite against the
# real binary, the browser test of the web demo and the manifest checks; every suite is required.
# Starts what the tests need; run it from anywhere: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

step() { printf '\n=== %s\n' "$*"; }

apt_install() {
  step "installing $* (apt)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: install the Debian package(s) $* (or run this script as root)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need() {
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# What this script starts, it stops, however it ends.
started_redis_pidfile=""
cleanup() {
  if [ -n "$started_redis_pidfile" ] && [ -s "$started_redis_pidfile" ]; then
    kill "$(cat "$started_redis_pidfile")" 2>/dev/null || true
  fi
}
trap cleanup EXIT

need cargo "cargo (install Rust from https://rustup.rs)"
need node nodejs
need npm npm
need redis-server redis-server
need redis-cli redis-tools
need python3 python3

# The relay tests use the Redis at CHORUS_TEST_REDIS_URL (default 127.0.0.1:6379); start one
# there if nothing answers, and stop it at the end. Tests that need their own Redis (outages,
# the cluster) start it.
export CHORUS_TEST_REDIS_URL="${CHORUS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
if ! redis-cli -u "$CHORUS_TEST_REDIS_URL" ping >/dev/null 2>&1; then
  redis_port="${CHORUS_TEST_REDIS_URL##*:}"
  redis_port="${redis_port%%/*}"
  step "starting redis-server on 127.0.0.1:$redis_port"
  started_redis_pidfile="$(mktemp /tmp/chorus-test-redis.XXXXXX.pid)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --logfile /tmp/chorus-test-redis.log --pidfile "$started_redis_pidfile"
  up=""
  for _ in $(seq 100); do
    if redis-cli -u "$CHORUS_TEST_REDIS_URL" ping >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  if [ -z "$up" ]; then
    echo "redis-server did not answer at $CHORUS_TEST_REDIS_URL within 10 s; its log:" >&2
    cat /tmp/chorus-test-redis.log >&2 || true
    exit 1
  fi
fi

# The S3 store is tested against a real local S3 API: moto's server, from PyPI, in a virtual
# environment of its own under target/ (a plain Debian's python3 has no pip, and its system
# Python refuses pip installs), so nothing outside the checkout is touched.
MOTO_PIN='moto[server]==5.2.1'
MOTO_VENV="$target_dir/test-tools/moto"
if [ "$(cat "$MOTO_VENV/installed" 2>/dev/null)" != "$MOTO_PIN" ] || [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  step "installing $MOTO_PIN into $MOTO_VENV (once)"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "$MOTO_PIN"
  printf '%s' "$MOTO_PIN" >"$MOTO_VENV/installed"
fi
export CHORUS_TEST_MOTO="$MOTO_VENV/bin/moto_server"

# The server's --store s3 test runs a binary built with the S3 store, kept apart: the builds
# below and `cargo test --workspace` rebuild target/debug/chorus without it.
step "building the chorus binary with the S3 store"
cargo build -p chorus-cli --features chorus-store/s3 --locked
mkdir -p "$target_dir/test-tools"
cp "$target_dir/debug/chorus" "$target_dir/test-tools/chorus-s3"
export CHORUS_S3_BIN="$target_dir/test-tools/chorus-s3"

step "building the chorus binary"
cargo build -p chorus-cli --locked
export CHORUS_BIN="$target_dir/debug/chorus"

step "Rust tests (unit, property, integration)"
cargo test --workspace --locked

step "S3 snapshot store against moto (cargo feature s3)"
cargo test -p chorus-store --features s3 --locked

step "benchmark report code (loadtest/bench)"
(cd loadtest/bench && python3 -m unittest discover -s tests)

step "Node interop: npm yjs + y-websocket against the real server"
bash tests/interop/run.sh

# Every suite is mandatory: a missing script fails the run instead of skipping it.
step "web demo in headless Chromium"
bash web-demo/e2e/run.sh

step "Kubernetes manifests"
bash scripts/validate-k8s.sh

step "all tests passed"
