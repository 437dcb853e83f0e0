package ws

// The blocking read driver: nc.Read feeding the parser (see read.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Read reads the next whole data message, answering pings and handling the
// close handshake on the way. The returned slice is valid only until the next
// call to Read or Reader: it aliases a pooled buffer (or, for a message that
// arrived in one piece, the read buffer itself), so steady-state reads do not
// allocate.
//
// Cancelling ctx, or a read deadline expiring, fails the connection: the TCP
// connection is closed without a close handshake, since the peer's stream is
// left mid-frame. After the peer's close frame Read returns a *CloseError
// with its code (1005 if it had none); after a protocol violation it returns
// an error wrapping ErrProtocol, ErrInvalidUTF8 or ErrMessageTooBig whose
// CloseStatus is the code sent to the peer.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	if err := c.beginRead(); err != nil {
		return 0, nil, err
	}
	stop := c.watch(ctx, false)
	typ, p, err := c.readMessage()
	err = c.endRead(ctx, stop, err)
	if err != nil {
		return 0, nil, err
	}
	return typ, p, nil
}

// Reader returns the next data message as a stream, answering pings and
// handling the close handshake on the way. The reader is valid until the
// next call to Read or Reader, which discard what is left of the message.
// ctx applies to the whole message: it is watched until the reader returns
// io.EOF or an error. A compressed message is inflated whole (bounded by the
// read limit, and failing early as Read does; see msginflate.go) before its
// first byte is returned, since the decompressor works on complete messages.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if err := c.beginRead(); err != nil {
		return 0, nil, err
	}
	stop := c.watch(ctx, false)
	typ, err := c.startReader()
	if err != nil || c.mr.done {
		err = c.endRead(ctx, stop, err)
		if err != nil {
			return 0, nil, err
		}
	} else {
		c.mr.ctx, c.mr.stop = ctx, stop
		c.mr.reading = true
	}
	return typ, &c.mr, nil
}

// beginRead claims the read side and recycles the previous message. A
// Reader left unfinished hands its claim over (the discarded rest of its
// message is skipped by the next read).
func (c *Conn) beginRead() error {
	if c.mr.reading {
		c.mr.reading = false
		if c.mr.stop != nil && !c.mr.stop() {
			c.mr.stop = nil
			return c.endRead(c.mr.ctx, func() bool { return false }, nil)
		}
		c.mr.stop = nil
	} else if !c.reading.CompareAndSwap(false, true) {
		if c.closing.Load() || c.isClosed() {
			if err := c.getReadErr(); err != nil {
				return err
			}
			return c.closedErr("read")
		}
		return errors.New("ws: concurrent reads on one Conn")
	}
	if err := c.getReadErr(); err != nil {
		c.reading.Store(false)
		return err
	}
	if c.isClosed() {
		c.reading.Store(false)
		return c.closedErr("read")
	}
	if c.hbInterval > 0 && !c.hbStarted {
		c.hbStarted = true
		go c.heartbeat(c.hbInterval, c.hbTimeout)
	}
	putBuf(c.msg)
	c.msg = nil
	c.mr.c = c
	c.mr.pending = nil
	c.p.limit = c.limit.Load()
	return nil
}

// endRead turns I/O errors into their final form, makes errors sticky and
// gives up the read side. On success it drops the read buffer when nothing
// else is buffered and the message does not live in it.
func (c *Conn) endRead(ctx context.Context, stop func() bool, err error) error {
	cancelled := stop != nil && !stop()
	if err != nil {
		if cancelled || ctx.Err() != nil {
			err = c.abort(fmt.Errorf("ws: read cancelled, connection closed: %w", context.Cause(ctx)))
		}
		c.setReadErr(err)
		err = c.getReadErr()
		c.releaseReadState()
	} else if cancelled {
		// The message is complete but the deadline was forced into the
		// past: the next read would fail anyway.
		c.setReadErr(c.abort(fmt.Errorf("ws: read cancelled, connection closed: %w", context.Cause(ctx))))
		c.releaseReadState()
	} else if c.rpos == c.rend && !c.mr.reading && !c.mr.inRbuf {
		putBuf(c.rbuf)
		c.rbuf = nil
		c.rpos, c.rend = 0, 0
	}
	c.reading.Store(false)
	if c.isClosed() && c.reading.CompareAndSwap(false, true) {
		c.releaseReadState() // closeTCP ran while we read
	}
	return err
}

