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
SERVER_FLAGS=${SERVER_FLAGS:-} # e.g. "-ping 30s" (duplex, duplex-event)
# PIN=1 runs the server on CPU 0 and the load tool on CPU 1 (taskset), so
# that the load tool's own CPU no longer shares a core with the server under
# test: the echo rate then follows the server's cost per message.
if [ "${PIN:-0}" = 1 ]; then
	srv_pin="taskset -c 0" load_pin="taskset -c 1"
else
	srv_pin="" load_pin=""
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/wsserver" ./cmd/wsserver
go build -o "$bin/wsload" ./cmd/wsload
ulimit -n 20000 2>/dev/null || true

for impl in $IMPLS; do
	for mode in $MODES; do
		# Written by the server itself: the shell must not see the previous
		# server's address while the new one starts.
		rm -f "$bin/addr"
		$srv_pin "$bin/wsserver" -impl "$impl" $SERVER_FLAGS >"$bin/addr.tmp" 2>"$bin/server.log" &
		spid=$!
		for _ in $(seq 1 300); do [ -s "$bin/addr.tmp" ] && break; sleep 0.1; done
		mv "$bin/addr.tmp" "$bin/addr"
		addr=$(head -n1 "$bin/addr")
		if [ -z "$addr" ]; then
			echo "{\"impl\":\"$impl\",\"mode\":\"$mode\",\"result\":{\"error\":\"server did not start: $(tail -n2 "$bin/server.log" | tr -d '"' | tr '\n' ' ')\"}}"
			kill "$spid" 2>/dev/null || true
			wait "$spid" 2>/dev/null || true
			continue
		fi
		sleep 0.5
		# A failed run is reported and the comparison goes on.
		if [ "$mode" = idle ]; then
			out=$("$bin/wsload" -mode idle -conns "$IDLE_CONNS" -pid "$spid" "ws://$addr/" 2>&1) || out="{\"error\":\"$(echo "$out" | tail -n1 | tr -d '"')\"}"
		else
			out=$($load_pin "$bin/wsload" -mode echo -conns "$ECHO_CONNS" -duration "$DURATION" -pid "$spid" "ws://$addr/" 2>&1) || out="{\"error\":\"$(echo "$out" | tail -n1 | tr -d '"')\"}"
		fi
		echo "{\"impl\":\"$impl\",\"mode\":\"$mode\",\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"result\":$out}"
		kill "$spid"
		wait "$spid" 2>/dev/null || true
	done
done
