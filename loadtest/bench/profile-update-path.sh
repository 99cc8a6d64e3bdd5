#!/usr/bin/env bash
# Instructions the server spends per update and per delivery, counted by callgrind under a
# fixed, small load of scenario A's shape (rooms of 10 users, 1 typist each), with
# `--fsync 1s` so that the disk does not dominate and `--snapshot-interval 1h` so that no
# snapshot (off the per-update path, and falling in or out of the window by chance) blurs the
# comparison. Instruction counts, not seconds, so the machine's other work moves the figure
# little; it still moves it some (how many frames a wake-up finds queued depends on timing):
# runs of one binary have differed by up to 6 %. Compare several runs.
#
#   loadtest/bench/profile-update-path.sh [OUT_DIR]
#
# Env: ROOMS (20), RATE per typist (2/s), WINDOW counted (20 s), CHORUS and LOADTEST binaries
# (target/release/...), SERVER_ARGS (extra flags for `chorus serve`).
#
# Counting starts once every connection is in and the load has run a while (callgrind's
# counters are zeroed then) and stops with a dump WINDOW seconds later; the server's own
# /metrics, read right before the zero and right after the dump, give the updates received
# and the updates delivered in between. Prints Ir per update received and per delivery, and
# writes the dump and `callgrind_annotate --inclusive=yes` of it to OUT_DIR.
set -euo pipefail

out=${1:-/tmp/chorus-profile}
rooms=${ROOMS:-20}
rate=${RATE:-2}
window=${WINDOW:-20}
chorus=${CHORUS:-target/release/chorus}
loadtest=${LOADTEST:-target/release/chorus-loadtest}
mkdir -p "$out"
data=$(mktemp -d)
log="$out/server.log"

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
    "$chorus" serve --listen 127.0.0.1:0 --data-dir "$data" --fsync 1s --snapshot-interval 1h \
    --log-format json \
    ${SERVER_ARGS:-} >"$log" 2>&1 &
server=$!
cleanup() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

port=""
for _ in $(seq 1 600); do
    port=$(grep -o '"addr":"127.0.0.1:[0-9]*"' "$log" | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start; see $log" >&2; exit 1; }

ramp=10
settle=10
"$loadtest" run --url "ws://127.0.0.1:$port/ws" --rooms "$rooms" --users 10 --typists 1 \
    --rate "$rate" --ramp-up "${ramp}s" --warmup "${settle}s" --duration "$((window + 10))s" \
    --handshake-timeout 60s --json --no-progress >"$out/loadtest.json" &
generator=$!

# Updates (kind="update") in and out so far, from the server's /metrics.
counts() {
    curl -s "http://127.0.0.1:$port/metrics" | awk '
        /^chorus_messages_total/ && /kind="update"/ {
            if ($0 ~ /direction="in"/) inn += $NF; else out += $NF
        }
        END { printf "%d %d\n", inn, out }'
}

sleep $((ramp + settle))
read -r in0 out0 < <(counts)
callgrind_control --zero "$server" >/dev/null
sleep "$window"
callgrind_control --dump=window "$server" >/dev/null
read -r in1 out1 < <(counts)
wait "$generator" || echo "the load generator exited with $?" >&2

dump=$(ls -t "$out"/callgrind.out.*.* | head -1)
callgrind_annotate --inclusive=yes "$dump" >"$out/inclusive.txt"
callgrind_annotate "$dump" >"$out/self.txt"
total=$(grep -m1 'PROGRAM TOTALS' "$out/inclusive.txt" | awk '{gsub(",","",$1); print $1}')
updates=$((in1 - in0))
deliveries=$((out1 - out0))
{
    echo "window ${window}s: ${updates} updates in, ${deliveries} delivered, ${total} Ir"
    awk -v t="$total" -v u="$updates" -v d="$deliveries" \
        'BEGIN { printf "Ir per update: %.0f\nIr per delivery: %.0f\n", t / u, t / d }'
} | tee "$out/figures.txt"
echo "dump: $dump; profile: $out/inclusive.txt, $out/self.txt"
