#!/usr/bin/env bash
# Where a server's CPU goes under scenario A's load, kernel included: `perf record` with the
# software `cpu-clock` event (this VM has no hardware counters) on the server process only,
# while `chorus-loadtest run` drives 100 rooms × 10 users, 1 typist each at 10 updates/s.
# `profile-update-path.sh` counts user-space instructions; this one shows what it cannot see:
# the sends, the fsyncs, the wake-ups between threads.
#
#   loadtest/bench/profile-whole-path.sh OUT_DIR chorus [chorus serve flags...]
#   loadtest/bench/profile-whole-path.sh OUT_DIR relay
#
# Writes OUT_DIR/perf.data, the generator's report (loadtest.json), a breakdown by where the
# CPU went (breakdown.txt, from perf_breakdown.py) and, when `inferno-collapse-perf` and
# `inferno-flamegraph` are on PATH (`cargo install inferno`), a flame graph (flamegraph.svg).
# Env: CHORUS, RELAY, LOADTEST binaries (target/release/...), SECONDS_PROFILED (20).
set -euo pipefail

out=${1:?usage: profile-whole-path.sh OUT_DIR chorus|relay [server flags]}
which=${2:?usage: profile-whole-path.sh OUT_DIR chorus|relay [server flags]}
shift 2
chorus=${CHORUS:-target/release/chorus}
relay=${RELAY:-target/release/bare-relay}
loadtest=${LOADTEST:-target/release/chorus-loadtest}
profiled=${SECONDS_PROFILED:-20}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
data=$(mktemp -d)
log="$out/server.log"

case "$which" in
    chorus) "$chorus" serve --listen 127.0.0.1:0 --data-dir "$data" --log-format json "$@" >"$log" 2>&1 & ;;
    relay) "$relay" --listen 127.0.0.1:0 >"$log" 2>&1 & ;;
    *) echo "unknown server '$which': chorus or relay" >&2; exit 2 ;;
esac
server=$!
cleanup() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

addr=""
for _ in $(seq 1 100); do
    addr=$(grep -o '"addr":"127.0.0.1:[0-9]*"' "$log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start; see $log" >&2; exit 1; }

# Ramp-up 10 s and warm-up 5 s; the profile starts 5 s into the measured window.
"$loadtest" run --url "ws://$addr/ws" --rooms 100 --users 10 --typists 1 --rate 10 \
    --ramp-up 10s --warmup 5s --duration "$((profiled + 10))s" --server-pid "$server" \
    --json --no-progress >"$out/loadtest.json" &
generator=$!
sleep 20
perf record -e cpu-clock -F 999 -g -p "$server" -o "$out/perf.data" -- sleep "$profiled" 2>"$out/perf.log"
wait "$generator"

python3 "$here/perf_breakdown.py" "$out/perf.data" | tee "$out/breakdown.txt"
if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf >"$out/folded.txt"
    inferno-flamegraph --title "$which: scenario A" <"$out/folded.txt" >"$out/flamegraph.svg"
    echo "flame graph: $out/flamegraph.svg"
fi
