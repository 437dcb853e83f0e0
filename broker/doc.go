// Package broker defines how nodes of a duplex cluster exchange events.
// Engines live in sub-packages: memory (single node), later nats and redis.
package broker
