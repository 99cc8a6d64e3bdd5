#!/usr/bin/env bash
# Generator CPU per delivery, side by side: runs the A and B shapes (shortened) with each given
# chorus-loadtest binary in turn, each against a fresh release `chorus serve` on a fresh data
# directory, and prints the generator's and the server's CPU per delivery.
#
#   loadtest/bench/generator-cpu.sh target/release/chorus /tmp/loadtest-before target/release/chorus-loadtest
#
# Every run is under 60 s. Figures on a shared machine move with its other work: compare only
# figures of the same invocation (the binaries alternate, shape by shape).
set -euo pipefail
chorus=$1
shift
shapes=(
  "S-stage|--rooms 100 --users 10 --typists 1 --rate 60 --ramp-up 5s --warmup 3s --duration 15s"
  "A-verify|--rooms 100 --users 10 --typists 1 --rate 10 --ramp-up 5s --warmup 3s --duration 20s --verify"
  "A|--rooms 100 --users 10 --typists 1 --rate 10 --ramp-up 5s --warmup 3s --duration 20s"
  "B|--rooms 1 --users 500 --typists 5 --rate 20 --ramp-up 5s --warmup 3s --duration 20s"
  "B-x3|--rooms 1 --users 500 --typists 5 --rate 60 --ramp-up 5s --warmup 3s --duration 15s"
)
for shape in "${shapes[@]}"; do
  [ -n "${SHAPES:-}" ] && [[ " $SHAPES " != *" ${shape%%|*} "* ]] && continue
  name=${shape%%|*}
  flags=${shape#*|}
  for loadtest in "$@"; do
    data=$(mktemp -d)
    log=$(mktemp)
    "$chorus" serve --listen 127.0.0.1:0 --data-dir "$data" --log-format json >"$log" 2>/dev/null &
    pid=$!
    addr=
    for _ in $(seq 100); do
      addr=$(grep -o '"message":"listening","addr":"[^"]*"' "$log" | head -1 | sed 's/.*"addr":"\([^"]*\)"/\1/') || true
      [ -n "$addr" ] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    "$loadtest" run --url "ws://$addr/ws" $flags --server-pid "$pid" --no-progress --json >"$log.json"
    python3 - "$name" "$loadtest" "$log.json" <<'PY'
import json, sys
name, binary, path = sys.argv[1:]
r = json.load(open(path))
g, s, u = r["generator"], r["servers"][0], r["updates"]
print(f"{name:9} {binary:45} deliveries/s {u['deliveries_per_sec']:9.0f} lost {u['lost']:3} "
      f"p99 {u['latency_ms']['p99_ms']:7.2f} ms | generator cpu {g['cpu_percent']:6.1f} % "
      f"{g['cpu_us_per_delivery']:6.2f} µs/delivery | server cpu {s['cpu_percent']:6.1f} % "
      f"{s['cpu_us_per_delivery']:6.2f} µs/delivery")
PY
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$data" "$log" "$log.json"
  done
done
