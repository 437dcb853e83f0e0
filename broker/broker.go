package broker

// CONTRACT written by the lead; keep it small.

import (
	"context"
	"errors"
)

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("broker: closed")

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
