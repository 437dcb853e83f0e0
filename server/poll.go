package server

import (
	"context"
	"net/http"
	"time"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

// pollRequest is the body of POST /poll.
type pollRequest struct {
	// Cursors: conversation -> highest seq held, for every conversation
	// the client knows.
	Cursors map[string]int64 `json:"cursors"`
	// Channels: subscribed channel -> last offset held (0: live only).
	Channels map[string]int64 `json:"channels"`
	// Reads: conversation -> member -> read seq the client knows; members
	// whose read cursor moved past it come back as receipt frames.
	Reads map[string]map[string]int64 `json:"reads"`
	// Presence: user -> whether the client shows it online; users whose
	// status differs come back as presence frames.
	Presence map[string]bool `json:"presence"`
	// WaitMS is how long to wait for live events when nothing is ready
	// (capped at chat.MaxPollWait).
	WaitMS int64 `json:"wait_ms"`
}

// poll answers POST /poll: everything the client misses by its cursors at
// once, or else the live events of the next wait_ms. Nothing is kept
// between polls, so any node answers any poll. The first poll of a client
// (no cursors, wait_ms 0) is the handshake: it gets the welcome frame.
func (s *Server) poll(w http.ResponseWriter, r *http.Request, id chat.Identity) error {
	if err := userIdentity(id); err != nil {
		return err
	}
	if s.shuttingDown.Load() {
		return errf(protocol.CodeUnavailable, "server shutting down")
	}
	var req pollRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.WaitMS < 0 {
		return errf(protocol.CodeBadRequest, "wait_ms must not be negative")
	}
	wait := min(time.Duration(req.WaitMS)*time.Millisecond, chat.MaxPollWait)
	// The wait outlives the server's read and write timeouts, which are
	// sized for ordinary requests: a read deadline left in place would
	// cancel the request when it passes.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(wait + s.cfg.WriteTimeout))
	// A shutdown ends the wait early: the poll answers with what it has.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.drain, cancel)
	defer stop()
	frames, err := s.fb.Poll(ctx, id, chat.PollRequest{
		Cursors:   req.Cursors,
		Channels:  req.Channels,
		Reads:     req.Reads,
		Presence:  req.Presence,
		Wait:      wait,
		Handshake: len(req.Cursors) == 0 && req.WaitMS == 0,
	})
	if err != nil {
		return err
	}
	s.metrics.framesOut.Add(float64(len(frames)))
	writeFrames(w, frames)
	return nil
}
