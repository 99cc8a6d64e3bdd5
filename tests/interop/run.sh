#!/usr/bin/env bash
# Runs the Node interop suite against the chorus binary (CHORUS_BIN, default target/debug/chorus).
# Usable from any directory, e.g. `bash tests/interop/run.sh` from the repo root after
# `cargo build -p chorus-cli`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# --omit=optional skips y-websocket 2.1.0's optional server-side deps (ws@6, y-leveldb and the
# native leveldown build); the suite only uses its client.
npm ci --omit=optional --no-audit --no-fund --loglevel=error >/dev/null
npm test
