package memory

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/duplexhq/duplex/broker"
)

// ErrEmptySubject is returned by Publish and Subscribe for an empty subject.
var ErrEmptySubject = errors.New("broker/memory: empty subject")

// Options configure New. The zero value is usable.
type Options struct {
	// QueueLen bounds each subscriber's pending payloads (default 1024).
	QueueLen int
	// Logger receives drop warnings (default slog.Default()).
	Logger *slog.Logger
}

// Stats are counters since New.
type Stats struct {
	Published uint64 // Publish calls that found the broker open
	Dropped   uint64 // deliveries skipped because a subscriber's queue was full
}

// Broker is an in-process broker.Broker, safe for concurrent use.
type Broker struct {
	queueLen int
	log      *slog.Logger

	mu     sync.RWMutex
	subs   map[string][]*subscription // replaced, never mutated in place
	closed bool
	wg     sync.WaitGroup // one per subscriber goroutine

	published, dropped atomic.Uint64
}

var _ broker.Broker = (*Broker)(nil)

// New returns an open Broker; Close releases its goroutines.
func New(opts Options) *Broker {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Broker{queueLen: opts.QueueLen, log: opts.Logger, subs: make(map[string][]*subscription)}
}

// payload is one published message shared by every subscriber it was
// queued to; the last to finish returns it to the pool, so steady-state
// publishing allocates nothing. Handlers may not retain data (contract).
type payload struct {
	data []byte
	refs atomic.Int32
}

var payloadPool = sync.Pool{New: func() any { return new(payload) }}

func (p *payload) release() {
	if p.refs.Add(-1) == 0 {
		p.data = p.data[:0]
		payloadPool.Put(p)
	}
}

type subscription struct {
	b        *Broker
	subject  string
	h        broker.Handler
	inline   bool          // SubscribeSync: h runs on the publisher's goroutine
	queue    chan *payload // nil when inline
	stop     chan struct{}
	canceled atomic.Bool
	once     sync.Once
	dropped  atomic.Uint64
}

// Publish offers data to every current subscriber of subject and returns
// without waiting for delivery. data may be reused once Publish returns.
func (b *Broker) Publish(ctx context.Context, subject string, data []byte) error {
	if subject == "" {
		return ErrEmptySubject
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return broker.ErrClosed
	}
	b.published.Add(1)
	subs := b.subs[subject]
	queued := 0
	for _, s := range subs {
		if !s.inline {
			queued++
		}
	}
	if queued > 0 {
		b.offer(subs, queued, data)
	}
	b.mu.RUnlock()
	if queued < len(subs) {
		// subs is never mutated (Subscribe and cancel replace it), so it
		// can be walked without the lock, which a handler may need (to
		// cancel, or to publish).
		for _, s := range subs {
			if s.inline && !s.canceled.Load() {
				s.h(subject, data)
			}
		}
	}
	return nil
}

// offer queues a pooled copy of data to the queued (not inline)
// subscribers among subs, queued of them; the caller holds b.mu for
// reading.
func (b *Broker) offer(subs []*subscription, queued int, data []byte) {
	p := payloadPool.Get().(*payload)
	p.data = append(p.data[:0], data...)
	// One reference per subscriber plus ours, dropped below, so the payload
	// cannot be recycled while we are still offering it.
	p.refs.Store(int32(queued) + 1)
	for _, s := range subs {
		if s.inline {
			continue
		}
		select {
		case s.queue <- p:
		default:
			p.release()
			s.drop()
		}
	}
	p.release()
}

func (s *subscription) drop() {
	s.b.dropped.Add(1)
	// Log the first drop and then every 1024th, so a stuck subscriber is
	// visible without flooding the log.
	if n := s.dropped.Add(1); n == 1 || n%1024 == 0 {
		s.b.log.Warn("broker/memory: subscriber queue full, payload dropped",
			"subject", s.subject, "dropped", n, "queue", cap(s.queue))
	}
}

// Subscribe starts delivering later publications on subject to h, one at a
// time, from a goroutine owned by the subscription. After cancel returns no
// new delivery starts (one already running may finish). cancel may be
// called from h and more than once.
func (b *Broker) Subscribe(subject string, h broker.Handler) (cancel func(), err error) {
	return b.subscribe(subject, h, false)
}

// SubscribeSync is Subscribe for a handler that is cheap, never blocks and
// is safe for concurrent use: Publish calls h itself, on the publishing
// goroutine, before it returns, instead of queueing the payload for a
// subscription goroutine. That spares a goroutine hand-off (a wake-up and
// a park) and a copy of the payload per delivery, and nothing is dropped.
// The payloads of one publisher still arrive in publish order (they are
// calls made in order); those of different publishers may be delivered
// concurrently. h may call cancel and Publish. A Publish that had already
// begun delivering when cancel (or Close) was called may still call h
// once after it returns; none that starts later does.
func (b *Broker) SubscribeSync(subject string, h broker.Handler) (cancel func(), err error) {
	return b.subscribe(subject, h, true)
}

func (b *Broker) subscribe(subject string, h broker.Handler, inline bool) (cancel func(), err error) {
	if subject == "" {
		return nil, ErrEmptySubject
	}
	if h == nil {
		return nil, errors.New("broker/memory: nil handler")
	}
	s := &subscription{b: b, subject: subject, h: h, inline: inline, stop: make(chan struct{})}
	if !inline {
		s.queue = make(chan *payload, b.queueLen)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, broker.ErrClosed
	}
	old := b.subs[subject]
	next := make([]*subscription, len(old), len(old)+1)
	copy(next, old)
	b.subs[subject] = append(next, s)
	if !inline {
		b.wg.Add(1)
		go s.run()
	}
	return s.cancel, nil
}

func (s *subscription) run() {
	defer s.b.wg.Done()
	for {
		select {
		case <-s.stop:
			s.discard()
			return
		case p := <-s.queue:
			if !s.canceled.Load() {
				s.h(s.subject, p.data)
			}
			p.release()
		}
	}
}

// discard releases what is still queued after cancel, so pooled payloads
// are recycled.
func (s *subscription) discard() {
	for {
		select {
		case p := <-s.queue:
			p.release()
		default:
			return
		}
	}
}

func (s *subscription) cancel() {
	s.once.Do(func() {
		s.canceled.Store(true)
		b := s.b
		b.mu.Lock()
		old := b.subs[s.subject]
		next := make([]*subscription, 0, len(old))
		for _, o := range old {
			if o != s {
				next = append(next, o)
			}
		}
		if len(next) == 0 {
			delete(b.subs, s.subject)
		} else {
			b.subs[s.subject] = next
		}
		b.mu.Unlock()
		close(s.stop)
	})
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	return Stats{Published: b.published.Load(), Dropped: b.dropped.Load()}
}

// Close cancels every subscription and waits for their goroutines to
// finish their current delivery; it must not be called from a Handler.
// Later Publish and Subscribe calls return broker.ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var all []*subscription
	for _, subs := range b.subs {
		all = append(all, subs...)
	}
	b.mu.Unlock()
	for _, s := range all {
		s.cancel()
	}
	b.wg.Wait()
	return nil
}
