#!/usr/bin/env bash
# End-to-end figures for `duplex serve` (docs/benchmarks.md, "## duplex serve"):
# builds cmd/duplex, starts a server on a fresh data directory, runs
# `duplex bench` with 1,000 users against it as a separate process, and
# prints the bench summary plus the CPU each process spent per acknowledged
# message (utime+stime from /proc over CPUWIN seconds inside the measured
# phase, divided by the acknowledged messages per second).
#
#   bench/run-serve.sh                 # maximum throughput (window 4 per user)
#   bench/run-serve.sh --rate 5000     # a fixed 5,000 messages/s
#   DUR=normal bench/run-serve.sh      # durability normal
#
# The bench runs with GOMAXPROCS=1 (BENCH_PROCS overrides): it needs about
# half a core, and on one P it spends ~20% less CPU per message (no thread
# wake-ups between its workers), which the server it shares the 2 cores
# with gets instead: 8-18% more acked/s in interleaved pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
data=$(mktemp -d)
trap 'rm -rf "$bin" "$data"' EXIT
go build -o "$bin/duplex" ./cmd/duplex
PORT=${PORT:-18090}
SECRET=benchsecret-benchsecret-benchsecret
"$bin/duplex" serve --addr "127.0.0.1:$PORT" --data-dir "$data" --jwt-secret "$SECRET" \
	--durability "${DUR:-full}" --rate 100000 --rate-burst 100000 --max-conns-per-user 4 \
	--send-queue "${SQ:-4096}" --log-level warn >"$bin/serve.log" 2>&1 &
sp=$!
sleep 1.5
GOMAXPROCS=${BENCH_PROCS:-1} "$bin/duplex" bench --url "ws://127.0.0.1:$PORT/ws" --jwt-secret "$SECRET" --users 1000 \
	--warmup 3s --duration "${DURATION:-15s}" "$@" >"$bin/bench.out" 2>&1 &
bp=$!
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
sleep "${CPUSTART:-5}"
s0=$(cpu $sp) b0=$(cpu $bp) t0=$(date +%s.%N)
sleep "${CPUWIN:-10}"
s1=$(cpu $sp) b1=$(cpu $bp) t1=$(date +%s.%N)
wait $bp || { cat "$bin/bench.out"; kill $sp; exit 1; }
tail -n 3 "$bin/bench.out"
acked=$(grep -o 'acked [0-9]* ([0-9]*/s)' "$bin/bench.out" | grep -o '([0-9]*' | tr -d '(')
awk -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v a="$acked" \
	-v tck="$(getconf CLK_TCK)" -v la="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
	w = t1 - t0; sc = (s1 - s0) / tck / w; bc = (b1 - b0) / tck / w
	printf "acked/s %d  server %.2f cores %.0f us/ack  bench %.2f cores %.0f us/ack  load %s\n", a, sc, sc * 1e6 / a, bc, bc * 1e6 / a, la
}'
echo "server warnings: $(grep -ac WARN "$bin/serve.log" || true)  WAL bytes: $(stat -c %s "$data/duplex.db-wal" 2>/dev/null || echo 0)"
kill $sp
wait $sp 2>/dev/null || true
