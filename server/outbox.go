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
// The queue is a ring that grows with what is queued, up to max frames,
// and that a writer going idle shrinks back (shrink): an idle connection
// holds a few slots, not max (a channel of max frames would cost every
// idle connection 24 bytes per frame of its bound).
type outbox struct {
	max   int
	drops prometheus.Counter

	qmu   sync.Mutex
	ring  [][]byte      // a power of two long, or nil; guarded by qmu
	r, n  int           // read position and frames queued; guarded by qmu
	room  chan struct{} // closed when a frame is taken, if SendWait waits; guarded by qmu
	ready chan struct{} // capacity 1, signalled when a frame is queued, for a writer that waits (SSE); nil otherwise

	mu     sync.Mutex    // serializes Close; guards code and reason
	code   int           // set once, before done is closed
	reason string        // likewise
	done   chan struct{} // closed when a close has been requested
}

// keptSlots is the largest ring an empty queue keeps.
const keptSlots = 4

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
	if o.n == o.max {
		o.qmu.Unlock()
		o.drops.Inc()
		return false
	}
	o.push(frame)
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
		if o.n < o.max {
			o.push(frame)
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

// push appends frame to the ring, growing it if full. qmu is held.
func (o *outbox) push(frame []byte) {
	if o.n == len(o.ring) {
		grown := make([][]byte, max(keptSlots, 2*len(o.ring)))
		for i := range o.n {
			grown[i] = o.ring[(o.r+i)&(len(o.ring)-1)]
		}
		o.ring, o.r = grown, 0
	}
	o.ring[(o.r+o.n)&(len(o.ring)-1)] = frame
	o.n++
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
	for o.n > 0 && len(batch) < maxFrames && (len(batch) == 0 || size < maxBytes) {
		f := o.ring[o.r]
		o.ring[o.r] = nil
		o.r = (o.r + 1) & (len(o.ring) - 1)
		o.n--
		batch = append(batch, f)
		size += len(f)
	}
	if o.n == 0 {
		o.r = 0
	}
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
	o.qmu.Unlock()
	return batch
}

// shrink drops a grown ring if nothing is queued. A writer calls it when
// it goes idle rather than take at every emptying, which under load would
// reallocate the ring at every burst.
func (o *outbox) shrink() {
	o.qmu.Lock()
	if o.n == 0 && len(o.ring) > keptSlots {
		o.ring = nil
	}
	o.qmu.Unlock()
}

// queued is the number of frames queued.
func (o *outbox) queued() int {
	o.qmu.Lock()
	defer o.qmu.Unlock()
	return o.n
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
