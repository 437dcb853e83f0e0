package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/duplexhq/duplex/broker"
)

// Sentinel errors.
var (
	// ErrFull is returned by Join when the subject already has the maximum
	// number of local connections.
	ErrFull = errors.New("hub: subject full")
	// ErrClosed is returned by Join after Close.
	ErrClosed = errors.New("hub: closed")
)

// Conn is a local connection that receives routed payloads.
type Conn interface {
	// Deliver hands one payload to the connection. It is called from the
	// broker's delivery goroutine or, with a broker that delivers
	// synchronously (see syncSubscriber), from the publisher's, possibly
	// concurrently for one connection. It must not block, and may keep payload
	// (the hub gives every event its own copy, shared by all recipients,
	// which nobody modifies).
	Deliver(payload []byte)
}

// UserSubject is the broker subject of events for every device of a user.
func UserSubject(userID string) string { return "user." + userID }

// ChannelSubject is the broker subject of a pub/sub channel.
func ChannelSubject(channel string) string { return "chan." + channel }

// Hub is the routing table of one node. It is safe for concurrent use.
//
// Locking: mu guards the topics map and every topic's membership changes
// (it is held across broker Subscribe and cancel calls); delivery never
// takes mu: it reads the topic's copy-on-write slice through an atomic
// pointer, so a Conn may Join or Leave from inside Deliver.
type Hub struct {
	br  broker.Broker
	log *slog.Logger

	mu     sync.Mutex
	topics map[string]*topic
	closed bool
}

// syncSubscriber is implemented by brokers that can deliver a payload on
// the publishing goroutine (broker/memory): the hub's fan-out only hands
// payloads to connection queues, never blocks and is safe for concurrent
// use, so it needs no delivery goroutine of its own, and skipping that
// hand-off saves a goroutine wake-up per event and recipient user.
type syncSubscriber interface {
	SubscribeSync(subject string, h broker.Handler) (cancel func(), err error)
}

// topic is one subject with local connections.
type topic struct {
	conns  atomic.Pointer[[]Conn] // replaced, never mutated, on Join/Leave
	cancel func()
}

// New returns a hub that subscribes to br for the subjects local
// connections join.
func New(br broker.Broker, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{br: br, log: log, topics: make(map[string]*topic)}
}

// Join adds c to subject and returns how many local connections the subject
// now has. With max > 0 it refuses (ErrFull) a connection beyond max. The
// first connection of a subject subscribes the hub to it on the broker.
func (h *Hub) Join(subject string, c Conn, max int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, ErrClosed
	}
	t := h.topics[subject]
	if t == nil {
		t = &topic{}
		t.conns.Store(&[]Conn{})
		subscribe := h.br.Subscribe
		if ss, ok := h.br.(syncSubscriber); ok {
			subscribe = ss.SubscribeSync
		}
		cancel, err := subscribe(subject, t.fanout)
		if err != nil {
			return 0, fmt.Errorf("hub: subscribe %s: %w", subject, err)
		}
		t.cancel = cancel
		h.topics[subject] = t
	}
	old := *t.conns.Load()
	if slices.Contains(old, c) {
		return len(old), nil
	}
	if max > 0 && len(old) >= max {
		return len(old), ErrFull
	}
	next := make([]Conn, len(old), len(old)+1)
	copy(next, old)
	next = append(next, c)
	t.conns.Store(&next)
	return len(next), nil
}

// Leave removes c from subject; the last one out cancels the broker
// subscription. Leaving a subject one has not joined is a no-op.
func (h *Hub) Leave(subject string, c Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[subject]
	if t == nil {
		return
	}
	old := *t.conns.Load()
	i := slices.Index(old, c)
	if i < 0 {
		return
	}
	if len(old) == 1 {
		delete(h.topics, subject)
		t.conns.Store(&[]Conn{})
		t.cancel()
		return
	}
	next := make([]Conn, 0, len(old)-1)
	next = append(next, old[:i]...)
	next = append(next, old[i+1:]...)
	t.conns.Store(&next)
}

// Count returns the number of local connections joined to subject.
func (h *Hub) Count(subject string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[subject]; t != nil {
		return len(*t.conns.Load())
	}
	return 0
}

// Close cancels every broker subscription; later Joins fail with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s, t := range h.topics {
		t.cancel()
		delete(h.topics, s)
	}
}

// fanout is the broker handler of a topic. The broker forbids keeping data,
// so it is copied once and the copy is shared by every connection. It may
// run concurrently with itself (see syncSubscriber).
func (t *topic) fanout(_ string, data []byte) {
	conns := *t.conns.Load()
	if len(conns) == 0 {
		return
	}
	payload := make([]byte, len(data))
	copy(payload, data)
	for _, c := range conns {
		c.Deliver(payload)
	}
}
