package chat

// Requests without a live session, for the HTTP fallback transports. A
// client on Server-Sent Events or long-polling has no upstream channel on
// its stream: it POSTs each request, possibly to another node than the one
// holding its stream. Do answers such a request on any node; the few
// requests that change a session's state (subscribe, unsubscribe) are
// forwarded by DoSession through the broker to the node holding the
// session, so no load balancer stickiness is needed.

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/protocol"
)

// Fallback is what the HTTP fallback transports (SSE, long-polling and
// single requests over HTTP) call in addition to API. *Service implements
// it.
type Fallback interface {
	// ConnectStream is Connect for a transport that carries events only
	// (Server-Sent Events): the session also takes the requests that
	// DoSession forwards to it from any node, and its transport must not
	// call Handle itself.
	ConnectStream(ctx context.Context, id Identity, sink Sink) (Session, error)
	// Do handles one request frame for id without a live session and
	// writes to sink exactly the frames a session would reply (ack,
	// result or error; for sync the message events then sync.end, at
	// most Config.SyncPage messages at a time). Requests that need a
	// session (subscribe, unsubscribe) get a bad_request error frame.
	// The rate limit of a session applies per user on this node.
	// The returned error refuses the caller itself (no user, expired
	// credentials, shutting down); a failed request is an error frame.
	Do(ctx context.Context, id Identity, frame []byte, sink Sink) error
	// DoSession is Do on behalf of the session sessionID (from a welcome
	// frame): subscribe and unsubscribe are forwarded to that session,
	// wherever it is connected, and its reply is written to sink; any
	// other request is handled by Do.
	DoSession(ctx context.Context, id Identity, sessionID string, frame []byte, sink Sink) error
	// Poll answers one long-poll (see PollRequest).
	Poll(ctx context.Context, id Identity, req PollRequest) ([][]byte, error)
}

var _ Fallback = (*Service)(nil)

// remoteTimeout bounds the wait for a forwarded request's reply. Beyond
// it, the session is taken to be gone.
const remoteTimeout = 10 * time.Second

// inboxLen bounds the forwarded requests waiting for one session.
const inboxLen = 8

// errNeedsSession refuses subscribe and unsubscribe made without a session.
var errNeedsSession = newErr(protocol.CodeBadRequest,
	"subscribe and unsubscribe act on a session: pass the session id of your event stream (the welcome frame's session) with the request")

// Status bytes opening a forwarded request's reply payload.
const (
	replyFrames    byte = 0 // handled: the reply frames follow
	replyNoSession byte = 1 // no such session here (or not the caller's)
	replyBusy      byte = 2 // the session's inbox is full
)

// sessionSubject is the broker subject a stream session takes forwarded
// requests on.
func sessionSubject(id string) string { return "session." + id }

// ConnectStream implements Fallback.
func (s *Service) ConnectStream(ctx context.Context, id Identity, sink Sink) (Session, error) {
	ss, err := s.connect(ctx, id, sink, true)
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// Do implements Fallback.
func (s *Service) Do(ctx context.Context, id Identity, frame []byte, sink Sink) error {
	if err := checkIdentity(id); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return newErr(protocol.CodeUnavailable, "server shutting down")
	}
	ss := s.newSession(id, sink)
	ss.transient = true
	if now := time.Now(); !s.rpc.allow(id.UserID, s.cfg.RatePerSecond, s.cfg.RateBurst, now) {
		// An empty bucket: Handle answers rate_limited with the request id.
		ss.bucket = tokenBucket{rate: s.cfg.RatePerSecond, burst: float64(s.cfg.RateBurst), last: now}
	}
	ss.Handle(ctx, frame)
	// An acked send moves the sender's delivered cursor, as on a session.
	s.addCursors(id.UserID, ss.cursors)
	return nil
}

// DoSession implements Fallback.
func (s *Service) DoSession(ctx context.Context, id Identity, sessionID string, frame []byte, sink Sink) error {
	var r protocol.Request
	if err := protocol.Decode(frame, s.cfg.MaxFrame, &r); err != nil ||
		(r.Type != protocol.TypeSubscribe && r.Type != protocol.TypeUnsubscribe) {
		return s.Do(ctx, id, frame, sink) // Do answers bad frames too
	}
	if err := checkIdentity(id); err != nil {
		return err
	}
	if sessionID == "" || len(sessionID) > protocol.MaxIDLen {
		sink.Send(protocol.EncodeError(r.ID, protocol.CodeBadRequest, "invalid session id"))
		return nil
	}
	reply := "reply." + newSessionID()
	got := make(chan []byte, 1)
	cancel, err := s.br.Subscribe(reply, func(_ string, data []byte) {
		select {
		case got <- bytes.Clone(data):
		default: // one reply per request; anything else is not ours
		}
	})
	if err != nil {
		return &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
	}
	defer cancel()
	p := make([]byte, 0, 2*binary.MaxVarintLen64+len(id.UserID)+len(reply)+len(frame))
	p = binary.AppendUvarint(p, uint64(len(id.UserID)))
	p = append(p, id.UserID...)
	p = binary.AppendUvarint(p, uint64(len(reply)))
	p = append(p, reply...)
	p = append(p, frame...)
	if err := s.br.Publish(ctx, sessionSubject(sessionID), p); err != nil {
		return &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
	}
	t := time.NewTimer(remoteTimeout)
	defer t.Stop()
	select {
	case data := <-got:
		return writeRemoteReply(data, r.ID, sink)
	case <-t.C:
		// Nobody holds the session (brokers deliver at most once, to
		// whoever listens): its stream has ended.
		sink.Send(protocol.EncodeError(r.ID, protocol.CodeNotFound, "session not found: reconnect the event stream"))
		return nil
	case <-ctx.Done():
		return &Error{Code: protocol.CodeUnavailable, Message: "request cancelled", Err: ctx.Err()}
	}
}

