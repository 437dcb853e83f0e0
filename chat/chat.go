package chat

import (
	"context"
	"errors"

	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/broker"
	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/presence"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// Service implements API on top of a store, a broker and a presence
// registry. Create it with New and stop it with Close.
type Service struct {
	cfg Config
	st  store.Store
	br  broker.Broker
	pr  presence.Registry
	log *slog.Logger
	m   Metrics
	hub *hub.Hub
	seq *sequencer
	wh  *webhook // nil when no webhook is configured
	// rpc rate-limits the requests of users without a session (Do), per
	// user on this node, as a session's bucket does per connection.
	rpc userBuckets

	memberCache memberCache                  // see membercache.go
	sharedStore atomic.Pointer[storeContext] // see storeCtx

	// ctx ends at Close. Work that must outlive the request that caused
	// it (delivery after an append, presence fan-out) runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines and timers the service owns

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	cursors  map[cursorKey]int64    // delivered cursors of closed sessions, not yet flushed
	leaving  map[string]*time.Timer // session id -> pending presence disconnect
}

type cursorKey struct{ user, conv string }

// storeTimeout bounds store calls made under the service context.
const storeTimeout = 10 * time.Second

// New validates cfg, fills in defaults and starts the service's goroutines
// (cursor flusher, webhook workers). The caller keeps ownership of st, br
// and pr and closes them after Close.
func New(cfg Config, st store.Store, br broker.Broker, pr presence.Registry, logger *slog.Logger) (*Service, error) {
	if st == nil || br == nil || pr == nil {
		return nil, errors.New("chat: New needs a store, a broker and a presence registry")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg: cfg, st: st, br: br, pr: pr, log: logger, m: cfg.Metrics,
		hub:      hub.New(br, logger),
		seq:      newSequencer(),
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[*session]struct{}),
		cursors:  make(map[cursorKey]int64),
		leaving:  make(map[string]*time.Timer),
	}
	if cfg.Webhook.URL != "" {
		s.wh = newWebhook(cfg.Webhook, s.m, logger)
		s.wh.start(ctx, &s.wg)
	}
	s.wg.Add(1)
	go s.flushLoop()
	return s, nil
}

// Close disconnects every session with 1001 (going away), runs pending
// presence disconnects, flushes delivered cursors, and stops the service's
// goroutines. It is idempotent.
func (s *Service) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()

	for _, ss := range sessions {
		ss.sink.Close(protocol.CloseGoingAway, "server shutting down")
		ss.Close()
	}
	s.mu.Lock()
	leaving := s.leaving
	s.leaving = make(map[string]*time.Timer)
	s.mu.Unlock()
	for key, t := range leaving {
		if t.Stop() { // the timer will not run: do its work now
			user, conn := splitLeaveKey(key)
			s.disconnectPresence(user, conn)
			s.wg.Done()
		}
	}
	s.cancel()
	s.wg.Wait()
	s.flushCursors(context.Background())
	s.hub.Close()
}

// flushLoop writes delivered cursors in batches; they only feed the
// welcome frame's delivered_seq, so losing a second of them is harmless.
func (s *Service) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.DeliveredFlush)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.flushCursors(s.ctx)
		}
	}
}

// flushCursors writes the pending delivered cursors (those of closed
// sessions and the unflushed ones of live sessions) in one store call,
// which the store applies in a few transactions: one commit per cursor
// took longer than storeTimeout with thousands of cursors under load and
// put as many tiny transactions in front of the appends. If the call
// fails the cursors are kept for the next flush; cursors only move
// forward, so applying some of them twice is harmless.
func (s *Service) flushCursors(ctx context.Context) {
	s.mu.Lock()
	pending := s.cursors
	s.cursors = make(map[cursorKey]int64)
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.collectCursors(pending)
	}
	if len(pending) == 0 {
		return
	}
	// A new slice each time: on a timeout the store may still be reading it.
	batch := make([]store.DeliveredCursor, 0, len(pending))
	for k, seq := range pending {
		batch = append(batch, store.DeliveredCursor{UserID: k.user, ConversationID: k.conv, Seq: seq})
	}
	// One wait in the store's write queue for the whole flush, however
	// many cursors: 0.2-0.25 s on average with 1,000 users at full load
	// (durability full), well inside storeTimeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	start := time.Now()
	err := s.st.MarkDeliveredBatch(ctx, batch)
	s.observe("MarkDeliveredBatch", start)
	if err != nil {
		s.log.Warn("chat: flushing delivered cursors; kept for the next flush", "cursors", len(batch), "err", err)
		s.keepCursors(pending)
	}
}

