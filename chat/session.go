package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/protocol"
)

// maxEarly bounds the frames buffered between joining the user's subject
// and sending the welcome frame.
const maxEarly = 256

// session is one connected device. Handle runs on the transport's reader
// goroutine; Deliver runs on broker goroutines; mu guards what they share.
type session struct {
	svc     *Service
	id      string
	ident   Identity
	sink    Sink
	flow    FlowSink  // sink as a FlowSink, nil if it is not one
	replier ReplySink // sink as a ReplySink, nil if it is not one

	// transient marks a session made by Do for one request: it is never
	// registered (hub, presence, the service's set) and refuses
	// session-scoped requests.
	transient bool
	// inbox, for a session opened by ConnectStream, carries requests
	// forwarded from any node by DoSession (see remote.go).
	inbox *inbox

	// Reader-goroutine state, used only by Handle.
	req      protocol.Request
	bucket   tokenBucket
	strikes  int // rate-limited frames in a row
	bad      int // undecodable frames in a row
	typingAt map[string]time.Time
	// reply, when set, receives the replies (ack, result, error,
	// sync.end) instead of sink: a forwarded request's replies go back to
	// the node that received it, its events still go to the stream.
	reply Sink

	mu         sync.Mutex
	closed     bool
	welcomed   bool
	early      [][]byte
	convReplay map[string]*replay // conversations being synced
	chanReplay map[string]*replay // channels being replayed
	channels   map[string]struct{}
	cursors    map[string]*cursor // delivered seq per conversation
	expiry     *time.Timer
}

// replay records, while a conversation or channel is replayed from the
// store, the highest live seq suppressed meanwhile: the replay continues
// until it has caught up with it.
type replay struct{ dropped int64 }

// cursor tracks one conversation in a session: seq is the delivered
// cursor to flush to the store (acks count: the sender holds its own
// message); sent is the highest seq this session was sent as a message
// event, so that a live delivery racing with a sync that already streamed
// it is not sent twice.
type cursor struct{ seq, sent, flushed int64 }

