package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// msgReader is the io.Reader returned by Conn.Reader. It lives inside the
// Conn (one message is read at a time), so Reader does not allocate.
type msgReader struct {
	c         *Conn
	ctx       context.Context
	stop      func() bool
	reading   bool   // a Reader holds the read side until EOF or error
	inMessage bool   // the parser has more events for the current message
	inRbuf    bool   // the last Read result aliases the read buffer
	done      bool   // the message was delivered completely
	pending   []byte // delivered by the parser, not yet by Read
	err       error
}

// startReader positions the Conn at the start of the next message and
// returns its type.
func (c *Conn) startReader() (MessageType, error) {
	c.mr.inRbuf = false
	c.mr.done = false
	c.mr.err = nil
	if err := c.skipMessage(); err != nil {
		return 0, err
	}
	for {
		ev, err := c.nextEvent()
		if err != nil {
			return 0, err
		}
		if ev.kind == evControl {
			if err := c.handleControl(ev); err != nil {
				return 0, err
			}
			continue
		}
		typ := MessageType(ev.op)
		if !ev.compressed {
			c.mr.pending = ev.data
			c.mr.inMessage = !ev.fin
			c.mr.done = !c.mr.inMessage && len(ev.data) == 0
			return typ, nil
		}
		// Compressed: inflate the whole message (failing as early as
		// Read does), then serve it.
		out, err := c.inflateMessage(ev)
		if err != nil {
			return 0, err
		}
		c.mr.pending = out
		c.mr.inMessage = false
		c.mr.done = len(out) == 0
		return typ, nil
	}
}

// nextControlOrData returns the next data event, handling control frames.
func (c *Conn) nextControlOrData() (event, error) {
	for {
		ev, err := c.nextEvent()
		if err != nil {
			return ev, err
		}
		if ev.kind != evControl {
			return ev, nil
		}
		if err := c.handleControl(ev); err != nil {
			return ev, err
		}
	}
}

// Read implements io.Reader over the current message.
func (r *msgReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.reading {
		if r.done {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("ws: read of a finished message reader: %w", ErrClosed)
	}
	for len(r.pending) == 0 {
		if !r.inMessage {
			r.finish(nil)
			return 0, io.EOF
		}
		ev, err := r.c.nextControlOrData()
		if err != nil {
			r.finish(err)
			return 0, r.err
		}
		r.pending = ev.data
		r.inMessage = !ev.fin
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	if len(r.pending) == 0 && !r.inMessage {
		r.finish(nil)
		return n, io.EOF
	}
	return n, nil
}

// finish ends a streamed message and releases the read side.
func (r *msgReader) finish(err error) {
	if !r.reading {
		return
	}
	r.reading = false
	stop := r.stop
	r.stop = nil
	r.done = err == nil
	if err = r.c.endRead(r.ctx, stop, err); err != nil {
		r.err = err
	}
	if r.err == nil && !r.done {
		r.err = errors.New("ws: message reader finished early")
	}
}
