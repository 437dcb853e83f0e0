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
//
// The queue is a frameRing bounded at max frames, which a writer going
// idle shrinks back (shrink): an idle connection holds a few slots, not
// max (a channel of max frames would cost every idle connection 24 bytes
// per frame of its bound).
type outbox struct {
	max   int
	drops prometheus.Counter

	qmu   sync.Mutex
	q     frameRing     // guarded by qmu
	room  chan struct{} // closed when a frame is taken, if SendWait waits; guarded by qmu
	ready chan struct{} // capacity 1, signalled when a frame is queued, for a writer that waits (SSE); nil otherwise

	mu     sync.Mutex    // serializes Close; guards code and reason
	code   int           // set once, before done is closed
	reason string        // likewise
	done   chan struct{} // closed when a close has been requested
}

// newOutbox makes an outbox of size frames; waited gives it the ready
// signal, for a writer that waits for frames rather than being started
// when one is queued.
func newOutbox(size int, drops prometheus.Counter, waited bool) outbox {
	var ready chan struct{}
	if waited {
		ready = make(chan struct{}, 1)
	}
	return outbox{max: max(size, 1), drops: drops, ready: ready, done: make(chan struct{})}
}

// Send queues frame; it never blocks and reports false when the queue is
// full or the connection is closing.
func (o *outbox) Send(frame []byte) bool {
	if o.closing() {
		return false
	}
	o.qmu.Lock()
	if o.q.len() == o.max {
		o.qmu.Unlock()
		o.drops.Inc()
		return false
	}
	o.q.push(frame)
	o.qmu.Unlock()
	o.signal()
	return true
}

// SendWait queues frame, waiting for room while the queue is full: bulk
// replays (sync) use it to be paced by the client instead of overflowing.
func (o *outbox) SendWait(ctx context.Context, frame []byte) error {
	for {
		if o.closing() {
			return errConnClosing
		}
		o.qmu.Lock()
		if o.q.len() < o.max {
			o.q.push(frame)
			o.qmu.Unlock()
			o.signal()
			return nil
		}
		if o.room == nil {
			o.room = make(chan struct{})
		}
		room := o.room
		o.qmu.Unlock()
		select {
		case <-room:
		case <-o.done:
			return errConnClosing
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// signal tells a waiting writer that a frame is queued (a no-op without
// one: sending on a nil channel is never ready).
func (o *outbox) signal() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// take moves queued frames to batch, up to maxFrames frames in all and,
// beyond the first, maxBytes bytes, and returns it.
func (o *outbox) take(batch [][]byte, maxFrames, maxBytes int) [][]byte {
	size := 0
	for _, f := range batch {
		size += len(f)
	}
	o.qmu.Lock()
	for o.q.len() > 0 && len(batch) < maxFrames && (len(batch) == 0 || size < maxBytes) {
		f := o.q.pop()
		batch = append(batch, f)
		size += len(f)
	}
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
	o.qmu.Unlock()
	return batch
}

// shrink drops the queue's grown ring if nothing is queued; a writer calls
// it when it goes idle (see frameRing.shrink).
func (o *outbox) shrink() {
	o.qmu.Lock()
	o.q.shrink()
	o.qmu.Unlock()
}

// queued is the number of frames queued.
func (o *outbox) queued() int {
	o.qmu.Lock()
	defer o.qmu.Unlock()
	return o.q.len()
}

// closing reports whether a close was requested.
func (o *outbox) closing() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
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
