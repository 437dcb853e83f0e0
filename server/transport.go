package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

const subprotocol = protocol.Subprotocol

// wsConn is one WebSocket client: it implements chat.Sink with a bounded
// queue. An idle connection has no goroutine of its own: the server's
// ws.Poller reads it (inbound.go), a handler goroutine runs only while
// frames wait to be handled, and a writer goroutine only while frames wait
// to be written.
type wsConn struct {
	outbox
	s *Server
	c *ws.Conn

	sess   chat.Session // set before the Poller delivers the first frame
	user   string       // for logs
	remote string

	// wmu is held by whoever writes to c: the writer goroutine, or the
	// handler writing a reply at once (Reply). unwritten counts the frames
	// queued and not yet written; a reply is written at once only when it
	// is 0, so it never overtakes a frame queued before it.
	wmu       sync.Mutex
	unwritten atomic.Int64
	deadline  time.Time // write deadline last set on c; guarded by wmu

	// writing is set while a writer goroutine runs (kick starts one), and
	// for good once the writer has closed the connection.
	writing atomic.Bool

	in inbound // frames read and not yet handled (inbound.go)

	// parts counts the halves still running: the read side (until the
	// Poller's OnClose and the last queued frame are handled) and the
	// writer (until it has closed the connection). The last one to end
	// releases the connection (partDone).
	parts atomic.Int32
}

var (
	_ chat.FlowSink  = (*wsConn)(nil)
	_ chat.ReplySink = (*wsConn)(nil)
	_ ws.Handler     = (*wsConn)(nil)
)

// Send queues frame (see outbox.Send), counting it as unwritten, and
// makes sure a writer runs.
func (w *wsConn) Send(frame []byte) bool {
	w.unwritten.Add(1)
	if !w.outbox.Send(frame) {
		w.unwritten.Add(-1)
		return false
	}
	w.kick()
	return true
}

// SendWait queues frame (see outbox.SendWait), counting it as unwritten,
// and makes sure a writer runs.
func (w *wsConn) SendWait(ctx context.Context, frame []byte) error {
	w.unwritten.Add(1)
	if err := w.outbox.SendWait(ctx, frame); err != nil {
		w.unwritten.Add(-1)
		return err
	}
	w.kick()
	return nil
}

// Close asks the writer to end the connection (see outbox.Close).
func (w *wsConn) Close(code int, reason string) {
	w.outbox.Close(code, reason)
	w.kick()
}

// kick starts the writer goroutine unless one runs.
func (w *wsConn) kick() {
	if w.writing.CompareAndSwap(false, true) {
		go w.writeLoop()
	}
}

// Reply is called on the handler goroutine (chat.ReplySink). When nothing
// is queued or being written it writes frame itself, sparing a writer
// goroutine per reply; otherwise it queues frame behind the others. A
// reply written here may block the handler until WriteTimeout, which only
// holds back that client's own requests.
func (w *wsConn) Reply(frame []byte) bool {
	if w.unwritten.Load() != 0 || !w.wmu.TryLock() {
		return w.Send(frame)
	}
	select {
	case <-w.done: // closing: the writer owns what is left
		w.wmu.Unlock()
		return w.Send(frame)
	default:
	}
	if w.unwritten.Load() != 0 {
		w.wmu.Unlock()
		return w.Send(frame)
	}
	one := [1][]byte{frame}
	ok := w.writeBy(one[:], w.nextDeadline())
	w.wmu.Unlock()
	if !ok {
		w.Close(int(ws.StatusAbnormalClosure), "write failed")
		w.c.CloseNow()
	}
	return ok
}

// handleWS authenticates, upgrades and runs one connection: the reader
// runs here, the writer in its own goroutine, and both have ended when
// handleWS returns.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		s.writeError(w, r, errf(protocol.CodeUnavailable, "server shutting down"))
		return
	}
	p, err := s.cfg.Auth.Authenticate(r)
	if err != nil {
		s.refuseWS(w, r, err)
		return
	}
	if p.UserID == "" {
		s.writeError(w, r, errf(protocol.CodeBadRequest, "an admin connection must name a user with "+auth.ActAsHeader))
		return
	}
	if offered := r.Header.Values("Sec-Websocket-Protocol"); len(offered) > 0 && !offersSubprotocol(offered) {
		s.writeError(w, r, errf(protocol.CodeBadRequest, "subprotocol "+subprotocol+" is required"))
		return
	}
	c := s.acceptWS(w, r)
	if c == nil {
		return
	}
	conn := &wsConn{outbox: newOutbox(s.cfg.SendQueue, s.metrics.queueDrops, false), s: s, c: c,
		user: p.UserID, remote: r.RemoteAddr}
	if !s.track(conn) {
		c.Close(ws.StatusGoingAway, "server shutting down")
		return
	}
	s.metrics.connections.Inc()
	s.metrics.connsTotal.Inc()
	conn.parts.Store(2)
	conn.start(chat.Identity{UserID: p.UserID, Admin: p.Admin, ExpiresAt: p.ExpiresAt})
}

