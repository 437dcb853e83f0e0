package ws

// # Read side design (for the blocking path and for an event-driven loop)
//
// All input is decoded by parser, a resumable state machine with no I/O and
// no goroutine of its own. The driver owns a byte buffer, puts whatever bytes
// have arrived into it and calls
//
//	n, ev, err := p.feed(buf)
//
// repeatedly. feed consumes buf[:n] and stops after at most one event:
//
//   - evNone: everything was consumed (n == len(buf)) and more input is
//     needed. Partial headers and partial control payloads are kept inside
//     the parser, so the driver may recycle buf right away; no byte ever
//     needs to be carried over by the driver.
//   - evData: ev.data holds payload bytes of the current data message,
//     unmasked in place inside buf (so it aliases buf and is valid until buf
//     is reused). ev.op is the message type, ev.first marks the first event
//     of a message, ev.fin the last one (a message may end with an empty
//     chunk), ev.compressed says RSV1 was set (permessage-deflate) and the
//     bytes are still compressed.
//   - evControl: a complete ping, pong or close frame; ev.data is its
//     payload (unmasked; it aliases buf or a parser-owned buffer and is
//     valid until the next feed). For a close frame the parser has already
//     validated the payload: ev.code is the status (1005 when empty) and
//     ev.data[2:] the UTF-8 reason.
//
// A non-nil err fails the connection: it wraps ErrProtocol (send 1002),
// ErrInvalidUTF8 (1007) or ErrMessageTooBig (1009); closeCodeFor maps it.
// The parser enforces every framing rule of RFC 6455 section 5 (masking by
// role, RSV bits, opcodes, control frame size and fragmentation, message
// fragmentation order, minimal length encoding, 63-bit lengths), checks the
// read limit as soon as a frame header announces a size that would exceed
// it (before any of that payload is read), and validates uncompressed text
// as UTF-8 byte by byte as it arrives, across frame and buffer boundaries.
// Compressed messages are validated by the caller after decompression.
//
// The parser is about 110 bytes and owns no buffer while idle: a control
// payload split across two feeds is gathered in a pooled 125-byte buffer
// that is returned on the next feed. An event loop can therefore read a
// readable socket into a pooled buffer, feed it to the connection's parser
// until evNone, act on the events, and put the buffer back: an idle
// connection then costs its parser and Conn, nothing else.
//
// The blocking driver (Conn.Read, Conn.Reader; readloop.go) is exactly
// that loop with nc.Read as the source of bytes.
//
// Notes for an event-driven driver built on the same Conn:
//   - Own the read side as the blocking driver does (Conn.reading), set
//     p.limit from Conn.limit at each message start, and feed c.p.
//   - Control events: handleControl answers pings and records pongs; for a
//     close event it runs peerClosed, whose client branch (awaitEOF) blocks
//     and would need a timer-based variant.
//   - Parser errors: fail(closeCodeFor(err), err) sends the close code;
//     its drain (awaitEOF) again blocks and needs the same treatment.
//   - Uncompressed data: copy ev.data out (it aliases the pooled input
//     buffer) or deliver it before the buffer is recycled.
//   - Compressed data: inflateMessage pulls the rest of a fragmented
//     message through nextEvent, which blocks; an event loop gathers the
//     payloads of a compressed message itself and calls
//     decomp.decompress at ev.fin (then validates text with validUTF8),
//     or trial-inflates prefixes as msginflate.go does to fail early.

import (
	"encoding/binary"
	"fmt"
)

// eventKind says what feed produced.
type eventKind uint8

const (
	evNone eventKind = iota
	evData
	evControl
)

// event is one result of parser.feed; see the comment at the top of read.go.
type event struct {
	kind       eventKind
	op         opcode
	first      bool
	fin        bool
	compressed bool
	code       StatusCode
	data       []byte
}

type parseState uint8

const (
	stHeader parseState = iota
	stPayload
	stControl
)

