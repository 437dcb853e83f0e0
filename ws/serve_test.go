package ws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// testPoller serves the connections of the event-mode tests, including the
// poller variant of every conformance case (harness.poller).
var testPoller *ws.Poller

func startTestPoller() (stop func()) {
	p, err := ws.NewPoller(&ws.PollerOptions{Workers: 2, ReadBufferSize: 4 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ws: NewPoller:", err)
		os.Exit(1)
	}
	testPoller = p
	return func() {
		if err := p.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "ws: Poller.Close:", err)
		}
	}
}

// echoHandler writes every message back and reports the end.
type echoHandler struct {
	done chan error
	// onMessage, if set, replaces the echo.
	onMessage func(c *ws.Conn, typ ws.MessageType, p []byte)
}

func newEchoHandler() *echoHandler { return &echoHandler{done: make(chan error, 1)} }

func (h *echoHandler) OnMessage(c *ws.Conn, typ ws.MessageType, p []byte) {
	if h.onMessage != nil {
		h.onMessage(c, typ, p)
		return
	}
	// A failed write closes the Conn; OnClose reports it.
	_ = c.Write(context.Background(), typ, p)
}

func (h *echoHandler) OnClose(_ *ws.Conn, err error) { h.done <- err }

// pollerEcho is echo served by testPoller: its result is what OnClose got.
func pollerEcho(ctx context.Context, c *ws.Conn) error {
	return serveWith(ctx, c, newEchoHandler())
}

func serveWith(ctx context.Context, c *ws.Conn, h *echoHandler) error {
	if err := testPoller.Serve(c, h); err != nil {
		return err
	}
	select {
	case err := <-h.done:
		return err
	case <-ctx.Done():
		c.CloseNow()
		return <-h.done
	}
}

func TestPollerEcho(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: pollerEcho, readLimit: 1 << 20})
		for _, op := range []byte{opText, opBinary} {
			for _, n := range []int{0, 1, 125, 126, 5000, 70000} {
				pr.echoes(op, testPayload(op, n, 1), sendOpts{})
				pr.echoes(op, testPayload(op, n, 2), sendOpts{fragments: 3})
			}
		}
		pr.echoes(opText, testPayload(opText, 300, 3), sendOpts{uncompress: true})
		pr.closeNormally()
	})
}

// TestPollerChoppedInput feeds frames one byte per write, so every header,
// payload and control frame is split across readiness events.
func TestPollerChoppedInput(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: pollerEcho})
		pr.peer.chop = true
		pr.echoes(opText, testPayload(opText, 200, 4), sendOpts{fragments: 2})
		pr.peer.writeFrame(frame{fin: true, op: opPing, payload: []byte("chopped ping")})
		if f := pr.peer.readFrame(); f.op != opPong || string(f.payload) != "chopped ping" {
			t.Fatalf("got %v %q, want the pong", f, f.payload)
		}
		pr.peer.chop = false
		pr.closeNormally()
	})
}

func TestPollerControlFrames(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: pollerEcho})
		// A ping between the fragments of a message is answered at once.
		pr.peer.writeFrames(
			frame{fin: false, op: opText, payload: []byte("hel")},
			frame{fin: true, op: opPing, payload: []byte("p1")},
		)
		if f := pr.peer.readFrame(); f.op != opPong || string(f.payload) != "p1" {
			t.Fatalf("got %v %q, want pong p1", f, f.payload)
		}
		pr.peer.writeFrame(frame{fin: true, op: opCont, payload: []byte("lo")})
		if m := pr.peer.readMessage(); m.op != opText || string(m.payload) != "hello" {
			t.Fatalf("got %#x %q, want text hello", m.op, m.payload)
		}
		// Unsolicited pongs are ignored.
		pr.peer.writeFrame(frame{fin: true, op: opPong, payload: []byte("x")})
		pr.echoes(opBinary, []byte{1, 2, 3}, sendOpts{})
		pr.closeNormally()
	})
}

// TestPollerBadInput checks that violations through the Poller get the
// right close code and error, as they do through Read.
func TestPollerBadInput(t *testing.T) {
	cases := []struct {
		name  string
		frame frame
		code  ws.StatusCode
		is    error
	}{
		{"reserved opcode", frame{fin: true, op: 0x3}, ws.StatusProtocolError, ws.ErrProtocol},
		{"RSV2", frame{fin: true, op: opBinary, rsv: 0x20}, ws.StatusProtocolError, ws.ErrProtocol},
		{"continuation first", frame{fin: true, op: opCont, payload: []byte("x")}, ws.StatusProtocolError, ws.ErrProtocol},
		{"fragmented ping", frame{fin: false, op: opPing}, ws.StatusProtocolError, ws.ErrProtocol},
		{"bad UTF-8", frame{fin: true, op: opText, payload: []byte{'a', 0xff}}, ws.StatusInvalidPayload, ws.ErrInvalidUTF8},
		{"too big", frame{fin: true, op: opBinary, payload: make([]byte, 2000)}, ws.StatusMessageTooBig, ws.ErrMessageTooBig},
		{"bad close code", frame{fin: true, op: opClose, payload: []byte{0x03, 0xe7}}, ws.StatusProtocolError, ws.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachSide(t, modes[0], func(t *testing.T, h harness) {
				pr := h.start(t, config{serve: pollerEcho, readLimit: 1000})
				pr.peer.writeFrame(tc.frame)
				pr.failsWith(tc.code, tc.is)
			})
		})
	}
}