// refuseWS answers a WebSocket request whose credentials were refused. A
// browser sees nothing of a refused handshake but a 1006 close, which it
// cannot tell from a network failure and so retries for ever: a valid
// upgrade is therefore accepted and closed at once with 4001 (token
// expired: refresh it) or 4000 (authentication failed: do not retry). A
// request that is not a WebSocket upgrade gets the 401 of the HTTP API.
func (s *Server) refuseWS(w http.ResponseWriter, r *http.Request, authErr error) {
	if !isUpgrade(r) {
		s.writeError(w, r, authError(authErr))
		return
	}
	c := s.acceptWS(w, r)
	if c == nil {
		return
	}
	code, reason := protocol.CloseAuthFailed, "authentication failed: log in again"
	if errors.Is(authErr, auth.ErrExpired) {
		code, reason = protocol.CloseTokenExpired, "token expired: refresh it and reconnect"
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "websocket credentials refused",
		slog.String("remote", r.RemoteAddr), slog.Int("code", code), slog.Any("err", authErr))
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	c.Close(ws.StatusCode(code), reason) // bounded: waits at most 5 s for the peer's answer
}

// acceptWS upgrades r, or returns nil when ws.Accept refused the
// handshake: it has answered (403 for a refused Origin, 400 for a bad
// handshake), and a misbehaving client is not worth more than debug.
func (s *Server) acceptWS(w http.ResponseWriter, r *http.Request) *ws.Conn {
	c, err := ws.Accept(w, r, &s.accept)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "websocket handshake refused",
			slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		return nil
	}
	return c
}

// isUpgrade reports whether r asks for a WebSocket upgrade (ws.Accept
// checks the rest of the handshake).
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Upgrade", "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

// headerHasToken reports whether the comma-separated values of header
// name include token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// offersSubprotocol reports whether the Sec-WebSocket-Protocol values
// include ours.
func offersSubprotocol(values []string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.TrimSpace(t) == subprotocol {
				return true
			}
		}
	}
	return false
}

// authError turns an auth failure into the API error clients see.
func authError(err error) error {
	switch {
	case errors.Is(err, auth.ErrExpired):
		return errf(protocol.CodeUnauthorized, "token expired")
	case errors.Is(err, auth.ErrNoCredentials):
		return errf(protocol.CodeUnauthorized, "missing bearer token")
	}
	return errf(protocol.CodeUnauthorized, "invalid credentials")
}

// start registers the session and hands the connection to the server's
// Poller; it returns at once (the connection's request goroutine ends).
func (w *wsConn) start(id chat.Identity) {
	s := w.s
	ctx := s.ctx
	sess, err := s.cfg.Chat.Connect(ctx, id, w)
	if err != nil {
		code, msg := classify(err)
		s.log.LogAttrs(ctx, levelFor(code), "connect refused", w.logAttrs(slog.String("code", string(code)), slog.Any("err", err))...)
		w.Close(closeCodeFor(err), msg)
		w.partDone() // nothing was read
		return
	}
	w.sess = sess
	if s.log.Enabled(ctx, slog.LevelDebug) { // the attributes cost an allocation
		s.log.LogAttrs(ctx, slog.LevelDebug, "connected", w.logAttrs(slog.String("subprotocol", w.c.Subprotocol()))...)
	}
	p, err := s.wsPoller()
	if err == nil {
		err = p.Serve(w.c, w)
	}
	if err != nil {
		switch {
		case errors.Is(err, ws.ErrPollerClosed):
			w.Close(int(ws.StatusGoingAway), "server shutting down")
		case w.closing():
			// Closed meanwhile (shutdown began, or the welcome could
			// not be written): there is nothing left to serve.
		default:
			s.log.LogAttrs(ctx, slog.LevelError, "websocket not served", w.logAttrs(slog.Any("err", err))...)
			w.Close(int(ws.StatusInternalError), "internal error")
		}
		w.endRead()
	}
}

// logAttrs are the connection's log attributes followed by more.
func (w *wsConn) logAttrs(more ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{slog.String("user", w.user), slog.String("remote", w.remote)}, more...)
}

// partDone ends one of the connection's two halves (see parts); the last
// one releases the connection.
func (w *wsConn) partDone() {
	if w.parts.Add(-1) != 0 {
		return
	}
	w.c.CloseNow()
	w.s.metrics.connections.Dec()
	w.s.untrack(w)
}

// abort drops the connection at once: Shutdown's last resort.
func (w *wsConn) abort() { w.c.CloseNow() }

// Bounds of one batched write: the writer takes every frame already queued,
// up to these, and sends them in one system call (ws.Conn.WriteBatch),
// which under load is most of the cost of writing a frame.
const (
	writeBatchFrames = 128
	writeBatchBytes  = 128 << 10
)

