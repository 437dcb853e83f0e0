package ws

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// writevMin is the payload size from which an unmasked frame on a TCP
// connection is sent with writev (header and caller's bytes as two iovecs)
// instead of being copied into a pooled buffer.
const writevMin = 64 << 10

// maxWriteChunk bounds the pooled buffer of one frame write; larger masked
// frames are written in chunks of this size.
const maxWriteChunk = 256 << 10

// Write writes p as one message (a single frame), compressed when
// permessage-deflate was negotiated and p is at least the compression
// threshold. Text is not validated: sending valid UTF-8 is the caller's job.
// Cancelling ctx while waiting for other writers just returns; cancelling it
// (or a write deadline expiring) during the write fails the connection,
// since a partial frame may have been sent.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	return c.writeMessage(ctx, typ, p, c.deflate != nil && len(p) >= int(c.threshold))
}

// WriteUncompressed writes p as one message that is never compressed.
func (c *Conn) WriteUncompressed(ctx context.Context, typ MessageType, p []byte) error {
	return c.writeMessage(ctx, typ, p, false)
}

func (c *Conn) writeMessage(ctx context.Context, typ MessageType, p []byte, compress bool) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("ws: write: invalid message type %v", typ)
	}
	if err := c.lock(ctx, &c.msgMu); err != nil {
		return err
	}
	defer c.unlockMsg()
	if !compress {
		return c.writeFrame(ctx, true, false, opcode(typ), p)
	}
	bp, payload := c.deflateMessage(p)
	err := c.writeFrame(ctx, true, true, opcode(typ), payload)
	putBuf(bp)
	return err
}

// unlockMsg releases msgMu, and the compressor if the connection closed
// while we held it.
func (c *Conn) unlockMsg() {
	if c.isClosed() {
		c.releaseWriteState()
	}
	c.msgMu.unlock()
}

// releaseWriteState returns the compressor; msgMu must be held.
func (c *Conn) releaseWriteState() {
	if c.comp != nil {
		c.comp.release()
		c.comp = nil
	}
}

// writeFrame writes one data frame under frameMu.
func (c *Conn) writeFrame(ctx context.Context, fin, rsv1 bool, op opcode, p []byte) error {
	return c.withFrameMu(ctx, func() error { return c.writeFrameLocked(fin, rsv1, op, p) })
}

// withFrameMu runs write, which sends whole data frames, under frameMu
// unless the close frame was sent, with ctx watched: cancelling it during
// the write fails the connection. write does not escape, so the closures
// of the callers cost no allocation.
func (c *Conn) withFrameMu(ctx context.Context, write func() error) error {
	if err := c.lock(ctx, &c.frameMu); err != nil {
		return err
	}
	defer c.frameMu.unlock()
	if c.closeSent {
		return fmt.Errorf("ws: write after close: %w", ErrClosed)
	}
	stop := c.watch(ctx, true)
	err := write()
	if stop != nil && !stop() {
		err = c.abort(fmt.Errorf("ws: write cancelled, connection closed: %w", context.Cause(ctx)))
	}
	return err
}

// writeFrameLocked encodes and sends one frame, in one write system call
// when it fits maxWriteChunk: the header and the (masked) payload are copied
// into one pooled buffer, or, for large unmasked payloads on TCP, passed to
// writev. Any error breaks the stream, so it closes the connection.
func (c *Conn) writeFrameLocked(fin, rsv1 bool, op opcode, p []byte) error {
	mask := c.role == roleClient
	var key uint32
	if mask {
		// RFC 6455 section 5.3 wants unpredictable keys: math/rand/v2's
		// global source is a per-thread ChaCha8 stream seeded from the OS.
		key = rand.Uint32()
	}
	if !mask && len(p) >= writevMin {
		if tc, ok := c.nc.(*net.TCPConn); ok {
			return c.writev(tc, fin, rsv1, op, p)
		}
	}
	total := headerSize(len(p), mask) + len(p)
	bp := getBuf(min(total, maxWriteChunk))
	b := *bp
	n := putHeader(b, fin, rsv1, op, len(p), mask, key)
	pos := 0
	for {
		var k int
		if mask {
			k = min(len(b)-n, len(p)-pos)
			maskCopy(b[n:], p[pos:pos+k], key, pos)
		} else {
			k = copy(b[n:], p[pos:])
		}
		if _, err := c.nc.Write(b[:n+k]); err != nil {
			putBuf(bp)
			return c.writeFailed(err)
		}
		pos += k
		n = 0
		if pos == len(p) {
			break
		}
	}
	putBuf(bp)
	return nil
}

// iovecs holds the two buffers of a writev; pooled so that the net.Buffers
// handed to WriteTo (which escapes) costs no allocation per frame.
type iovecs struct {
	arr  [2][]byte
	bufs net.Buffers
}

var iovecPool = sync.Pool{New: func() any { return new(iovecs) }}

// writev sends a large unmasked frame without copying the payload.
func (c *Conn) writev(tc *net.TCPConn, fin, rsv1 bool, op opcode, p []byte) error {
	bp := getBuf(maxHeaderSize)
	n := putHeader(*bp, fin, rsv1, op, len(p), false, 0)
	v := iovecPool.Get().(*iovecs)
	v.arr[0], v.arr[1] = (*bp)[:n], p
	v.bufs = v.arr[:]
	_, err := v.bufs.WriteTo(tc)
	*v = iovecs{}
	iovecPool.Put(v)
	putBuf(bp)
	if err != nil {
		return c.writeFailed(err)
	}
	return nil
}

func (c *Conn) writeFailed(err error) error {
	if c.isClosed() {
		return c.closedErr("write")
	}
	return c.abort(fmt.Errorf("ws: write: %w", err))
}

// writeControl sends a ping or pong, waiting at most wait for other frames.
// It reports false if nothing was sent (closing, or stuck behind a writer).
func (c *Conn) writeControl(op opcode, p []byte, wait time.Duration) bool {
	if !c.lockTimeout(&c.frameMu, wait) {
		return false
	}
	defer c.frameMu.unlock()
	if c.closeSent {
		return false
	}
	return c.writeFrameLocked(true, false, op, p) == nil
}

// writeClose sends a close frame with payload unless one was sent already,
// bounding the wait for other writers and the write itself by closeTimeout.
// sent reports whether this call sent it, already whether an earlier call
// did.
func (c *Conn) writeClose(payload []byte) (sent, already bool) {
	if !c.lockTimeout(&c.frameMu, closeTimeout) {
		return false, false
	}
	defer c.frameMu.unlock()
	if c.closeSent {
		return false, true
	}
	c.closeSent = true
	c.nc.SetWriteDeadline(time.Now().Add(closeTimeout))
	return c.writeFrameLocked(true, false, opClose, payload) == nil, false
}
