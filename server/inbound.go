package server

import (
	"bytes"
	"log/slog"
	"sync"

	"github.com/duplexhq/duplex/ws"
)

// The read side of a WebSocket client. The server's ws.Poller reads every
// connection with a few worker goroutines and calls OnMessage for each
// frame; handling a frame may wait (a send waits for its commit, a sync
// for room in the send queue), which must not hold a worker that serves
// other connections. So OnMessage only queues a copy of the frame, and a
// handler goroutine, started when the queue becomes non-empty and ended
// when it is empty again, hands the frames to the session in order. A
// client that sends faster than its frames are handled is paused (the
// Poller stops reading it, and TCP flow control holds the client back)
// while its queue is over inboundMaxFrames or inboundMaxBytes, as a
// goroutine blocked in the session would have held it back.

// Bounds of the frames queued per connection before it is paused. Both are
// far above what a well-behaved client has in flight (the bundled clients
// wait for each send's ack beyond a small window), and low enough that the
// queue's memory stays small next to the read limit.
const (
	inboundMaxFrames = 64
	inboundMaxBytes  = 256 << 10
)

// inbound is a connection's queue of frames read and not yet handled.
type inbound struct {
	mu       sync.Mutex
	frames   frameRing
	bytes    int  // in frames
	handling bool // a handler goroutine runs
	paused   bool // the Poller was told to stop reading
	ended    bool // OnClose came: the read side ends after the queue
}

// full reports whether the queue is over its bounds; low, whether it is
// back under half of them, when a paused connection is resumed (not at
// once below the bounds: a client kept at the bound would be paused and
// resumed, a system call each, at every frame). in.mu is held.
func (in *inbound) full() bool {
	return in.frames.len() >= inboundMaxFrames || in.bytes >= inboundMaxBytes
}

func (in *inbound) low() bool {
	return in.frames.len() <= inboundMaxFrames/2 && in.bytes <= inboundMaxBytes/2
}

// OnMessage queues a frame read by the Poller (ws.Handler).
func (w *wsConn) OnMessage(c *ws.Conn, typ ws.MessageType, p []byte) {
	if typ != ws.MessageText {
		w.Close(int(ws.StatusUnsupportedData), "duplex.v1 frames are JSON text")
		return
	}
	w.s.metrics.framesIn.Inc()
	f := bytes.Clone(p) // p is the Poller's buffer
	in := &w.in
	in.mu.Lock()
	in.frames.push(f)
	in.bytes += len(f)
	if !in.paused && in.full() {
		in.paused = true
		c.Pause()
	}
	start := !in.handling
	in.handling = true
	in.mu.Unlock()
	if start {
		go w.handle()
	}
}

// OnClose is called by the Poller when the connection has ended
// (ws.Handler): the frames still queued are handled, then the session ends.
func (w *wsConn) OnClose(_ *ws.Conn, err error) {
	if w.s.log.Enabled(w.s.ctx, slog.LevelDebug) { // the attributes cost an allocation
		w.s.log.LogAttrs(w.s.ctx, slog.LevelDebug, "connection ended", w.logAttrs(slog.Any("err", err))...)
	}
	in := &w.in
	in.mu.Lock()
	in.ended = true
	start := !in.handling
	in.handling = true
	in.mu.Unlock()
	if start {
		// Not on the caller's goroutine: ending the session may wait
		// (presence, the broker), and the caller may be a Poller worker.
		go w.handle()
	}
}

// handle is the handler goroutine: it hands the queued frames to the
// session in order and ends when the queue is empty, ending the read side
// too if the connection has ended.
func (w *wsConn) handle() {
	in := &w.in
	for {
		in.mu.Lock()
		if in.frames.len() == 0 {
			in.frames.shrink()
			ended := in.ended
			if !ended {
				in.handling = false
			}
			in.mu.Unlock()
			if ended {
				w.endRead()
			}
			return
		}
		f := in.frames.pop()
		in.bytes -= len(f)
		resume := in.paused && in.low()
		if resume {
			in.paused = false
		}
		in.mu.Unlock()
		if resume {
			w.c.Resume()
		}
		w.sess.Handle(w.s.ctx, f)
	}
}

// endRead ends the read side once nothing more will be read or handled:
// the session ends, and the writer is asked to close the connection (a
// no-op if a close was already requested).
func (w *wsConn) endRead() {
	if w.sess != nil {
		w.sess.Close()
	}
	w.Close(int(ws.StatusNormalClosure), "")
	w.partDone()
}