// releaseReadState returns pooled read-side state except the buffers a
// caller may still hold (the last message).
func (c *Conn) releaseReadState() {
	c.p.release()
	if c.decomp != nil {
		c.decomp.release()
		c.decomp = nil
	}
	if c.rbuf != nil && !c.mr.inRbuf && c.rpos == c.rend {
		c.rbuf = nil // not recycled: a Reader may still alias it
	}
}

// readMessage reads one whole message into a returned slice.
func (c *Conn) readMessage() (MessageType, []byte, error) {
	c.mr.inRbuf = false
	if err := c.skipMessage(); err != nil {
		return 0, nil, err
	}
	var buf []byte
	for {
		ev, err := c.nextEvent()
		if err != nil {
			return 0, nil, err
		}
		if ev.kind == evControl {
			if err := c.handleControl(ev); err != nil {
				return 0, nil, err
			}
			continue
		}
		if ev.compressed {
			buf, err := c.inflateMessage(ev)
			return MessageType(ev.op), buf, err
		}
		if ev.first && ev.fin {
			// The whole message arrived in one read: hand out the read
			// buffer itself.
			c.mr.inRbuf = true
			return MessageType(ev.op), ev.data, nil
		}
		buf = c.appendMsg(buf, ev.data)
		if ev.fin {
			return MessageType(ev.op), buf, nil
		}
	}
}

// appendMsg appends data to the message buffer, growing it through the
// pool. The parser has already checked the total against the read limit.
func (c *Conn) appendMsg(buf, data []byte) []byte {
	if c.msg == nil {
		c.msg = getBuf(max(len(data), 512))
		buf = (*c.msg)[:0]
	}
	if len(buf)+len(data) > cap(buf) {
		nb := getBuf(max(2*cap(buf), len(buf)+len(data)))
		buf = append((*nb)[:0], buf...)
		putBuf(c.msg)
		c.msg = nb
	}
	return append(buf, data...)
}

// skipMessage discards what is left of a message a Reader did not finish.
func (c *Conn) skipMessage() error {
	for c.mr.inMessage {
		ev, err := c.nextEvent()
		if err != nil {
			return err
		}
		if ev.kind == evControl {
			if err := c.handleControl(ev); err != nil {
				return err
			}
			continue
		}
		if ev.fin {
			c.mr.inMessage = false
		}
	}
	return nil
}

// nextEvent returns the next parser event, reading as needed. Parser errors
// fail the connection with their close code.
func (c *Conn) nextEvent() (event, error) {
	for {
		if c.rpos < c.rend {
			n, ev, err := c.p.feed(c.rbytes()[c.rpos:c.rend])
			c.rpos += int32(n)
			if err != nil {
				return ev, c.fail(closeCodeFor(err), err)
			}
			if ev.kind != evNone {
				return ev, nil
			}
			continue
		}
		if err := c.fill(); err != nil {
			return event{}, err
		}
	}
}

func (c *Conn) rbytes() []byte {
	if c.rbuf != nil {
		return *c.rbuf
	}
	return c.small[:]
}

// fill reads more input once everything buffered was consumed (the parser
// keeps partial headers itself, so nothing is carried over). The buffer is
// chosen by what is expected: the inline small buffer when the connection is
// between messages and nothing seems queued, a pooled buffer sized for the
// rest of the frame otherwise.
func (c *Conn) fill() error {
	if c.rerr != nil {
		return c.readFailed(c.rerr)
	}
	want := 0
	if c.p.state == stPayload && c.p.remaining > 0 {
		want = int(min(c.p.remaining+maxHeaderSize, 64<<10))
	}
	if c.rfull {
		want = max(want, 4<<10)
	}
	var buf []byte
	if want <= smallReadSize {
		if c.rbuf != nil && !c.mr.inRbuf {
			putBuf(c.rbuf)
		}
		c.rbuf = nil
		buf = c.small[:]
	} else {
		if c.rbuf == nil || cap(*c.rbuf) < want && cap(*c.rbuf) < 64<<10 || c.mr.inRbuf {
			if c.rbuf != nil && !c.mr.inRbuf {
				putBuf(c.rbuf)
			}
			c.rbuf = getBuf(max(want, 4<<10))
		}
		buf = *c.rbuf
	}
	c.mr.inRbuf = false
	n, err := c.nc.Read(buf)
	c.rpos, c.rend = 0, int32(n)
	c.rfull = n == len(buf)
	if n > 0 {
		c.recvs.Add(1)
		c.rerr = err
		return nil
	}
	if err == nil {
		return nil
	}
	return c.readFailed(err)
}

