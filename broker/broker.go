// Package broker defines how nodes of a duplex cluster exchange events.
// Engines live in sub-packages: memory (single node), later nats and redis.
package broker

// CONTRACT written by the lead; keep it small.

import "context"

// Handler receives one published payload. It must not retain data after it
// returns and must not block for long (engines call it from their own
// delivery goroutine).
type Handler func(subject string, data []byte)

// Broker publishes events to subjects and delivers them to subscribers on
// every node, at most once, in publish order per publisher and subject.
type Broker interface {
	Publish(ctx context.Context, subject string, data []byte) error
	// Subscribe delivers every later publication on subject to h until the
	// returned cancel func is called.
	Subscribe(subject string, h Handler) (cancel func(), err error)
	Close() error
}
