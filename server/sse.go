package server

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

// sseConn is one Server-Sent Events client: it implements chat.FlowSink
// with a bounded queue drained by the handler goroutine, exactly like a
// WebSocket connection without the upstream half.
type sseConn struct {
	outbox
	s *Server
}

var _ chat.FlowSink = (*sseConn)(nil)

// handleSSE serves GET /sse: a chat session whose frames are written as
// events. Requests go to POST /rpc (subscribe/unsubscribe with the
// welcome's session id).
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		s.writeError(w, r, errf(protocol.CodeUnavailable, "server shutting down"))
		return
	}
	p, err := s.cfg.Auth.Authenticate(r)
	if err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	id := chat.Identity{UserID: p.UserID, Admin: p.Admin, ExpiresAt: p.ExpiresAt}
	if err := userIdentity(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	c := &sseConn{outbox: newOutbox(s.cfg.SendQueue, s.metrics.queueDrops, true), s: s}
	if !s.track(c) {
		s.writeError(w, r, errf(protocol.CodeUnavailable, "server shutting down"))
		return
	}
	defer s.untrack(c)
	log := s.log.With(slog.String("user", id.UserID), slog.String("remote", r.RemoteAddr))
	ctx := r.Context()
	// Connect before answering, so that a refusal is an HTTP error (the
	// welcome waits in the queue).
	sess, err := s.fb.ConnectStream(ctx, id, c)
	if err != nil {
		code, _ := classify(err)
		log.LogAttrs(ctx, levelFor(code), "connect refused", slog.String("code", string(code)), slog.Any("err", err))
		s.writeError(w, r, err)
		return
	}
	defer sess.Close()
	s.metrics.connections.Inc()
	s.metrics.connsTotal.Inc()
	defer s.metrics.connections.Dec()

	rc := http.NewResponseController(w)
	// The stream outlives the server's read timeout, which would cancel the
	// request when it passed; writes get a deadline each instead.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	ev := &sseWriter{w: bufio.NewWriterSize(w, 4096), rc: rc, timeout: s.cfg.WriteTimeout}
	if err := ev.flush(); err != nil {
		return
	}
	log.LogAttrs(ctx, slog.LevelDebug, "event stream connected")
	ping := time.NewTicker(s.cfg.SSEPingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.ready:
			if err := c.writeQueued(ev); err != nil {
				log.LogAttrs(ctx, slog.LevelDebug, "event stream write failed", slog.Any("err", err))
				c.Close(1006, "write failed")
				return
			}
		case <-ping.C:
			if ev.ping() != nil || ev.flush() != nil {
				c.Close(1006, "write failed")
				return
			}
		case <-c.done:
			c.mu.Lock()
			code, reason := c.code, c.reason
			c.mu.Unlock()
			if code != protocol.CloseSlowConsumer {
				c.flushQueue(ev)
			}
			ev.close(code, reason)
			ev.flush()
			return
		case <-ctx.Done():
			log.LogAttrs(ctx, slog.LevelDebug, "event stream ended by the client")
			c.Close(1001, "client gone")
			return
		}
	}
}

// writeQueued writes what is queued, then flushes once.
func (c *sseConn) writeQueued(ev *sseWriter) error {
	var one [1][]byte
	for {
		batch := c.take(one[:0], 1, 0)
		if len(batch) == 0 {
			return ev.flush()
		}
		if err := ev.data(batch[0]); err != nil {
			return err
		}
		c.s.metrics.framesOut.Inc()
	}
}

// flushQueue writes what is queued before a close, within DrainTimeout.
func (c *sseConn) flushQueue(ev *sseWriter) {
	ev.timeout = c.s.cfg.DrainTimeout
	var one [1][]byte
	for {
		batch := c.take(one[:0], 1, 0)
		if len(batch) == 0 || ev.data(batch[0]) != nil {
			return
		}
	}
}

// sseWriter formats Server-Sent Events onto a response.
type sseWriter struct {
	w       *bufio.Writer
	rc      *http.ResponseController
	timeout time.Duration
	err     error
}

// data writes one duplex.v1 frame as a message event. JSON frames are one
// line, except for raw JSON the client supplied (meta, channel data),
// which may contain line breaks: each line becomes a data field and
// EventSource joins them with "\n", which JSON treats as white space.
func (e *sseWriter) data(f []byte) error {
	e.deadline()
	start := 0
	for i := 0; i <= len(f); i++ {
		if i < len(f) && f[i] != '\n' && f[i] != '\r' {
			continue
		}
		e.w.WriteString("data: ")
		e.w.Write(f[start:i])
		e.w.WriteByte('\n')
		if i+1 < len(f) && f[i] == '\r' && f[i+1] == '\n' {
			i++
		}
		start = i + 1
	}
	_, err := e.w.WriteString("\n")
	return err
}

func (e *sseWriter) ping() error {
	e.deadline()
	_, err := e.w.WriteString("event: ping\ndata: {}\n\n")
	return err
}

// close writes the close event: the WebSocket close code and reason the
// stream ends with.
func (e *sseWriter) close(code int, reason string) error {
	e.deadline()
	b, _ := json.Marshal(closeData{Code: code, Reason: reason}) // cannot fail
	e.w.WriteString("event: close\ndata: ")
	e.w.Write(b)
	_, err := e.w.WriteString("\n\n")
	return err
}

// closeData is the data of a close event.
type closeData struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// flush sends what is buffered to the client.
func (e *sseWriter) flush() error {
	e.deadline()
	if err := e.w.Flush(); err != nil {
		return err
	}
	return e.rc.Flush()
}

// deadline extends the write deadline for the next write: the stream
// outlives any fixed write timeout of the http.Server.
func (e *sseWriter) deadline() {
	e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
}
