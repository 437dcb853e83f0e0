package ws

import (
	"context"
	"fmt"
	"sync"
)

// PreparedMessage is a message framed (and compressed) once and written to
// many connections. It caches one encoding per variant: the uncompressed
// server frame, and per LZ77 window size a payload compressed without
// context. Server frames are unmasked, so their bytes are written as they
// are to every connection; a client must mask each write with a fresh key,
// so it copies the cached payload into its frame buffer.
//
// The compressed encoding serves every compressing connection: one whose
// compressor keeps no context sends it as is; one with context takeover
// sends it too (a payload that references nothing before it is valid in
// any window) and then appends the message to its history, as the peer's
// decompressor does, so later messages may reference it. Fan-out thus
// compresses once per window size, not once per connection; the price on
// context-takeover connections is that the prepared message itself does
// not benefit from their history.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu       sync.Mutex
	frame    []byte                                    // unmasked uncompressed frame
	deflated [maxWindowBits - minWindowBits + 1][]byte // compressed payloads by window bits
}

// NewPreparedMessage prepares p for fan-out. It copies p, so the caller may
// reuse it.
func NewPreparedMessage(typ MessageType, p []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("ws: prepared message: invalid message type %v", typ)
	}
	data := make([]byte, len(p))
	copy(data, p)
	frame := make([]byte, headerSize(len(p), false)+len(p))
	n := putHeader(frame, true, false, opcode(typ), len(p), false, 0)
	copy(frame[n:], p)
	return &PreparedMessage{typ: typ, data: data, frame: frame}, nil
}

// deflatedPayload returns the message compressed without context for a
// window of bits, computing it once.
func (pm *PreparedMessage) deflatedPayload(level, bits int) []byte {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	bits = windowBits(bits)
	i := bits - minWindowBits
	if pm.deflated[i] == nil {
		comp := newCompressor(level, bits, false)
		pm.deflated[i] = comp.compress(nil, pm.data)
		comp.release()
	}
	return pm.deflated[i]
}

// WritePrepared writes a message encoded once by NewPreparedMessage; see
// PreparedMessage for which encoding each connection gets. ctx behaves as
// for Write.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	compress := c.deflate != nil && len(pm.data) >= int(c.threshold)
	if compress {
		bits, noContext := c.sendsWithoutContext()
		payload := pm.deflatedPayload(int(c.level), bits)
		var history []byte
		if !noContext {
			history = pm.data
		}
		return c.writePrepared(ctx, pm.typ, payload, true, nil, history)
	}
	return c.writePrepared(ctx, pm.typ, pm.data, false, pm.frame, nil)
}

// writePrepared sends payload as one message; frame, when not nil, is its
// ready-made unmasked encoding, written directly by a server. history, when
// not nil, is the uncompressed message, appended to the compressor's
// context once sent.
func (c *Conn) writePrepared(ctx context.Context, typ MessageType, payload []byte, rsv1 bool, frame, history []byte) error {
	if err := c.lock(ctx, &c.msgMu); err != nil {
		return err
	}
	defer c.unlockMsg()
	if frame == nil || c.role == roleClient {
		err := c.writeFrame(ctx, true, rsv1, opcode(typ), payload)
		if err == nil && history != nil {
			c.compressor().addHistory(history)
		}
		return err
	}
	return c.withFrameMu(ctx, func() error {
		if _, err := c.nc.Write(frame); err != nil {
			return c.writeFailed(err)
		}
		return nil
	})
}
