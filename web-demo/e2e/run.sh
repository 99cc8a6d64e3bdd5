#!/usr/bin/env bash
# Builds the web demo and runs its tests (unit + end to end in headless Chromium) against the
# real chorus binary. Usage: web-demo/e2e/run.sh   (CHORUS_BIN=/path/to/chorus to skip cargo)
set -euo pipefail

demo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_dir="$(cd "$demo_dir/.." && pwd)"

if [[ ! -x /usr/bin/chromium ]]; then
  echo "run.sh: installing Debian's chromium (playwright-core never downloads a browser)" >&2
  as_root=()
  [[ $(id -u) -ne 0 ]] && as_root=(sudo)
  "${as_root[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y --no-install-recommends \
    chromium fonts-dejavu-core fonts-liberation
fi

if [[ -z "${CHORUS_BIN:-}" ]]; then
  # Build rather than trust whatever binary is lying around: the test must exercise this tree.
  (cd "$repo_dir" && cargo build -p chorus-cli)
  export CHORUS_BIN="$repo_dir/target/debug/chorus"
fi

cd "$demo_dir"
npm ci --no-audit --no-fund
npm run build
node --test test/ e2e/