// Connect registers a device of id's user, sends the welcome frame and
// returns the session the transport feeds inbound frames to.
func (s *Service) Connect(ctx context.Context, id Identity, sink Sink) (Session, error) {
	ss, err := s.connect(ctx, id, sink, false)
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// checkIdentity refuses callers without a user or with expired
// credentials.
func checkIdentity(id Identity) error {
	if err := requireUser(id); err != nil {
		return err
	}
	if !id.ExpiresAt.IsZero() && !time.Now().Before(id.ExpiresAt) {
		return &Error{Code: protocol.CodeUnauthorized, Message: "token expired", close: protocol.CloseTokenExpired}
	}
	return nil
}

// newSession builds a session that is not registered anywhere yet.
func (s *Service) newSession(id Identity, sink Sink) *session {
	ss := &session{
		svc: s, id: newSessionID(), ident: id, sink: sink,
		bucket:     newTokenBucket(s.cfg.RatePerSecond, s.cfg.RateBurst, time.Now()),
		typingAt:   make(map[string]time.Time),
		convReplay: make(map[string]*replay),
		chanReplay: make(map[string]*replay),
		channels:   make(map[string]struct{}),
		cursors:    make(map[string]*cursor),
	}
	ss.flow, _ = sink.(FlowSink)
	ss.replier, _ = sink.(ReplySink)
	return ss
}

// connect is Connect; addressable sessions also take requests forwarded
// by DoSession.
func (s *Service) connect(ctx context.Context, id Identity, sink Sink, addressable bool) (*session, error) {
	if err := checkIdentity(id); err != nil {
		return nil, err
	}
	ss := s.newSession(id, sink)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, newErr(protocol.CodeUnavailable, "server shutting down")
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()

	// Join before reading the conversations so that nothing committed
	// after the snapshot is missed; what arrives before the welcome is
	// buffered in early.
	if _, err := s.hub.Join(hub.UserSubject(id.UserID), ss, s.cfg.MaxConnsPerUser); err != nil {
		s.forget(ss)
		if errors.Is(err, hub.ErrFull) {
			return nil, newErr(protocol.CodeTooManyConnections, "at most %d connections per user", s.cfg.MaxConnsPerUser)
		}
		return nil, &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
	}
	if err := s.connectPresence(ctx, id.UserID, ss.id); err != nil {
		s.hub.Leave(hub.UserSubject(id.UserID), ss)
		s.forget(ss)
		return nil, err
	}
	if addressable {
		if err := ss.openInbox(); err != nil {
			ss.Close()
			return nil, err
		}
	}
	start := time.Now()
	ucs, err := s.st.Conversations(ctx, id.UserID)
	s.observe("Conversations", start)
	if err != nil {
		ss.Close()
		return nil, storeErr("conversations", err)
	}
	welcome := s.encode(protocol.Welcome{
		Type: protocol.TypeWelcome, Protocol: protocol.Subprotocol, User: id.UserID, Session: ss.id,
		ServerTime: time.Now().UnixMilli(), Conversations: WireConversations(ucs), Limits: s.limits(),
	})
	ss.mu.Lock()
	ok := ss.sink.Send(welcome)
	for _, f := range ss.early {
		ok = ok && ss.sink.Send(f)
	}
	ss.early = nil
	ss.welcomed = true
	if !id.ExpiresAt.IsZero() {
		ss.expiry = time.AfterFunc(time.Until(id.ExpiresAt), func() {
			ss.sink.Close(protocol.CloseTokenExpired, "token expired")
			ss.Close()
		})
	}
	ss.mu.Unlock()
	if !ok {
		ss.slowConsumer()
	}
	return ss, nil
}

func (s *Service) limits() protocol.Limits {
	return protocol.Limits{
		MaxFrame: s.cfg.MaxFrame, MaxBody: s.cfg.MaxBody, MaxMeta: s.cfg.MaxMeta, MaxPublish: s.cfg.MaxPublish,
		RatePerSecond: s.cfg.RatePerSecond, RateBurst: s.cfg.RateBurst,
		TypingTTLMS: s.cfg.TypingTTL.Milliseconds(), TypingEveryMS: s.cfg.TypingInterval.Milliseconds(),
		HistoryMaxPage: s.cfg.HistoryMaxLimit,
	}
}

func (s *Service) forget(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// Deliver implements hub.Conn: it forwards a routed envelope's frame to
// the sink, doing the per-session bookkeeping without allocating in the
// steady state.
func (ss *session) Deliver(p []byte) {
	e, ok := parseSessionEnvelope(p)
	if !ok {
		ss.svc.log.Warn("chat: malformed envelope from broker", "len", len(p))
		return
	}
	// A session gets its own acks routed here, and everything else but
	// what it caused itself.
	if own := len(e.origin) > 0 && string(e.origin) == ss.id; own != (e.kind == kindAck) {
		return
	}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	if !ss.welcomed {
		full := len(ss.early) >= maxEarly
		if !full {
			ss.early = append(ss.early, e.frame)
		}
		ss.mu.Unlock()
		if full {
			ss.slowConsumer()
		}
		return
	}
	switch e.kind {
	case kindMessage:
		if r := ss.convReplay[string(e.key)]; r != nil {
			r.dropped = max(r.dropped, e.seq)
			ss.mu.Unlock()
			return
		}
		c := ss.cursors[string(e.key)]
		if c == nil {
			c = &cursor{}
			ss.cursors[string(e.key)] = c
		}
		if e.seq <= c.sent {
			ss.mu.Unlock() // already streamed by a sync
			return
		}
		c.sent = e.seq
		c.seq = max(c.seq, e.seq)
	case kindAck:
		c := ss.cursors[string(e.key)]
		if c == nil {
			c = &cursor{}
			ss.cursors[string(e.key)] = c
		}
		c.seq = max(c.seq, e.seq)
	case kindChannel:
		if _, ok := ss.channels[string(e.key)]; !ok {
			ss.mu.Unlock() // unsubscribed while the event was in flight
			return
		}
		if r := ss.chanReplay[string(e.key)]; r != nil {
			r.dropped = max(r.dropped, e.seq)
			ss.mu.Unlock()
			return
		}
	}
	sent := ss.sink.Send(e.frame)
	ss.mu.Unlock()
	if !sent {
		ss.slowConsumer()
		return
	}
	if e.kind == kindMessage {
		ss.svc.m.MessageOut()
	}
}

// slowConsumer closes a session whose queue overflowed. Clients reconnect
// and sync: everything was persisted, nothing is lost. The unregistering
// runs on a goroutine of the service because Deliver may be running on a
// broker delivery goroutine that cancelling a subscription waits for.
func (ss *session) slowConsumer() {
	ss.mu.Lock()
	closed := ss.closed
	ss.mu.Unlock()
	if closed {
		return
	}
	ss.svc.m.Drop("slow_consumer")
	ss.sink.Close(protocol.CloseSlowConsumer, "slow consumer: reconnect and sync")
	ss.svc.wg.Add(1)
	go func() {
		defer ss.svc.wg.Done()
		ss.Close()
	}()
}

// Close unregisters the session: routing at once, presence after the grace
// period. It is idempotent.
func (ss *session) Close() {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	if ss.transient {
		ss.mu.Unlock()
		return
	}
	ss.early = nil
	channels := ss.channels
	ss.channels = make(map[string]struct{})
	cursors := ss.cursors
	ss.cursors = make(map[string]*cursor)
	if ss.expiry != nil {
		ss.expiry.Stop()
	}
	ss.mu.Unlock()

	s := ss.svc
	user := ss.ident.UserID
	if ss.inbox != nil {
		ss.inbox.close()
	}
	s.hub.Leave(hub.UserSubject(user), ss)
	for ch := range channels {
		s.hub.Leave(hub.ChannelSubject(ch), ss)
	}
	s.addCursors(user, cursors)
	s.forget(ss)
	s.scheduleDisconnect(user, ss.id)
}

// collectCursors adds the session's unflushed delivered cursors to batch
// and counts them as flushed: from here on the batch owns them, and a
// flush that fails puts them back in Service.cursors (keepCursors).
func (ss *session) collectCursors(batch map[cursorKey]int64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for conv, c := range ss.cursors {
		if c.seq > c.flushed {
			k := cursorKey{ss.ident.UserID, conv}
			batch[k] = max(batch[k], c.seq)
			c.flushed = c.seq
		}
	}
}

// noteDelivered records that the session holds conv up to seq; streamed
// says it was sent as message events (by a sync), not just acked.
func (ss *session) noteDelivered(conv string, seq int64, streamed bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c := ss.cursorLocked(conv)
	c.seq = max(c.seq, seq)
	if streamed {
		c.sent = max(c.sent, seq)
	}
}

// cursorLocked returns conv's cursor, created if absent; ss.mu is held.
// (Deliver looks its cursor up by the envelope's []byte key directly,
// which a string parameter would make allocate.)
func (ss *session) cursorLocked(conv string) *cursor {
	c := ss.cursors[conv]
	if c == nil {
		c = &cursor{}
		ss.cursors[conv] = c
	}
	return c
}

// orderedAck reports whether the ack of seq in conv must wait for the
// deliveries of earlier seqs, i.e. be routed like them (see Service.send):
// not when this session already holds seq-1 (sent or acked), the usual
// case, where the ack goes out at once; and never for a session that is
// not reachable through the hub (transient, or replying to another node).
func (ss *session) orderedAck(conv string, seq int64) bool {
	if ss.transient || ss.reply != nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var held int64
	if c := ss.cursors[conv]; c != nil {
		held = c.seq
	}
	return held < seq-1
}

// send queues a reply frame; false means the session is being closed as a
// slow consumer.
func (ss *session) send(frame []byte) bool {
	if frame == nil {
		return true
	}
	if ss.reply != nil {
		return ss.reply.Send(frame)
	}
	var ok bool
	if ss.replier != nil {
		ok = ss.replier.Reply(frame) // send runs on Handle's goroutine
	} else {
		ok = ss.sink.Send(frame)
	}
	if !ok {
		ss.slowConsumer()
		return false
	}
	return true
}

// replyBulk queues the reply that ends a replay (sync.end) the way the
// replay was queued: waiting for room rather than failing a client that
// is merely slower than the store. false means it could not be queued.
func (ss *session) replyBulk(ctx context.Context, frame []byte) bool {
	if ss.reply != nil || ss.flow == nil {
		return ss.send(frame)
	}
	return ss.flow.SendWait(ctx, frame) == nil
}

// sendBulk queues a frame of a replay, waiting for room when the sink
// supports it.
func (ss *session) sendBulk(ctx context.Context, frame []byte) bool {
	if ss.flow == nil {
		// An event, not a reply: it goes to the stream even while the
		// replies of a forwarded request go elsewhere.
		if frame != nil && !ss.sink.Send(frame) {
			ss.slowConsumer()
			return false
		}
		return true
	}
	return ss.flow.SendWait(ctx, frame) == nil
}
