package ws

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// WriteBatch writes each of msgs as one message of type typ, in order, as
// Write would (a single frame each, compressed when permessage-deflate was
// negotiated and the message reaches the compression threshold), but hands
// the frames to the kernel together: they are encoded into one pooled
// buffer and sent with one write system call per maxWriteChunk (256 KiB)
// of frames. A server that has several messages queued for a client thus
// pays one system call for all of them instead of one each, which is most
// of the cost of sending a small message.
//
// No other data message or control frame is written between the messages
// of a batch. WriteBatch does not keep msgs or any of its elements. An
// empty batch writes nothing. Errors are those of Write: cancelling ctx (or
// a write deadline expiring) during the write fails the connection, and
// after a failure any prefix of the batch may have been sent.
func (c *Conn) WriteBatch(ctx context.Context, typ MessageType, msgs [][]byte) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("ws: write batch: invalid message type %v", typ)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := c.lock(ctx, &c.msgMu); err != nil {
		return err
	}
	defer c.unlockMsg()
	return c.withFrameMu(ctx, func() error { return c.writeBatchLocked(opcode(typ), msgs) })
}

// writeBatchLocked encodes msgs into a pooled buffer, writing it out
// whenever the next frame would not fit; a frame larger than the buffer is
// written on its own by writeFrameLocked. Both msgMu (the compressor's
// state follows the order of the messages) and frameMu must be held.
func (c *Conn) writeBatchLocked(op opcode, msgs [][]byte) error {
	mask := c.role == roleClient
	size := 0
	for _, p := range msgs {
		size += maxHeaderSize + len(p)
		if size >= maxWriteChunk {
			size = maxWriteChunk
			break
		}
	}
	bp := getBuf(size)
	b := (*bp)[:0]
	for _, p := range msgs {
		var cbp *[]byte
		rsv1 := false
		if c.deflate != nil && len(p) >= int(c.threshold) {
			cbp, p = c.deflateMessage(p)
			rsv1 = true
		}
		need := maxHeaderSize + len(p)
		if len(b) > 0 && len(b)+need > cap(b) {
			if _, err := c.nc.Write(b); err != nil {
				putBuf(cbp)
				putBuf(bp)
				return c.writeFailed(err)
			}
			b = b[:0]
		}
		if need > cap(b) {
			err := c.writeFrameLocked(true, rsv1, op, p)
			putBuf(cbp)
			if err != nil {
				putBuf(bp)
				return err
			}
			continue
		}
		var key uint32
		if mask {
			// Unpredictable keys, as in writeFrameLocked.
			key = rand.Uint32()
		}
		n := len(b)
		n += putHeader(b[n:cap(b)], true, rsv1, op, len(p), mask, key)
		b = b[:n+len(p)]
		if mask {
			maskCopy(b[n:], p, key, 0)
		} else {
			copy(b[n:], p)
		}
		putBuf(cbp)
	}
	var err error
	if len(b) > 0 {
		if _, werr := c.nc.Write(b); werr != nil {
			err = c.writeFailed(werr)
		}
	}
	putBuf(bp)
	return err
}
