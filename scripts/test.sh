#!/usr/bin/env bash
# Runs every Chorus test: Rust unit and integration tests, the Node interop suite against the
# real binary, and (when present) the browser test of the web demo and the manifest checks.
# Starts what the tests need; run it from anywhere: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n=== %s\n' "$*"; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  step "installing $2 (apt)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1 is missing; install the Debian package $2 (or run this script as root)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

need cargo "cargo (install Rust from https://rustup.rs)"
need node nodejs
need npm npm
need redis-server redis-server
need redis-cli redis-tools
need python3 python3

# The relay tests use the Redis at CHORUS_TEST_REDIS_URL (default 127.0.0.1:6379); start one
# if nothing answers there. Tests that need their own Redis (outages, the cluster) start it.
export CHORUS_TEST_REDIS_URL="${CHORUS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
if ! redis-cli -u "$CHORUS_TEST_REDIS_URL" ping >/dev/null 2>&1; then
  step "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --logfile /tmp/chorus-test-redis.log
  for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# The S3 store is tested against a real local S3 API: moto's server, from PyPI.
if ! command -v moto_server >/dev/null 2>&1; then
  step "installing moto (local S3 server for the store tests)"
  python3 -m pip install --quiet 'moto[server]==5.2.1'
fi

step "building the chorus binary"
cargo build -p chorus-cli --locked
export CHORUS_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/chorus"

step "Rust tests (unit, property, integration)"
cargo test --workspace --locked

step "S3 snapshot store against moto (cargo feature s3)"
cargo test -p chorus-store --features s3 --locked

step "benchmark report code (loadtest/bench)"
(cd loadtest/bench && python3 -m unittest discover -s tests)

step "Node interop: npm yjs + y-websocket against the real server"
bash tests/interop/run.sh

if [ -x web-demo/e2e/run.sh ]; then
  step "web demo in headless Chromium"
  bash web-demo/e2e/run.sh
fi

if [ -x scripts/validate-k8s.sh ]; then
  step "Kubernetes manifests"
  bash scripts/validate-k8s.sh
fi

step "all tests passed"
