package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// frameSpec describes a hand-built frame; lenBytes forces a length encoding
// (0: minimal, 2: 16-bit, 8: 64-bit) to build non-minimal headers.
type frameSpec struct {
	fin      bool
	rsv      byte // RSV bits already shifted (bitRSV1...)
	op       opcode
	payload  []byte
	mask     bool
	lenBytes int
	rawLen   uint64 // used with lenBytes 8 to put any value on the wire
}

var maskKey = [4]byte{0x11, 0x82, 0x5e, 0xc3}

func (f frameSpec) bytes() []byte {
	b0 := byte(f.op) | f.rsv
	if f.fin {
		b0 |= bitFIN
	}
	var b1 byte
	if f.mask {
		b1 = bitMask
	}
	out := []byte{b0, 0}
	n := uint64(len(f.payload))
	if f.rawLen != 0 {
		n = f.rawLen
	}
	switch {
	case f.lenBytes == 8 || (f.lenBytes == 0 && n > 0xFFFF):
		out[1] = b1 | 127
		out = binary.BigEndian.AppendUint64(out, n)
	case f.lenBytes == 2 || (f.lenBytes == 0 && n > 125):
		out[1] = b1 | 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] = b1 | byte(n)
	}
	p := bytes.Clone(f.payload)
	if f.mask {
		out = append(out, maskKey[:]...)
		naiveMask(maskKey, 0, p)
	}
	return append(out, p...)
}

func maskedFrame(fin bool, op opcode, payload string) []byte {
	return frameSpec{fin: fin, op: op, payload: []byte(payload), mask: true}.bytes()
}

func closeBody(code int, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}

// parseAll feeds in to a parser in pieces of step bytes (0: all at once)
// and records the events as text.
func parseAll(p *parser, in []byte, step int) (string, error) {
	var out bytes.Buffer
	var msg []byte
	for len(in) > 0 {
		chunk := in
		if step > 0 && len(chunk) > step {
			chunk = chunk[:step]
		}
		chunk = bytes.Clone(chunk) // the parser unmasks in place
		in = in[len(chunk):]
		for len(chunk) > 0 {
			n, ev, err := p.feed(chunk)
			chunk = chunk[n:]
			if err != nil {
				return out.String(), err
			}
			switch ev.kind {
			case evData:
				if ev.first {
					msg = msg[:0]
				}
				msg = append(msg, ev.data...)
				if ev.fin {
					fmt.Fprintf(&out, "%d:%s;", ev.op, msg)
				}
			case evControl:
				if ev.op == opClose {
					fmt.Fprintf(&out, "close %d %s;", ev.code, ev.data[min(2, len(ev.data)):])
				} else {
					fmt.Fprintf(&out, "ctl%d:%s;", ev.op, ev.data)
				}
			}
		}
	}
	return out.String(), nil
}

func newParserFor(server, deflate bool) *parser {
	return &parser{server: server, deflate: deflate, limit: 1 << 20}
}

func TestParserValidSequences(t *testing.T) {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"single text", maskedFrame(true, opText, "Hello"), "1:Hello;"},
		{"empty binary", maskedFrame(true, opBinary, ""), "2:;"},
		{"fragmented with interleaved ping", cat(
			maskedFrame(false, opText, "Hel"),
			maskedFrame(true, opPing, "p1"),
			maskedFrame(false, opContinuation, ""),
			maskedFrame(true, opPong, ""),
			maskedFrame(true, opContinuation, "lo")), "ctl9:p1;ctl10:;1:Hello;"},
		{"utf8 split across frames", cat(
			maskedFrame(false, opText, "\xf0\x9f"),
			maskedFrame(true, opContinuation, "\x98\x80")), "1:\U0001F600;"},
		{"16-bit length", maskedFrame(true, opBinary, string(bytes.Repeat([]byte{'x'}, 300))), "2:" + string(bytes.Repeat([]byte{'x'}, 300)) + ";"},
		{"64-bit length", maskedFrame(true, opBinary, string(bytes.Repeat([]byte{'y'}, 70000))), "2:" + string(bytes.Repeat([]byte{'y'}, 70000)) + ";"},
		{"close empty", maskedFrame(true, opClose, ""), "close 1005 ;"},
		{"close with reason", maskedFrame(true, opClose, closeBody(1000, "bye \u00e9")), "close 1000 bye \u00e9;"},
		{"close 3000", maskedFrame(true, opClose, closeBody(3000, "")), "close 3000 ;"},
		{"close 4999", maskedFrame(true, opClose, closeBody(4999, "")), "close 4999 ;"},
		{"close 1011", maskedFrame(true, opClose, closeBody(1011, "")), "close 1011 ;"},
		{"control 125 bytes", maskedFrame(true, opPing, string(bytes.Repeat([]byte{'z'}, 125))), "ctl9:" + string(bytes.Repeat([]byte{'z'}, 125)) + ";"},
	}
	for _, tt := range tests {
		for _, step := range []int{0, 1, 2, 3, 5, 13} {
			t.Run(fmt.Sprintf("%s/step%d", tt.name, step), func(t *testing.T) {
				got, err := parseAll(newParserFor(true, false), tt.in, step)
				if err != nil {
					t.Fatalf("error %v after %q", err, got)
				}
				if got != tt.want {
					t.Fatalf("got %.80q\nwant %.80q", got, tt.want)
				}
			})
		}
	}
}