// writeRemoteReply decodes a forwarded request's reply payload onto sink.
func writeRemoteReply(data []byte, reqID string, sink Sink) error {
	if len(data) == 0 {
		return newErr(protocol.CodeInternal, "empty reply from the session's node")
	}
	switch data[0] {
	case replyNoSession:
		sink.Send(protocol.EncodeError(reqID, protocol.CodeNotFound, "session not found: reconnect the event stream"))
		return nil
	case replyBusy:
		sink.Send(protocol.EncodeError(reqID, protocol.CodeRateLimited, "too many requests in flight for this session"))
		return nil
	}
	for p := data[1:]; len(p) > 0; {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return newErr(protocol.CodeInternal, "malformed reply from the session's node")
		}
		sink.Send(p[w : w+int(n)])
		p = p[w+int(n):]
	}
	return nil
}

// inbox receives the requests forwarded to one stream session and hands
// them, one at a time, to Handle on a goroutine of its own: it is the
// session's only reader.
type inbox struct {
	ss   *session
	q    chan []byte
	done chan struct{}
	once sync.Once
}

// openInbox starts taking forwarded requests.
func (ss *session) openInbox() error {
	s := ss.svc
	in := &inbox{ss: ss, q: make(chan []byte, inboxLen), done: make(chan struct{})}
	if _, err := s.hub.Join(sessionSubject(ss.id), in, 0); err != nil {
		return &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
	}
	ss.inbox = in
	s.wg.Add(1)
	go in.run()
	return nil
}

// close stops the inbox; it does not wait for a request being handled
// (Close may be called from that very request).
func (in *inbox) close() {
	in.once.Do(func() {
		close(in.done)
		in.ss.svc.hub.Leave(sessionSubject(in.ss.id), in)
	})
}

// Deliver implements hub.Conn. It runs on a broker goroutine and must not
// block: a full inbox is answered at once.
func (in *inbox) Deliver(p []byte) {
	select {
	case in.q <- p:
	default:
		if _, reply, _, ok := parseRemote(p); ok {
			in.publish(reply, []byte{replyBusy})
		}
	}
}

var _ hub.Conn = (*inbox)(nil)

func (in *inbox) run() {
	s := in.ss.svc
	defer s.wg.Done()
	for {
		select {
		case <-in.done:
			return
		case <-s.ctx.Done():
			return
		case p := <-in.q:
			in.serve(p)
		}
	}
}

// serve handles one forwarded request and publishes its replies.
func (in *inbox) serve(p []byte) {
	ss := in.ss
	user, reply, frame, ok := parseRemote(p)
	if !ok {
		ss.svc.log.Warn("chat: malformed forwarded request", "session", ss.id, "len", len(p))
		return
	}
	if user != ss.ident.UserID {
		// Someone else's session is the same as none: ids cannot be probed.
		in.publish(reply, []byte{replyNoSession})
		return
	}
	ctx, cancel := context.WithTimeout(ss.svc.ctx, remoteTimeout)
	defer cancel()
	var col frameList
	ss.reply = &col
	ss.Handle(ctx, frame)
	ss.reply = nil
	if len(col.frames) == 0 { // the session is closing
		in.publish(reply, []byte{replyNoSession})
		return
	}
	out := []byte{replyFrames}
	for _, f := range col.frames {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	in.publish(reply, out)
}

func (in *inbox) publish(subject string, p []byte) {
	s := in.ss.svc
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	if err := s.br.Publish(ctx, subject, p); err != nil {
		s.log.Warn("chat: publishing a forwarded request's reply", "session", in.ss.id, "err", err)
	}
}

// parseRemote splits a forwarded request: user, reply subject, frame.
func parseRemote(p []byte) (user, reply string, frame []byte, ok bool) {
	field := func() (string, bool) {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return "", false
		}
		v := string(p[w : w+int(n)])
		p = p[w+int(n):]
		return v, true
	}
	if user, ok = field(); !ok {
		return
	}
	if reply, ok = field(); !ok {
		return
	}
	return user, reply, p, true
}

// frameList is a Sink that keeps the replies of one forwarded request (a
// handful of frames: a result or an error).
type frameList struct{ frames [][]byte }

func (l *frameList) Send(frame []byte) bool {
	if len(l.frames) >= 16 {
		return false
	}
	l.frames = append(l.frames, frame)
	return true
}

func (l *frameList) Close(int, string) {}