// readFailed classifies an I/O error of the read side.
func (c *Conn) readFailed(err error) error {
	switch {
	case c.isClosed():
		return c.closedErr("read")
	case errors.Is(err, io.EOF):
		return c.abort(&failError{code: StatusAbnormalClosure,
			err: fmt.Errorf("ws: connection closed without a close frame: %w", io.ErrUnexpectedEOF)})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return c.abort(fmt.Errorf("ws: read: %w", err))
	}
	return c.abort(&failError{code: StatusAbnormalClosure, err: fmt.Errorf("ws: read: %w", err)})
}

// handleControl answers pings, records pongs and runs the close handshake
// when the peer's close frame arrives (returning its *CloseError).
func (c *Conn) handleControl(ev event) error {
	switch ev.op {
	case opPing:
		// A failed pong means the connection is going away; the next read
		// reports it.
		c.writeControl(opPong, ev.data, closeTimeout)
	case opPong:
		c.gotPong(ev.data)
	case opClose:
		return c.peerClosed(ev)
	}
	return nil
}

// peerClosed answers the peer's close frame with the same code (an empty
// close for an empty one), then closes TCP: at once as a server, after the
// server closed (or closeTimeout) as a client.
func (c *Conn) peerClosed(ev event) error {
	ce := c.answerClose(ev)
	if c.role == roleClient {
		c.awaitEOF()
	}
	c.closeTCP()
	return ce
}

// answerClose echoes the peer's close frame ev and records its *CloseError
// as the read error; the caller then closes TCP (see peerClosed).
func (c *Conn) answerClose(ev event) *CloseError {
	ce := &CloseError{Code: ev.code}
	if len(ev.data) > 2 {
		ce.Reason = string(ev.data[2:])
	}
	var echo [2]byte
	payload := echo[:0]
	if ev.code != StatusNoStatusRcvd {
		echo[0], echo[1] = byte(ev.code>>8), byte(ev.code)
		payload = echo[:]
	}
	c.writeClose(payload)
	c.setReadErr(ce)
	return ce
}

// awaitEOF lets the server close TCP first (RFC 6455 section 7.1.1), reading
// and discarding until it does or closeTimeout passes.
func (c *Conn) awaitEOF() {
	c.nc.SetReadDeadline(time.Now().Add(closeTimeout))
	for {
		if _, err := c.nc.Read(c.small[:]); err != nil {
			return
		}
	}
}

// fail fails the connection (RFC 6455 section 7.1.7): it sends a close
// frame with code, half-closes, drains briefly so that the close frame is
// not lost to a TCP reset, and closes. It returns err carrying code.
func (c *Conn) fail(code StatusCode, err error) error {
	ferr, halfClosed := c.sendFail(code, err)
	if halfClosed {
		c.awaitEOF()
	}
	c.closeTCP()
	return ferr
}

// sendFail records err carrying code as the read error, sends the close
// frame and half-closes; halfClosed reports that both worked, so input
// should be drained before TCP is closed (see fail).
func (c *Conn) sendFail(code StatusCode, err error) (ferr *failError, halfClosed bool) {
	ferr = &failError{code: code, err: err}
	c.setReadErr(ferr)
	// A misbehaving peer is the peer's problem, and the caller gets the
	// error too: debug level keeps hostile traffic from flooding logs.
	slog.Debug("ws: failing connection", "code", int(code), "err", err, "remote", c.nc.RemoteAddr())
	var p [2]byte
	p[0], p[1] = byte(code>>8), byte(code)
	if sent, _ := c.writeClose(p[:]); sent {
		type closeWriter interface{ CloseWrite() error }
		if cw, ok := c.nc.(closeWriter); ok && cw.CloseWrite() == nil {
			return ferr, true
		}
	}
	return ferr, false
}
