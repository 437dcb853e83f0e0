package ws

// Glue between the Conn and the permessage-deflate engines of deflate.go.
// Engines are created on first use, so connections that never send (or
// never receive) a compressed message never pay for one.

// deflateMessage compresses p as one message with this connection's
// compressor. bp is the pooled buffer holding the result (nil if the result
// outgrew it) and must be returned with putBuf after writing.
func (c *Conn) deflateMessage(p []byte) (bp *[]byte, out []byte) {
	bp = getBuf(len(p) + 64)
	out = c.compressor().compress((*bp)[:0], p)
	if cap(out) != cap(*bp) {
		putBuf(bp)
		bp = nil
	}
	return bp, out
}

// compressor returns this connection's compressor, creating it on first
// use; msgMu must be held.
func (c *Conn) compressor() *compressor {
	if c.comp == nil {
		bits, takeover := c.deflate.sendParams(c.role)
		c.comp = newCompressor(int(c.level), bits, takeover)
	}
	return c.comp
}

// newDecompressor creates the decompressor for what the peer sends.
func (c *Conn) newDecompressor() *decompressor {
	bits, takeover := c.deflate.receiveParams(c.role)
	return newDecompressor(bits, takeover)
}

// sendsWithoutContext reports whether this connection compresses every
// message on its own, so that a message compressed once without context
// (a PreparedMessage) may be sent as is. bits is the window it may use.
func (c *Conn) sendsWithoutContext() (bits int, ok bool) {
	bits, takeover := c.deflate.sendParams(c.role)
	return bits, !takeover
}
