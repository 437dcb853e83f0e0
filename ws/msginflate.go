package ws

// Inflating received messages. The decompressor (deflate.go) works on whole
// messages, and a flate reader releases output only at the end of a deflate
// block, so a compressed message could hide invalid UTF-8, or a
// decompression bomb, until its last frame. To fail early anyway, while the
// frames of a fragmented compressed message arrive, the gathered prefix is
// trial-inflated whenever it has doubled in size since the last trial (so
// all trials together cost at most about twice one full inflation): invalid
// UTF-8 in the output so far fails with 1007, output beyond the read limit
// with 1009, corrupt data with 1007, all before the rest of the message is
// read. A single-frame message is inflated once, from the read buffer,
// without gathering.

import (
	"errors"
	"fmt"
)

// inflateMessage gathers the compressed message whose first payload event
// is first, inflates it into the pooled message buffer and validates text.
func (c *Conn) inflateMessage(first event) ([]byte, error) {
	if c.decomp == nil {
		c.decomp = c.newDecompressor()
	}
	limit := c.limit.Load()
	text := first.op == opText
	in := first.data
	if !first.fin {
		in = nil
		lastTrial := 0
		for ev := first; ; {
			in = c.appendMsg(in, ev.data)
			if ev.fin {
				break
			}
			if len(in) > 0 && len(in) >= 2*lastTrial {
				lastTrial = len(in)
				if code, err := c.trialInflate(in, limit, text); err != nil {
					return nil, c.fail(code, err)
				}
			}
			var err error
			if ev, err = c.nextControlOrData(); err != nil {
				return nil, err
			}
		}
	}
	out, nb, code, err := c.inflateWhole(in, limit, text)
	putBuf(c.msg) // the gathered input, if any
	c.msg = nb
	if err != nil {
		return nil, c.fail(code, err)
	}
	return out, nil
}

// inflateWhole inflates the whole compressed message in into a pooled
// buffer and validates text, returning an error with the close code to fail
// the connection with. nb is the pooled buffer out lives in, for the caller
// to put back when done with out (nil when out outgrew it).
func (c *Conn) inflateWhole(in []byte, limit int64, text bool) (out []byte, nb *[]byte, code StatusCode, err error) {
	nb = getBuf(int(min(int64(max(4*len(in), 512)), limit+1)))
	out, err = c.decomp.decompress((*nb)[:0], in, limit)
	if cap(out) != cap(*nb) {
		putBuf(nb) // out outgrew it: not pooled
		nb = nil
	}
	if err != nil {
		return nil, nb, inflateCloseCode(err), fmt.Errorf("ws: inflating: %w", err)
	}
	if text && !validUTF8(out) {
		return nil, nb, StatusInvalidPayload, fmt.Errorf("%w in compressed text message", ErrInvalidUTF8)
	}
	return out, nb, 0, nil
}

// trialInflate inflates the prefix in of an unfinished message (see
// decompressor.tryPrefix) and returns an error, with the close code to fail
// the connection with, if what it yields is already too big, not UTF-8
// (text) or not deflate data.
func (c *Conn) trialInflate(in []byte, limit int64, text bool) (StatusCode, error) {
	err := c.decomp.tryPrefix(in, limit, text)
	if err == nil {
		return 0, nil
	}
	return inflateCloseCode(err), err
}

// inflateCloseCode is the close code for an error of the decompressor:
// 1009 for output over the limit, 1007 for corrupt data or bad UTF-8.
func inflateCloseCode(err error) StatusCode {
	if errors.Is(err, ErrMessageTooBig) {
		return StatusMessageTooBig
	}
	return StatusInvalidPayload
}