func TestParserFailures(t *testing.T) {
	big := string(bytes.Repeat([]byte{'a'}, 126))
	tests := []struct {
		name    string
		server  bool
		deflate bool
		in      []byte
		want    StatusCode
	}{
		{"unmasked client frame", true, false, frameSpec{fin: true, op: opText, payload: []byte("hi")}.bytes(), 1002},
		{"masked server frame", false, false, maskedFrame(true, opText, "hi"), 1002},
		{"RSV1 without deflate", true, false, frameSpec{fin: true, rsv: bitRSV1, op: opText, mask: true}.bytes(), 1002},
		{"RSV2", true, true, frameSpec{fin: true, rsv: bitRSV2, op: opText, mask: true}.bytes(), 1002},
		{"RSV3", true, true, frameSpec{fin: true, rsv: bitRSV3, op: opText, mask: true}.bytes(), 1002},
		{"RSV1 on continuation", true, true, append(
			frameSpec{rsv: bitRSV1, op: opText, mask: true, payload: []byte("x")}.bytes(),
			frameSpec{fin: true, rsv: bitRSV1, op: opContinuation, mask: true}.bytes()...), 1002},
		{"RSV1 on ping", true, true, frameSpec{fin: true, rsv: bitRSV1, op: opPing, mask: true}.bytes(), 1002},
		{"opcode 3", true, false, maskedFrame(true, 3, ""), 1002},
		{"opcode 7", true, false, maskedFrame(true, 7, ""), 1002},
		{"opcode 0xB", true, false, maskedFrame(true, 0xB, ""), 1002},
		{"opcode 0xF", true, false, maskedFrame(true, 0xF, ""), 1002},
		{"ping over 125", true, false, maskedFrame(true, opPing, big), 1002},
		{"close over 125", true, false, maskedFrame(true, opClose, closeBody(1000, big)), 1002},
		{"fragmented ping", true, false, maskedFrame(false, opPing, "x"), 1002},
		{"continuation without start", true, false, maskedFrame(true, opContinuation, "x"), 1002},
		{"text inside message", true, false, append(maskedFrame(false, opText, "a"), maskedFrame(true, opText, "b")...), 1002},
		{"binary inside message", true, false, append(maskedFrame(false, opBinary, "a"), maskedFrame(true, opBinary, "b")...), 1002},
		{"non-minimal 16-bit", true, false, frameSpec{fin: true, op: opBinary, mask: true, payload: []byte("short"), lenBytes: 2}.bytes(), 1002},
		{"non-minimal 64-bit", true, false, frameSpec{fin: true, op: opBinary, mask: true, payload: []byte(big), lenBytes: 8}.bytes(), 1002},
		{"64-bit MSB", true, false, frameSpec{fin: true, op: opBinary, mask: true, lenBytes: 8, rawLen: 1 << 63}.bytes(), 1002},
		{"close 1-byte", true, false, maskedFrame(true, opClose, "\x03"), 1002},
		{"invalid utf8 text", true, false, maskedFrame(true, opText, "ab\xc0\xafcd"), 1007},
		{"truncated utf8 at end", true, false, maskedFrame(true, opText, "ab\xe2\x82"), 1007},
		{"invalid utf8 in close reason", true, false, maskedFrame(true, opClose, closeBody(1000, "\xff")), 1007},
		{"over limit", true, false, frameSpec{fin: true, op: opBinary, mask: true, lenBytes: 8, rawLen: 2 << 20}.bytes(), 1009},
		{"over limit across fragments", true, false, append(
			frameSpec{op: opBinary, mask: true, payload: make([]byte, 700<<10)}.bytes(),
			frameSpec{fin: true, op: opContinuation, mask: true, lenBytes: 8, rawLen: 400 << 10}.bytes()...), 1009},
	}
	for _, code := range []int{0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 2000, 2999, 5000, 65535} {
		tests = append(tests, struct {
			name    string
			server  bool
			deflate bool
			in      []byte
			want    StatusCode
		}{fmt.Sprintf("close code %d", code), true, false, maskedFrame(true, opClose, closeBody(code, "")), 1002})
	}
	for _, tt := range tests {
		for _, step := range []int{0, 1, 4} {
			t.Run(fmt.Sprintf("%s/step%d", tt.name, step), func(t *testing.T) {
				_, err := parseAll(newParserFor(tt.server, tt.deflate), tt.in, step)
				if err == nil {
					t.Fatal("no error")
				}
				if got := closeCodeFor(err); got != tt.want {
					t.Fatalf("close code %d (%v), want %d", got, err, tt.want)
				}
			})
		}
	}
}

