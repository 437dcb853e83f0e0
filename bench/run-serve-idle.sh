#!/usr/bin/env bash
# Memory per idle client of `duplex serve` (docs/benchmarks.md, "Idle
# clients"): builds cmd/duplex and bench/cmd/wsload, starts a server on a
# fresh data directory, opens CONNS (default 10000) WebSocket clients, each
# logged in as its own user and making one duplex.v1 round trip, and prints
# two figures per connection:
#   - wsload's JSON line: growth of the server's resident memory, read after
#     a forced GC and SETTLE (default 20s). RSS follows the Go runtime's
#     heap goal (about twice the live heap) and scavenger, so it varies
#     from run to run;
#   - the live heap plus goroutine stacks, read from /metrics after a
#     forced GC, with the connections open: what the connections hold.
set -euo pipefail
cd "$(dirname "$0")"
bin=$(mktemp -d)
data=$(mktemp -d)
trap 'rm -rf "$bin" "$data"' EXIT
(cd .. && go build -o "$bin/duplex" ./cmd/duplex)
go build -o "$bin/wsload" ./cmd/wsload
ulimit -n 20000 2>/dev/null || true
PORT=${PORT:-18091}
PPROF=${PPROF:-16091}
CONNS=${CONNS:-10000}
SECRET=benchsecret-benchsecret-benchsecret
base="http://127.0.0.1:$PORT"
gc="http://127.0.0.1:$PPROF/debug/pprof/heap?gc=1"
"$bin/duplex" serve --addr "127.0.0.1:$PORT" --data-dir "$data" --jwt-secret "$SECRET" \
	--pprof "127.0.0.1:$PPROF" --log-level warn >"$bin/serve.log" 2>&1 &
sp=$!
sleep 1.5
# live heap + stacks in bytes, and goroutines, from the server's metrics
live() { curl -s "$base/metrics" | awk '/^go_memstats_heap_alloc_bytes/{h=$2} /^go_memstats_stack_inuse_bytes/{s=$2} /^go_goroutines /{g=$2} END{printf "%d %d\n", h+s, g}'; }
curl -s -o /dev/null "$gc"
read -r live0 _ < <(live)
"$bin/wsload" -mode idle -conns "$CONNS" -pid "$sp" -settle "${SETTLE:-20s}" -gc-url "$gc" \
	-jwt-secret "$SECRET" "ws://127.0.0.1:$PORT/ws" >"$bin/idle.out" &
lp=$!
for _ in $(seq 1 600); do
	[ "$(curl -s "$base/metrics" | awk '/^duplex_connections /{print $2}')" = "$CONNS" ] && break
	sleep 0.5
done
sleep 5 # the round trips
curl -s -o /dev/null "$gc"
read -r live1 goroutines < <(live)
wait $lp || { cat "$bin/idle.out"; tail -n 5 "$bin/serve.log"; kill "$sp"; exit 1; }
cat "$bin/idle.out"
awk -v a="$live0" -v b="$live1" -v n="$CONNS" -v g="$goroutines" \
	'BEGIN { printf "live heap + stacks: %.2f KiB per connection; %d goroutines with %d clients\n", (b - a) / n / 1024, g, n }'
kill "$sp"
wait "$sp" 2>/dev/null || true
