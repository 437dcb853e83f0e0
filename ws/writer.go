package ws

import (
	"context"
	"fmt"
	"io"
)

// writerChunk is the fragment size of a streamed uncompressed message.
const writerChunk = 16 << 10

// Writer returns a writer for one message sent as a stream of frames: each
// full chunk of 16 KiB goes out as a fragment, and Close sends the final
// frame. Other data messages wait until it is closed, but pings, pongs and
// close frames may still be sent between its fragments. ctx bounds every
// frame written. When compression applies, the message is buffered whole and
// compressed on Close (the compressor works on whole messages), so it is sent
// as a single frame; its size is bounded only by memory, as the caller
// produces it. A Writer is for one goroutine.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("ws: writer: invalid message type %v", typ)
	}
	if err := c.lock(ctx, &c.msgMu); err != nil {
		return nil, err
	}
	return &msgWriter{c: c, ctx: ctx, op: opcode(typ), compress: c.deflate != nil}, nil
}

// msgWriter is the io.WriteCloser returned by Writer. It is allocated per
// message so that a stale writer cannot write into a later message.
type msgWriter struct {
	c        *Conn
	ctx      context.Context
	op       opcode // opText/opBinary until the first frame, then continuation
	compress bool
	rsv1     bool
	buf      *[]byte
	n        int
	done     bool
	err      error
}

// Write buffers p, sending full chunks as fragments.
func (w *msgWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("ws: write to a closed message writer: %w", ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.compress {
		w.grow(len(p))
		w.n += copy((*w.buf)[w.n:], p)
		return len(p), nil
	}
	written := 0
	for len(p) > 0 {
		if w.n == 0 && len(p) >= writerChunk {
			// Big write with nothing buffered: send it directly.
			if err := w.frame(false, p); err != nil {
				return written, err
			}
			return written + len(p), nil
		}
		if w.buf == nil {
			w.buf = getBuf(writerChunk)
		}
		k := copy((*w.buf)[w.n:writerChunk], p)
		w.n += k
		written += k
		p = p[k:]
		if w.n == writerChunk {
			if err := w.frame(false, (*w.buf)[:w.n]); err != nil {
				return written, err
			}
			w.n = 0
		}
	}
	return written, nil
}

// grow makes room for n more bytes in the compression buffer.
func (w *msgWriter) grow(n int) {
	if w.buf == nil {
		w.buf = getBuf(max(n, 4<<10))
		return
	}
	if w.n+n <= len(*w.buf) {
		return
	}
	nb := getBuf(max(2*len(*w.buf), w.n+n))
	copy(*nb, (*w.buf)[:w.n])
	putBuf(w.buf)
	w.buf = nb
}

func (w *msgWriter) frame(fin bool, p []byte) error {
	err := w.c.writeFrame(w.ctx, fin, w.rsv1, w.op, p)
	w.op, w.rsv1 = opContinuation, false
	if err != nil {
		w.err = err
	}
	return err
}

// Close sends the final frame and lets other writers proceed. Closing twice
// returns an error wrapping ErrClosed.
func (w *msgWriter) Close() error {
	if w.done {
		return fmt.Errorf("ws: message writer already closed: %w", ErrClosed)
	}
	w.done = true
	defer w.c.unlockMsg()
	defer func() {
		putBuf(w.buf)
		w.buf = nil
	}()
	if w.err != nil {
		return w.err
	}
	var p []byte
	if w.buf != nil {
		p = (*w.buf)[:w.n]
	}
	if w.compress && w.op != opContinuation && len(p) >= int(w.c.threshold) {
		bp, out := w.c.deflateMessage(p)
		w.rsv1 = true
		err := w.frame(true, out)
		putBuf(bp)
		return err
	}
	return w.frame(true, p)
}

var _ io.WriteCloser = (*msgWriter)(nil)