// TestParserUTF8FailsEarly: a bad byte in the first fragment fails before the
// rest of the message arrives.
func TestParserUTF8FailsEarly(t *testing.T) {
	p := newParserFor(true, false)
	_, err := parseAll(p, maskedFrame(false, opText, "ok\xed\xa0\x80"), 0)
	if !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("got %v, want ErrInvalidUTF8 before the final fragment", err)
	}
}

// TestParserLimitBeforePayload: the limit error comes from the header alone.
func TestParserLimitBeforePayload(t *testing.T) {
	p := newParserFor(true, false)
	p.limit = 10
	hdr := frameSpec{fin: true, op: opBinary, mask: true, payload: make([]byte, 11)}.bytes()[:6]
	_, err := parseAll(p, hdr, 0)
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("got %v, want ErrMessageTooBig from the header", err)
	}
}

// TestParserCompressedFlag: RSV1 on the first frame marks the message
// compressed and skips UTF-8 validation of the compressed bytes.
func TestParserCompressedFlag(t *testing.T) {
	p := newParserFor(true, true)
	in := append(frameSpec{rsv: bitRSV1, op: opText, mask: true, payload: []byte{0xff, 0x00}}.bytes(),
		frameSpec{fin: true, op: opContinuation, mask: true, payload: []byte{0xc0}}.bytes()...)
	var evs []event
	for len(in) > 0 {
		n, ev, err := p.feed(in)
		if err != nil {
			t.Fatal(err)
		}
		in = in[n:]
		if ev.kind == evData {
			evs = append(evs, ev)
		}
	}
	if len(evs) != 2 || !evs[0].compressed || !evs[1].compressed || !evs[0].first || !evs[1].fin {
		t.Fatalf("events %+v", evs)
	}
}

func TestPutHeaderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 1 << 22} {
		for _, mask := range []bool{false, true} {
			var hdr [maxHeaderSize]byte
			key := binary.LittleEndian.Uint32(maskKey[:])
			hn := putHeader(hdr[:], true, false, opBinary, n, mask, key)
			if hn != headerSize(n, mask) {
				t.Fatalf("n=%d: header %d bytes, headerSize says %d", n, hn, headerSize(n, mask))
			}
			p := newParserFor(mask, false)
			p.limit = 1 << 30
			m, _, err := p.feed(hdr[:hn])
			if err != nil || m != hn {
				t.Fatalf("n=%d mask=%v: consumed %d err %v", n, mask, m, err)
			}
			if n > 0 && (p.remaining != int64(n) || p.state != stPayload || p.masked != mask || (mask && p.key != key)) {
				t.Fatalf("n=%d mask=%v: parser state %+v", n, mask, p)
			}
		}
	}
}

func TestValidCloseCode(t *testing.T) {
	for code := StatusCode(0); code < 6000; code++ {
		want := (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999)
		if validCloseCode(code) != want {
			t.Fatalf("validCloseCode(%d) = %v", code, !want)
		}
	}
}
