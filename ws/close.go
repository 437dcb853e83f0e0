package ws

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// maxCloseReason is what fits in a control frame after the 2-byte code.
const maxCloseReason = maxControlPayload - 2

// Close performs the close handshake with code and reason, then closes the
// TCP connection. It refuses (with ErrInvalidClose, sending nothing) codes
// that may not be sent (see validCloseCode) and reasons over 123 bytes or
// not valid UTF-8.
//
// After sending the close frame it waits up to 5 seconds for the peer's:
// if another goroutine is reading, that reader receives it (and gets a
// *CloseError); otherwise Close reads and discards messages itself. A server
// then closes TCP; a client first waits for the server to close it. Close
// returns nil when the handshake completed, and an error when the peer did
// not answer in time (the connection is closed either way). A concurrent
// second Close waits for the first; Close after the connection closed
// (including after the peer's close frame) returns an error wrapping
// ErrClosed.
//
// On a connection served by a Poller, Close returns once the close frame
// is sent: the Poller reads the peer's answer and closes TCP (or does so
// after 5 seconds), and the Handler's OnClose reports the outcome.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !validCloseCode(code) || len(reason) > maxCloseReason || !utf8.ValidString(reason) {
		return fmt.Errorf("%w: code %d, %d-byte reason", ErrInvalidClose, int(code), len(reason))
	}
	if c.isClosed() {
		return c.closedErr("close")
	}
	var buf [maxControlPayload]byte
	buf[0], buf[1] = byte(code>>8), byte(code)
	n := 2 + copy(buf[2:], reason)
	c.closing.Store(true)
	sent, already := c.writeClose(buf[:n])
	switch {
	case already:
		// Another Close (or a failure) is running the handshake.
		c.waitClosed()
		return c.closedErr("close")
	case !sent:
		c.closeTCP()
		return fmt.Errorf("ws: close: close frame not sent: %w", ErrClosed)
	}
	if c.polled() != nil {
		// A Poller reads the answer (possibly on this very goroutine,
		// once the handler returns): it closes TCP, bounded by a timer.
		c.armCloseTimer()
		return nil
	}
	err := c.awaitPeerClose()
	c.closeTCP()
	return err
}

// waitClosed waits for the TCP connection to be closed, at most
// closeTimeout.
func (c *Conn) waitClosed() bool {
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-c.closed:
		return true
	case <-t.C:
		return false
	}
}

// awaitPeerClose waits for the peer's close frame after ours was sent.
func (c *Conn) awaitPeerClose() error {
	if !c.reading.CompareAndSwap(false, true) {
		// A reader is active: it runs the rest of the handshake and
		// closes TCP.
		if !c.waitClosed() {
			return errors.New("ws: close: no close frame from the peer within 5s")
		}
		return nil
	}
	defer c.reading.Store(false)
	if c.getReadErr() != nil {
		return nil // the read side already ended (peer closed or failed)
	}
	c.nc.SetReadDeadline(time.Now().Add(closeTimeout))
	c.p.limit = c.limit.Load()
	for {
		ev, err := c.nextEvent()
		if err != nil {
			c.setReadErr(err)
			return fmt.Errorf("ws: close: waiting for the peer's close frame: %w", err)
		}
		if ev.kind == evControl && ev.op == opClose {
			c.peerClosed(ev)
			return nil
		}
		if ev.kind == evControl && ev.op == opPong {
			c.gotPong(ev.data)
		}
	}
}
