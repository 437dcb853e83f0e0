package ws_test

// Liveness: Ping from our side (RFC 6455 sections 5.5.2 and 5.5.3), the
// heartbeat options, and closing a Conn that is blocked in Read.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// TestConformancePingFromUs: Ping sends a ping, ignores pongs whose payload
// is not its own, and returns once the matching pong arrives.
func TestConformancePingFromUs(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pinged := make(chan error, 1)
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			go func() {
				pctx, cancel := context.WithTimeout(ctx, ioTimeout)
				defer cancel()
				pinged <- c.Ping(pctx)
			}()
			return echo(ctx, c) // the reader that sees the pong
		}})
		f := pr.peer.readFrame()
		if f.op != opPing || !f.fin || f.rsv != 0 || len(f.payload) > 125 {
			t.Fatalf("Ping sent %v", f)
		}
		// A pong with another payload does not answer it (if the ping's
		// payload is empty, use a non-empty one; else an empty one).
		other := []byte("not yours")
		if len(f.payload) != 0 {
			other = nil
		}
		pr.peer.writeFrame(frame{fin: true, op: opPong, payload: other})
		pr.echoes(opText, []byte("sync"), sendOpts{}) // the stray pong was processed
		select {
		case err := <-pinged:
			t.Fatalf("Ping returned (%v) on a pong with another payload", err)
		default:
		}
		pr.peer.writeFrame(frame{fin: true, op: opPong, payload: f.payload})
		select {
		case err := <-pinged:
			if err != nil {
				t.Fatalf("Ping: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("Ping did not return after its pong")
		}
		pr.closeNormally()
	})
}

// TestConformanceHeartbeat: with PingInterval set, a peer that never
// answers pings is disconnected and Read fails with ErrPongTimeout; a peer
// that answers stays connected.
func TestConformanceHeartbeat(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		// Generous timeout: a loaded machine must not make a live peer look dead.
		pr := h.start(t, config{pingInterval: 100 * time.Millisecond, pongTimeout: time.Second})
		// Answer a few pings: the connection must stay up.
		for range 3 {
			f := pr.peer.readFrame()
			if f.op != opPing {
				t.Fatalf("heartbeat sent %v", f)
			}
			pr.peer.writeFrame(frame{fin: true, op: opPong, payload: f.payload})
		}
		pr.echoes(opBinary, []byte("still here"), sendOpts{})
		// Then go silent: our side must give up.
		deadline := time.Now().Add(ioTimeout)
		for {
			f, err := pr.peer.tryReadFrame()
			if err != nil || time.Now().After(deadline) {
				break // connection closed by our side
			}
			if f.op == opClose {
				pr.peer.nc.Close()
				break
			}
		}
		select {
		case err := <-pr.done:
			pr.done <- err
			if !errors.Is(err, ws.ErrPongTimeout) {
				t.Fatalf("Read after the peer went silent: %v, want ErrPongTimeout", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("Read did not fail after the peer stopped answering pings")
		}
	})
}

// TestConformanceCloseNowUnblocksRead: CloseNow from another goroutine ends
// a Read blocked on a silent peer with ErrClosed.
func TestConformanceCloseNowUnblocksRead(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		started := make(chan *ws.Conn, 1)
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			started <- c
			_, _, err := c.Read(ctx)
			return err
		}})
		c := <-started
		time.Sleep(20 * time.Millisecond) // let Read block
		c.CloseNow()
		select {
		case err := <-pr.done:
			pr.done <- err
			if !errors.Is(err, ws.ErrClosed) {
				t.Fatalf("Read after CloseNow: %v, want ErrClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("CloseNow did not unblock Read")
		}
	})
}

// TestConformanceReadContext: cancelling Read's context ends the Read.
func TestConformanceReadContext(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, _, err := c.Read(rctx)
			return err
		}})
		select {
		case err := <-pr.done:
			pr.done <- err
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Read with an expired context: %v, want context.DeadlineExceeded", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("Read ignored its context")
		}
	})
}
