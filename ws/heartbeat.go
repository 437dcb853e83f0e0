package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Ping sends a ping and waits for the matching pong. Pongs are read by
// whoever reads the connection, so another goroutine must be in Read or
// Reader meanwhile; without one, Ping waits until ctx is done. Each ping
// carries an 8-byte sequence number, so concurrent Pings each wait for their
// own pong; unsolicited pongs are ignored.
func (c *Conn) Ping(ctx context.Context) error {
	ch := make(chan struct{})
	c.pingMu.Lock()
	c.pingID++
	id := c.pingID
	if c.pings == nil {
		c.pings = make(map[uint64]chan struct{})
	}
	c.pings[id] = ch
	c.pingMu.Unlock()
	defer func() {
		c.pingMu.Lock()
		delete(c.pings, id)
		if len(c.pings) == 0 {
			c.pings = nil // an idle Conn keeps no map
		}
		c.pingMu.Unlock()
	}()

	var p [8]byte
	binary.BigEndian.PutUint64(p[:], id)
	if err := c.lock(ctx, &c.frameMu); err != nil {
		return fmt.Errorf("ws: ping: %w", err)
	}
	err := error(nil)
	if c.closeSent {
		err = fmt.Errorf("ws: ping after close: %w", ErrClosed)
	} else {
		stop := c.watch(ctx, true)
		err = c.writeFrameLocked(true, false, opPing, p[:])
		if stop != nil && !stop() {
			err = c.abort(fmt.Errorf("ws: ping cancelled, connection closed: %w", context.Cause(ctx)))
		}
	}
	c.frameMu.unlock()
	if err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ws: waiting for pong: %w", context.Cause(ctx))
	case <-c.closed:
		return c.closedErr("waiting for pong")
	}
}

// gotPong wakes the Ping waiting for this payload.
func (c *Conn) gotPong(p []byte) {
	if len(p) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(p)
	c.pingMu.Lock()
	if ch, ok := c.pings[id]; ok {
		close(ch)
		delete(c.pings, id)
	}
	c.pingMu.Unlock()
}

// errPongTimeout is the cause recorded when the heartbeat closes a
// connection: operations then fail with both ErrPongTimeout and ErrClosed.
var errPongTimeout = fmt.Errorf("%w, %w", ErrPongTimeout, ErrClosed)

// heartbeat pings every interval and closes the connection when the peer
// looks dead: no pong within timeout and no other input either, while a
// reader was waiting for input (without a reader, pongs cannot be seen, so
// nothing is concluded). It runs only when a ping interval is configured and
// exits when the connection closes.
func (c *Conn) heartbeat(interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		if !c.reading.Load() {
			continue
		}
		recvs := c.recvs.Load()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.Ping(ctx)
		timedOut := ctx.Err() != nil // read before cancel, which sets it too
		cancel()
		switch {
		case err == nil:
		case c.isClosed():
			return
		case timedOut && c.recvs.Load() == recvs && c.reading.Load():
			// A close handshake would not complete either.
			c.closeTCPCause(errPongTimeout)
			return
		case errors.Is(err, ErrClosed):
			// A close frame went out: no more pings, and the close
			// handshake has a timeout of its own.
			return
		}
	}
}