// parser is the resumable frame decoder. The zero value needs server,
// deflate and limit set before use.
type parser struct {
	limit   int64 // message size limit (decompressed); compressed input is bounded by compressedLimit(limit)
	server  bool  // peer frames must be masked
	deflate bool  // RSV1 allowed on the first frame of a data message

	state parseState
	hdr   [maxHeaderSize]byte
	hn    uint8 // header bytes gathered
	hneed uint8 // header bytes needed, known once the first two are in

	// current frame
	fin       bool
	op        opcode
	masked    bool
	key       uint32
	maskPos   int
	remaining int64 // payload bytes of the current frame not yet consumed

	// current data message
	inMessage  bool
	msgOp      opcode
	firstEvent bool // next evData is the first of the message
	compressed bool
	msgSize    int64
	utf8       utf8State

	// gathered control payload when split across feeds (pooled)
	ctl       *[maxControlPayload]byte
	ctlLen    int
	ctlN      int
	ctlRecycl bool
}

// compressedLimit bounds the compressed bytes of one message: deflate never
// expands data by more than its stored-block overhead (5 bytes per 64 KiB
// block) plus a little, so a message whose compressed form exceeds this would
// decompress beyond limit anyway.
func compressedLimit(limit int64) int64 {
	return limit + limit/8192 + 1024
}

// feed consumes bytes from b and returns after at most one event; see the
// comment at the top of read.go. It unmasks payload bytes in place.
func (p *parser) feed(b []byte) (n int, ev event, err error) {
	if p.ctlRecycl {
		p.ctlRecycl = false
		ctlPool.Put(p.ctl)
		p.ctl = nil
	}
	for n < len(b) {
		switch p.state {
		case stHeader:
			if p.hn < 2 {
				k := copy(p.hdr[p.hn:2], b[n:])
				p.hn += uint8(k)
				n += k
				if p.hn < 2 {
					return n, ev, nil
				}
				if err := p.checkFirstBytes(); err != nil {
					return n, ev, err
				}
			}
			k := copy(p.hdr[p.hn:p.hneed], b[n:])
			p.hn += uint8(k)
			n += k
			if p.hn < p.hneed {
				return n, ev, nil
			}
			if err := p.beginFrame(); err != nil {
				return n, ev, err
			}
			if p.op.isControl() {
				if p.remaining == 0 || int64(len(b)-n) >= p.remaining {
					// The whole control payload is here: no copy.
					l := int(p.remaining)
					data := b[n : n+l]
					n += l
					p.remaining = 0
					if p.masked {
						maskBytes(p.key, 0, data)
					}
					p.state = stHeader
					ev, err = p.controlEvent(data)
					return n, ev, err
				}
				if p.ctl == nil {
					p.ctl = ctlPool.Get().(*[maxControlPayload]byte)
				}
				p.ctlLen, p.ctlN = int(p.remaining), 0
				p.state = stControl
				continue
			}
			p.state = stPayload
			if p.remaining == 0 {
				p.state = stHeader
				ev, err = p.dataEvent(b[n:n])
				return n, ev, err
			}
		case stPayload:
			k := len(b) - n
			if int64(k) > p.remaining {
				k = int(p.remaining)
			}
			data := b[n : n+k]
			n += k
			p.remaining -= int64(k)
			if p.masked {
				p.maskPos = maskBytes(p.key, p.maskPos, data)
			}
			if p.remaining == 0 {
				p.state = stHeader
			}
			ev, err = p.dataEvent(data)
			return n, ev, err
		case stControl:
			k := copy(p.ctl[p.ctlN:p.ctlLen], b[n:])
			n += k
			p.ctlN += k
			if p.ctlN < p.ctlLen {
				return n, ev, nil
			}
			data := p.ctl[:p.ctlLen]
			if p.masked {
				maskBytes(p.key, 0, data)
			}
			p.ctlRecycl = true
			p.state = stHeader
			ev, err = p.controlEvent(data)
			return n, ev, err
		}
	}
	return n, ev, nil
}