// keepCursors puts back the cursors of a failed flush, unless newer ones
// were queued meanwhile.
func (s *Service) keepCursors(pending map[cursorKey]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, seq := range pending {
		if seq > s.cursors[k] {
			s.cursors[k] = seq
		}
	}
}

// addCursors keeps the delivered cursors of a closing session for the
// next flush.
func (s *Service) addCursors(user string, cursors map[string]*cursor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conv, c := range cursors {
		k := cursorKey{user, conv}
		if c.seq > c.flushed && c.seq > s.cursors[k] {
			s.cursors[k] = c.seq
		}
	}
}

// storeCtx is the context for store calls that must complete even if the
// request that caused them is abandoned (an append whose delivery must
// follow).
//
// Appends are the hot path, so they share one such context, replaced
// every storeTimeout/10, instead of each arming a timer of its own: a
// call gets between 0.9 and 1 times storeTimeout. The returned cancel is
// a no-op; every shared context ends at its deadline or at Close.
func (s *Service) storeCtx() (context.Context, context.CancelFunc) {
	now := time.Now().UnixNano()
	old := s.sharedStore.Load()
	if old != nil && now < old.renewAt {
		return old.ctx, noCancel
	}
	c := &storeContext{renewAt: now + int64(storeTimeout/10)}
	c.ctx, c.cancel = context.WithTimeout(s.ctx, storeTimeout)
	if !s.sharedStore.CompareAndSwap(old, c) {
		c.cancel() // another caller renewed it meanwhile
		return s.sharedStore.Load().ctx, noCancel
	}
	return c.ctx, noCancel
}

func noCancel() {}

// storeContext is the shared context of storeCtx.
type storeContext struct {
	ctx     context.Context
	cancel  context.CancelFunc // kept for vet; the context ends at its deadline
	renewAt int64              // Unix nanoseconds after which it is replaced
}

// observe records a store call's latency.
func (s *Service) observe(op string, start time.Time) {
	s.m.StoreLatency(op, time.Since(start))
}

// members returns the members of convID if userID is one of them; any
// other case is the same not_found (see Error).
func (s *Service) members(ctx context.Context, convID, userID string) ([]store.Member, *store.Member, error) {
	start := time.Now()
	ms, err := s.cachedMembers(ctx, convID)
	s.observe("Members", start)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, errNoConv(convID, err)
		}
		return nil, nil, storeErr("members", err)
	}
	for i := range ms {
		if ms[i].UserID == userID {
			return ms, &ms[i], nil
		}
	}
	return nil, nil, errNoConv(convID, store.ErrNotMember)
}

func leaveKey(user, conn string) string { return conn + "\x00" + user }

func splitLeaveKey(k string) (user, conn string) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[i+1:], k[:i]
		}
	}
	return "", k
}

func requireUser(id Identity) error {
	if id.UserID == "" {
		return newErr(protocol.CodeUnauthorized, "no user identity")
	}
	return nil
}

func checkID(field, v string, max int) error {
	if v == "" {
		return newErr(protocol.CodeMissingField, "missing %s", field)
	}
	if len(v) > max {
		return newErr(protocol.CodeBadRequest, "%s longer than %d bytes", field, max)
	}
	return nil
}
