#!/usr/bin/env bash
# Runs the side-by-side WebSocket comparison on this machine:
#   idle memory per connection (IDLE_CONNS, default 15000) and
#   echo throughput / latency (ECHO_CONNS, default 1000, 1 KiB messages).
# Prints one JSON line per run; docs/benchmarks.md records the figures.
set -euo pipefail
cd "$(dirname "$0")"
IMPLS=${IMPLS:-"duplex-event duplex gws gorilla"}
IDLE_CONNS=${IDLE_CONNS:-15000}
ECHO_CONNS=${ECHO_CONNS:-1000}
DURATION=${DURATION:-10s}
MODES=${MODES:-"idle echo"}

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/wsserver" ./cmd/wsserver
go build -o "$bin/wsload" ./cmd/wsload
ulimit -n 20000 2>/dev/null || true

for impl in $IMPLS; do
	for mode in $MODES; do
		"$bin/wsserver" -impl "$impl" >"$bin/addr" 2>"$bin/server.log" &
		spid=$!
		for _ in $(seq 1 300); do [ -s "$bin/addr" ] && break; sleep 0.1; done
		addr=$(head -n1 "$bin/addr")
		sleep 0.5
		if [ "$mode" = idle ]; then
			out=$("$bin/wsload" -mode idle -conns "$IDLE_CONNS" -pid "$spid" "ws://$addr/")
		else
			out=$("$bin/wsload" -mode echo -conns "$ECHO_CONNS" -duration "$DURATION" -pid "$spid" "ws://$addr/")
		fi
		echo "{\"impl\":\"$impl\",\"result\":$out}"
		kill "$spid"
		wait "$spid" 2>/dev/null || true
	done
done