// TestPollerCompressedBadInput sends corrupt deflate data and a compressed
// text message that inflates to invalid UTF-8.
func TestPollerCompressedBadInput(t *testing.T) {
	forEachSide(t, modes[2], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: pollerEcho})
		pr.peer.writeFrame(frame{fin: true, op: opBinary, rsv: bitRSV1, payload: []byte{0xff, 0xff, 0xff}})
		pr.failsWith(ws.StatusInvalidPayload, nil)
	})
	forEachSide(t, modes[2], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: pollerEcho})
		pr.peer.writeFrame(frame{fin: true, op: opText, rsv: bitRSV1, payload: pr.peer.deflate.compress(bytes.Repeat([]byte{0xc3}, 200))})
		pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
	})
}

// TestPollerCloseFromHandler closes from inside OnMessage: the close frame
// goes out, the Poller reads the peer's answer and reports it.
func TestPollerCloseFromHandler(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		eh := newEchoHandler()
		eh.onMessage = func(c *ws.Conn, _ ws.MessageType, p []byte) {
			if string(p) == "bye" {
				if err := c.Close(ws.StatusPolicyViolation, "go away"); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error { return serveWith(ctx, c, eh) }})
		pr.peer.sendMessage(opText, []byte("bye"), sendOpts{})
		pr.peer.expectClose(int(ws.StatusPolicyViolation))
		pr.peer.finishClose(int(ws.StatusPolicyViolation))
		pr.wantResult(ws.StatusPolicyViolation)
	})
}

// TestPollerCloseNow closes idle served connections from outside: each gets
// OnClose with ErrClosed, once.
func TestPollerCloseNow(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		var conn *ws.Conn
		var mu sync.Mutex
		ready := make(chan struct{})
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			mu.Lock()
			conn = c
			mu.Unlock()
			eh := newEchoHandler()
			if err := testPoller.Serve(c, eh); err != nil {
				return err
			}
			close(ready)
			return <-eh.done
		}})
		<-ready
		pr.echoes(opText, []byte("x"), sendOpts{})
		mu.Lock()
		conn.CloseNow()
		mu.Unlock()
		select {
		case err := <-pr.done:
			pr.done <- err
			if !errors.Is(err, ws.ErrClosed) {
				t.Errorf("OnClose got %v, want ErrClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("OnClose not called after CloseNow")
		}
	})
}

// TestPollerPeerVanishes: the peer drops TCP without a close frame.
func TestPollerPeerVanishes(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: pollerEcho})
		pr.echoes(opText, []byte("x"), sendOpts{})
		pr.peer.nc.Close()
		pr.wantResult(ws.StatusAbnormalClosure)
	})
}

// closeCounter counts OnClose calls that carried ErrClosed.
type closeCounter struct {
	echoHandler
	closed, other atomic.Int32
}

func (h *closeCounter) OnClose(c *ws.Conn, err error) {
	if errors.Is(err, ws.ErrClosed) {
		h.closed.Add(1)
	} else {
		h.other.Add(1)
	}
	h.echoHandler.OnClose(c, err)
}

// TestPollerClose closes the Poller with connections still served: they
// are closed and OnClose runs for each before Close returns.
func TestPollerClose(t *testing.T) {
	p, err := ws.NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := harness{side: ourServer, mode: modes[0]}
	cc := &closeCounter{echoHandler: echoHandler{done: make(chan error, 3)}}
	var prs []*pair
	for range 3 {
		prs = append(prs, h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			if err := p.Serve(c, cc); err != nil {
				return err
			}
			return nil
		}}))
	}
	for _, pr := range prs {
		pr.echoes(opBinary, []byte("before close"), sendOpts{})
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, o := cc.closed.Load(), cc.other.Load(); n != 3 || o != 0 {
		t.Errorf("after Close: %d OnClose with ErrClosed and %d others, want 3 and 0", n, o)
	}
	if err := p.Serve(prs[0].conn, newEchoHandler()); err == nil {
		t.Error("Serve after Close succeeded")
	}
}

// TestPollerHeartbeatGoroutines: polled connections with a PingInterval
// are pinged by the Poller's single heartbeat goroutine, not by one
// goroutine each, and still answer the peer's pings.
func TestPollerHeartbeatGoroutines(t *testing.T) {
	h := harness{side: ourServer, mode: modes[0]}
	var prs []*pair
	for range 5 {
		prs = append(prs, h.start(t, config{serve: pollerEcho, pingInterval: 50 * time.Millisecond, pongTimeout: time.Second}))
	}
	for _, pr := range prs {
		// The heartbeat pings each connection; the peer answers.
		f := pr.peer.readFrame()
		if f.op != opPing {
			t.Fatalf("expected a heartbeat ping, got %v", f)
		}
		pr.peer.writeFrame(frame{fin: true, op: opPong, payload: f.payload})
	}
	if n := strings.Count(wsStacks(), "ws.(*Conn).heartbeat("); n != 0 {
		t.Errorf("%d per-connection heartbeat goroutines for polled connections, want 0", n)
	}
	if n := strings.Count(wsStacks(), "ws.(*Poller).beat("); n != 1 {
		t.Errorf("%d Poller heartbeat goroutines, want 1", n)
	}
	// The pairs' cleanup closes them (a close handshake here could race
	// with the next heartbeat ping).
}
