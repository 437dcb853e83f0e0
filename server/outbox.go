package server

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duplexhq/duplex/chat"
)

// errConnClosing is returned by SendWait once the connection is closing.
var errConnClosing = errors.New("server: connection closing")

// outbox is the outbound side of one streaming client connection
// (WebSocket or Server-Sent Events): a bounded queue drained by the
// transport's writer, and the close request. It implements chat.FlowSink.
type outbox struct {
	q     chan []byte
	drops prometheus.Counter

	mu     sync.Mutex    // serializes Close; guards code and reason
	code   int           // set once, before done is closed
	reason string        // likewise
	done   chan struct{} // closed when a close has been requested
}

func newOutbox(size int, drops prometheus.Counter) outbox {
	return outbox{q: make(chan []byte, size), drops: drops, done: make(chan struct{})}
}

// Send queues frame; it never blocks and reports false when the queue is
// full or the connection is closing.
func (o *outbox) Send(frame []byte) bool {
	select {
	case <-o.done:
		return false
	default:
	}
	select {
	case o.q <- frame:
		return true
	default:
		o.drops.Inc()
		return false
	}
}

// SendWait queues frame, waiting for room while the queue is full: bulk
// replays (sync) use it to be paced by the client instead of overflowing.
func (o *outbox) SendWait(ctx context.Context, frame []byte) error {
	select {
	case <-o.done:
		return errConnClosing
	default:
	}
	select {
	case o.q <- frame:
		return nil
	case <-o.done:
		return errConnClosing
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close asks the writer to end the connection with code and reason; the
// first call wins.
func (o *outbox) Close(code int, reason string) {
	o.mu.Lock()
	select {
	case <-o.done:
	default:
		o.code, o.reason = code, reason
		close(o.done)
	}
	o.mu.Unlock()
}

var _ chat.FlowSink = (*outbox)(nil)