// checkFirstBytes validates the first two header bytes and sets how many
// header bytes follow.
func (p *parser) checkFirstBytes() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	op := opcode(b0 & 0x0F)
	if b0&(bitRSV2|bitRSV3) != 0 {
		return protocolErr("RSV2/RSV3 set without a negotiated extension")
	}
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return protocolErr("unknown opcode %#x", uint8(op))
	}
	if b0&bitRSV1 != 0 {
		switch {
		case !p.deflate:
			return protocolErr("RSV1 set without permessage-deflate")
		case op == opContinuation || op.isControl():
			return protocolErr("RSV1 set on a continuation or control frame")
		}
	}
	masked := b1&bitMask != 0
	if p.server && !masked {
		return protocolErr("unmasked client frame")
	}
	if !p.server && masked {
		return protocolErr("masked server frame")
	}
	if op.isControl() {
		if b0&bitFIN == 0 {
			return protocolErr("fragmented control frame")
		}
		if b1&0x7F > maxControlPayload {
			return protocolErr("control frame payload over 125 bytes")
		}
	} else if op == opContinuation {
		if !p.inMessage {
			return protocolErr("continuation frame without a message start")
		}
	} else if p.inMessage {
		return protocolErr("new data frame inside an unfinished message")
	}
	need := 2
	switch b1 & 0x7F {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	if masked {
		need += 4
	}
	p.hneed = uint8(need)
	return nil
}

// beginFrame decodes the complete header and starts the frame.
func (p *parser) beginFrame() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	p.hn = 0
	p.fin = b0&bitFIN != 0
	p.op = opcode(b0 & 0x0F)
	p.masked = b1&bitMask != 0
	i := 2
	var length uint64
	switch l := b1 & 0x7F; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(p.hdr[2:]))
		if length < 126 {
			return protocolErr("non-minimal 16-bit payload length %d", length)
		}
		i = 4
	case 127:
		length = binary.BigEndian.Uint64(p.hdr[2:])
		if length>>63 != 0 {
			return protocolErr("64-bit payload length with the most significant bit set")
		}
		if length <= 0xFFFF {
			return protocolErr("non-minimal 64-bit payload length %d", length)
		}
		i = 10
	default:
		length = uint64(l)
	}
	if p.masked {
		p.key = binary.LittleEndian.Uint32(p.hdr[i:])
	}
	p.maskPos = 0
	p.remaining = int64(length)
	if p.op.isControl() {
		return nil
	}
	if p.op != opContinuation {
		p.inMessage = true
		p.msgOp = p.op
		p.firstEvent = true
		p.compressed = b0&bitRSV1 != 0
		p.msgSize = 0
		p.utf8.reset()
	}
	limit := p.limit
	if p.compressed {
		limit = compressedLimit(limit)
	}
	if int64(length) > limit-p.msgSize {
		return fmt.Errorf("%w: frame of %d bytes after %d takes the message over the %d-byte limit",
			ErrMessageTooBig, length, p.msgSize, p.limit)
	}
	p.msgSize += int64(length)
	return nil
}

// dataEvent emits payload bytes of the current data message, validating
// uncompressed text.
func (p *parser) dataEvent(data []byte) (event, error) {
	end := p.fin && p.remaining == 0
	ev := event{kind: evData, op: p.msgOp, first: p.firstEvent, fin: end, compressed: p.compressed, data: data}
	p.firstEvent = false
	if p.msgOp == opText && !p.compressed {
		if !p.utf8.write(data) {
			return ev, fmt.Errorf("%w in text message", ErrInvalidUTF8)
		}
		if end && !p.utf8.complete() {
			return ev, fmt.Errorf("%w: text message ends inside a code point", ErrInvalidUTF8)
		}
	}
	if end {
		p.inMessage = false
	}
	return ev, nil
}

// controlEvent emits a complete control frame, validating close payloads.
func (p *parser) controlEvent(data []byte) (event, error) {
	ev := event{kind: evControl, op: p.op, data: data}
	if p.op != opClose {
		return ev, nil
	}
	switch {
	case len(data) == 0:
		ev.code = StatusNoStatusRcvd
	case len(data) == 1:
		return ev, protocolErr("close frame with a 1-byte payload")
	default:
		ev.code = StatusCode(binary.BigEndian.Uint16(data))
		if !validCloseCode(ev.code) {
			return ev, protocolErr("invalid close code %d", int(ev.code))
		}
		if !validUTF8(data[2:]) {
			return ev, fmt.Errorf("%w in close reason", ErrInvalidUTF8)
		}
	}
	return ev, nil
}

// release returns pooled state; the parser must not be used afterwards.
func (p *parser) release() {
	if p.ctl != nil {
		ctlPool.Put(p.ctl)
		p.ctl = nil
		p.ctlRecycl = false
	}
}
