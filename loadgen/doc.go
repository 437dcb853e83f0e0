// Package loadgen is the load generator behind `duplex bench`: it connects
// many users with the Go client, puts them in direct and group
// conversations, sends at a target rate (or as fast as acknowledgements
// allow), and reports throughput and the send-to-ack and send-to-deliver
// latency distributions, with live progress while it runs.
//
// The generator shares the machine with the server it measures, so it keeps
// its own cost per message small: each user's client takes its events and
// send results by callback (client.Options.OnEvent, client.SendFunc), all
// connections are read by one ws.Poller (Config.Poller, on by default in
// `duplex bench`), closed-loop sends are chained from acknowledgements and
// paced sends come from one ticker.
//
// Latencies are measured on one clock: the sender stamps each message's meta
// with its send time, and receivers compare it with their own clock, so
// generator and server should run on the same machine (or synchronized
// clocks).
package loadgen
