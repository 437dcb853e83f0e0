// Package bench holds the side-by-side load comparisons of duplex's ws
// package against other Go WebSocket libraries. It is a nested module so the
// main module never depends on the libraries it is compared with.
//
// cmd/wsserver runs an echo server on one implementation; cmd/wsload opens
// connections against it and measures memory per idle connection (from the
// server's RSS) or echo throughput and latency. run-ws.sh runs the whole
// comparison; its figures go into docs/benchmarks.md.
package bench
