package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

// maxRPCReply bounds the frames of one /rpc answer. A sync answer is
// bounded by the chat service's page (chat.Config.SyncPage messages), so
// this only stops a pathological configuration from buffering without
// limit.
const maxRPCReply = 32 << 20

// frameSink is the chat.Sink of one /rpc or /poll answer: it collects the
// frames to send as {"frames":[...]}.
type frameSink struct {
	frames [][]byte
	size   int
	code   int // close code, if the chat service closed the "connection"
	reason string
}

// Send implements chat.Sink.
func (f *frameSink) Send(frame []byte) bool {
	if f.size+len(frame) > maxRPCReply {
		return false
	}
	f.frames = append(f.frames, frame)
	f.size += len(frame)
	return true
}

// Close implements chat.Sink.
func (f *frameSink) Close(code int, reason string) {
	if f.code == 0 {
		f.code, f.reason = code, reason
	}
}

// writeFrames answers 200 {"frames":[...]}, the frames as they are (each
// is one encoded duplex.v1 frame).
func writeFrames(w http.ResponseWriter, frames [][]byte) {
	size := 16
	for _, f := range frames {
		size += len(f) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"frames":[`...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	b = append(b, "]}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// userIdentity refuses identities without a user: the fallback transports
// act for a user, as a WebSocket does (an admin names one with the act-as
// header).
func userIdentity(id chat.Identity) error {
	if id.UserID == "" {
		return errf(protocol.CodeBadRequest, "an admin request must name a user with "+auth.ActAsHeader)
	}
	return nil
}

// rpc answers POST /rpc: one duplex.v1 request frame in, the frames a
// WebSocket session would reply out. With ?session=<id> (from an SSE
// welcome), subscribe and unsubscribe act on that stream, wherever it is.
func (s *Server) rpc(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	if err := userIdentity(id); err != nil {
		return err
	}
	if s.shuttingDown.Load() {
		return errf(protocol.CodeUnavailable, "server shutting down")
	}
	frame, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.ReadLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(protocol.CodeTooLarge, "request frame over "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
		}
		return errf(protocol.CodeBadRequest, "reading the request body failed")
	}
	frame = bytes.TrimSpace(frame)
	if len(frame) == 0 {
		return errf(protocol.CodeInvalidJSON, "empty request body: send one duplex.v1 request frame")
	}
	if !json.Valid(frame) {
		return errf(protocol.CodeInvalidJSON, "request body is not valid JSON")
	}
	s.metrics.framesIn.Inc()
	var sink frameSink
	if sid := r.URL.Query().Get("session"); sid != "" {
		err = s.fb.DoSession(r.Context(), id, sid, frame, &sink)
	} else {
		err = s.fb.Do(r.Context(), id, frame, &sink)
	}
	if err != nil {
		return err
	}
	if sink.code != 0 && len(sink.frames) == 0 {
		return errf(protocol.CodeInternal, "the reply did not fit in one response")
	}
	s.metrics.framesOut.Add(float64(len(sink.frames)))
	writeFrames(w, sink.frames)
	return nil
}