// batchPool holds writers' batch slices: a writer goroutine runs only
// while frames are queued, and must not allocate its batch every time.
var batchPool = sync.Pool{New: func() any {
	b := make([][]byte, 0, writeBatchFrames)
	return &b
}}

// writeLoop writes queued frames until none is left, and then ends (a Send
// starts the next one). When a close is requested it flushes the queue
// (unless the client is a slow consumer, whose backlog is pointless to
// push: it will sync), performs the close handshake and ends for good.
func (w *wsConn) writeLoop() {
	bp := batchPool.Get().(*[][]byte)
	defer batchPool.Put(bp)
	batch := (*bp)[:0]
	for {
		if w.closing() {
			w.closeOut(batch)
			return
		}
		if w.queued() == 0 {
			// Nothing queued: end, unless a frame or a close request
			// came after the check and its kick found this writer
			// still running.
			w.writing.Store(false)
			if w.queued() == 0 && !w.closing() {
				w.shrink()
				return
			}
			if !w.writing.CompareAndSwap(false, true) {
				return // a kick started another writer
			}
			continue
		}
		// Let the goroutines already runnable go first: after a commit,
		// the sessions it woke queue their acks and deliveries within a
		// moment, and what they queue here meanwhile leaves in this
		// write instead of one write each.
		runtime.Gosched()
		batch = w.take(batch, writeBatchFrames, writeBatchBytes)
		w.wmu.Lock()
		ok := w.writeBy(batch, w.nextDeadline())
		w.wmu.Unlock()
		w.unwritten.Add(-int64(len(batch)))
		clear(batch) // the frames are garbage once written
		batch = batch[:0]
		if !ok {
			// The peer is gone or stuck past WriteTimeout: mark the sink
			// closing so Send and SendWait stop queueing (the handler may
			// be waiting in SendWait), then drop TCP, which ends the read
			// side. writing stays set: no writer runs again.
			w.outbox.Close(int(ws.StatusAbnormalClosure), "write failed")
			w.c.CloseNow()
			w.partDone()
			return
		}
	}
}

// closeOut runs once a close is requested: it flushes the queue (not to a
// slow consumer) and sends the close frame; batch is an empty slice to
// collect frames in. The writer ends for good.
func (w *wsConn) closeOut(batch [][]byte) {
	w.mu.Lock()
	code, reason := w.code, w.reason
	w.mu.Unlock()
	w.wmu.Lock() // a reply being written goes out whole first
	if code != protocol.CloseSlowConsumer {
		w.flush(batch)
	}
	w.c.SetWriteDeadline(time.Now().Add(w.s.cfg.WriteTimeout))
	w.c.Close(ws.StatusCode(code), reason)
	w.wmu.Unlock()
	w.partDone()
}

// flush writes what is queued, within DrainTimeout; batch is an empty
// slice to collect the frames in.
func (w *wsConn) flush(batch [][]byte) {
	deadline := time.Now().Add(w.s.cfg.DrainTimeout)
	for time.Now().Before(deadline) {
		batch = w.take(batch[:0], writeBatchFrames, writeBatchBytes)
		if len(batch) == 0 || !w.writeBy(batch, deadline) {
			return
		}
		clear(batch)
	}
}

// nextDeadline is the write deadline of the next write: WriteTimeout
// from now, except that a deadline set less than a tenth of WriteTimeout
// ago is kept, which spares re-arming the connection's timer for every
// write under load (a write then gets at least 0.9 WriteTimeout). The
// caller holds wmu.
func (w *wsConn) nextDeadline() time.Time {
	now := time.Now()
	if w.deadline.Sub(now) >= w.s.cfg.WriteTimeout*9/10 {
		return w.deadline
	}
	return now.Add(w.s.cfg.WriteTimeout)
}

// writeBy writes the frames of batch, one message each, in one batched
// write; a deadline on the connection rather than a context per write
// keeps the hot path free of allocations.
func (w *wsConn) writeBy(batch [][]byte, deadline time.Time) bool {
	if !deadline.Equal(w.deadline) {
		w.c.SetWriteDeadline(deadline)
		w.deadline = deadline
	}
	if err := w.c.WriteBatch(context.Background(), ws.MessageText, batch); err != nil {
		return false
	}
	w.s.metrics.framesOut.Add(float64(len(batch)))
	return true
}

// closeCodeFor maps a refused Connect to a close code.
func closeCodeFor(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return (&chat.Error{Code: ae.code}).CloseCode()
	}
	return chat.AsError(err).CloseCode()
}

// levelFor is the log level of a refusal: server faults are errors, client
// conditions are routine.
func levelFor(c protocol.Code) slog.Level {
	if statusFor(c) >= 500 && c != protocol.CodeUnavailable {
		return slog.LevelError
	}
	return slog.LevelInfo
}
