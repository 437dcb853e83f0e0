// Package loadgen is the load generator behind `duplex bench`: it connects
// many users with the Go client, puts them in direct and group
// conversations, sends at a target rate (or as fast as acknowledgements
// allow), and reports throughput and the send-to-ack and send-to-deliver
// latency distributions, with live progress while it runs.
//
// Latencies are measured on one clock: the sender stamps each message's meta
// with its send time, and receivers compare it with their own clock, so
// generator and server should run on the same machine (or synchronized
// clocks).
package loadgen
