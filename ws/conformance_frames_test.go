package ws_test

// Framing (RFC 6455 section 5): lengths, fragmentation, control frames,
// reserved bits and opcodes, masking.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/duplexhq/duplex/ws"
)

// testPayload returns n deterministic bytes; text payloads are valid UTF-8
// mixing 1- to 4-byte sequences (a multi-byte rune may be cut at the end, so
// the last bytes are ASCII padding).
func testPayload(op byte, n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, 0, n)
	if op == opBinary {
		for len(b) < n {
			b = binary.LittleEndian.AppendUint64(b, r.Uint64())
		}
		return b[:n]
	}
	runes := []rune{'a', 'Z', ' ', '~', 'é', 'ß', '€', '中', '😀', '\U0010FFFF', '\u0080', '\u07FF', '\u0800', '\uFFFD'}
	for {
		c := runes[r.IntN(len(runes))]
		if len(b)+len(string(c)) > n {
			break
		}
		b = append(b, string(c)...)
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

func TestConformanceEchoLengths(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{readLimit: 17 << 20})
		for _, op := range []byte{opText, opBinary} {
			for _, n := range sizes {
				pr.echoes(op, testPayload(op, n, 1), sendOpts{})
			}
		}
		// One 16 MiB message per mode and role where it is cheap: both roles
		// uncompressed (binary to our server, fragmented text to our
		// client), our server with context takeover, our client without.
		big := (h.mode.comp == ws.CompressionContextTakeover) == (h.side == ourServer)
		if h.mode.comp == ws.CompressionDisabled {
			big = true
		}
		if big && !testing.Short() {
			pr.peer.timeout = 60 * ioTimeout // 16 MiB under -race on a loaded machine
			if h.mode.comp == ws.CompressionDisabled && h.side == ourClient {
				pr.echoes(opText, testPayload(opText, 16<<20, 2), sendOpts{fragments: 3})
			} else {
				pr.echoes(opBinary, testPayload(opBinary, 16<<20, 2), sendOpts{})
			}
			pr.peer.timeout = 0
		}
		// Uncompressed messages stay legal when deflate is negotiated.
		pr.echoes(opText, testPayload(opText, 300, 3), sendOpts{uncompress: true})
		pr.closeNormally()
	})
}

// TestConformanceLengthEncodings sends the 16- and 64-bit length forms with
// lengths at their boundaries, built by hand so the encoding is exact.
func TestConformanceLengthEncodings(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		for _, n := range []int{125, 126, 127, 65535, 65536} {
			p := testPayload(opBinary, n, 4)
			pr.peer.writeFrame(frame{fin: true, op: opBinary, payload: p})
			f := pr.peer.readFrame()
			if f.op != opBinary || !f.fin || !bytes.Equal(f.payload, p) {
				t.Fatalf("length %d: echo %v", n, f)
			}
		}
		pr.closeNormally()
	})
}

func TestConformanceChoppedWrites(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		pr.peer.chop = true
		for _, n := range []int{0, 1, 125, 126, 1000} {
			pr.echoes(opText, testPayload(opText, n, 5), sendOpts{})
			pr.echoes(opBinary, testPayload(opBinary, n, 6), sendOpts{fragments: 3})
		}
		pr.peer.writeFrame(frame{fin: true, op: opPing, payload: []byte("chop")})
		if f := pr.peer.readFrame(); f.op != opPong || string(f.payload) != "chop" {
			t.Fatalf("ping sent in 1-byte writes answered with %v %q", f, f.payload)
		}
		pr.closeNormally()
	})
}

func TestConformancePing(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		for _, n := range []int{0, 1, 125} {
			p := testPayload(opBinary, n, 7)
			pr.peer.writeFrame(frame{fin: true, op: opPing, payload: p})
			f := pr.peer.readFrame()
			if f.op != opPong || !f.fin || f.rsv != 0 || !bytes.Equal(f.payload, p) {
				t.Fatalf("ping of %d bytes answered with %v payload %x", n, f, f.payload)
			}
		}
		// An unsolicited pong is ignored: the next thing back is the echo.
		pr.peer.writeFrame(frame{fin: true, op: opPong, payload: []byte("unsolicited")})
		pr.echoes(opText, []byte("after pong"), sendOpts{})

		// Control frames interleaved between fragments of a message.
		part := [][]byte{[]byte("frag-one "), []byte("frag-two "), []byte("frag-three")}
		pr.peer.writeFrames(
			frame{op: opText, payload: part[0]},
			frame{fin: true, op: opPing, payload: []byte("mid")},
			frame{op: opCont, payload: part[1]},
			frame{fin: true, op: opPong, payload: []byte("ignored")},
			frame{fin: true, op: opCont, payload: part[2]},
		)
		if f := pr.peer.readFrame(); f.op != opPong || string(f.payload) != "mid" {
			t.Fatalf("ping between fragments answered with %v %q", f, f.payload)
		}
		if m := pr.peer.readMessage(); m.op != opText || string(m.payload) != "frag-one frag-two frag-three" {
			t.Fatalf("interleaved message echoed as op %#x %q", m.op, m.payload)
		}
		pr.closeNormally()
	})
}

// failCase is a sequence of frames that must fail the connection with code.
type failCase struct {
	name   string
	frames []frame
	code   ws.StatusCode
	errIs  error
	// deflate limits the case to modes that compress (true) or that do not
	// (false); nil runs it in every mode.
	deflate *bool
	// echoed is how many complete messages come back before the close.
	echoed int
}

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

// runFailCases runs every case on a fresh connection in every role and mode.
func runFailCases(t *testing.T, cases []failCase) {
	forEach(t, func(t *testing.T, h harness) {
		for _, c := range cases {
			if c.deflate != nil && *c.deflate != h.compressed() {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				pr := h.start(t, config{})
				pr.peer.writeFrames(c.frames...)
				for range c.echoed {
					pr.peer.readMessage()
				}
				pr.failsWith(c.code, c.errIs)
			})
		}
	})
}

func TestConformanceControlFrameRules(t *testing.T) {
	runFailCases(t, []failCase{
		{name: "ping126", frames: []frame{{fin: true, op: opPing, payload: make([]byte, 126)}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "pong126", frames: []frame{{fin: true, op: opPong, payload: make([]byte, 126)}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "close126", frames: []frame{{fin: true, op: opClose, payload: closePayload(1000, string(bytes.Repeat([]byte("r"), 124)))}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "fragmentedPing", frames: []frame{{op: opPing, payload: []byte("a")}, {fin: true, op: opCont, payload: []byte("b")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "fragmentedPingAlone", frames: []frame{{op: opPing, payload: []byte("a")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "fragmentedClose", frames: []frame{{op: opClose, payload: closePayload(1000, "")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "fragmentedPongInMessage", frames: []frame{{op: opText, payload: []byte("a")}, {op: opPong}}, code: 1002, errIs: ws.ErrProtocol},
	})
}

func TestConformanceReservedBits(t *testing.T) {
	var cases []failCase
	for _, rsv := range []byte{bitRSV1, bitRSV2, bitRSV3, bitRSV1 | bitRSV2 | bitRSV3} {
		var only *bool
		if rsv == bitRSV1 {
			only = no // RSV1 is the compression bit once deflate is negotiated
		}
		cases = append(cases,
			failCase{name: fmt.Sprintf("text_rsv%#x", rsv), frames: []frame{{fin: true, rsv: rsv, op: opText, payload: []byte("x")}}, code: 1002, errIs: ws.ErrProtocol, deflate: only},
			failCase{name: fmt.Sprintf("ping_rsv%#x", rsv), frames: []frame{{fin: true, rsv: rsv, op: opPing}}, code: 1002, errIs: ws.ErrProtocol},
			failCase{name: fmt.Sprintf("close_rsv%#x", rsv), frames: []frame{{fin: true, rsv: rsv, op: opClose, payload: closePayload(1000, "")}}, code: 1002, errIs: ws.ErrProtocol},
		)
	}
	// With deflate negotiated RSV1 is allowed only on the first frame of a
	// data message (RFC 7692 section 6.1).
	cases = append(cases,
		failCase{name: "rsv1_continuation", frames: []frame{{op: opText, payload: []byte("a")}, {fin: true, rsv: bitRSV1, op: opCont, payload: []byte("b")}}, code: 1002, errIs: ws.ErrProtocol, deflate: yes},
		failCase{name: "rsv1_pong", frames: []frame{{fin: true, rsv: bitRSV1, op: opPong}}, code: 1002, errIs: ws.ErrProtocol, deflate: yes},
		failCase{name: "rsv2_binary", frames: []frame{{fin: true, rsv: bitRSV2, op: opBinary}}, code: 1002, errIs: ws.ErrProtocol},
	)
	runFailCases(t, cases)
}

func TestConformanceReservedOpcodes(t *testing.T) {
	var cases []failCase
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, failCase{name: fmt.Sprintf("op%#x", op), frames: []frame{{fin: true, op: op, payload: []byte("x")}}, code: 1002, errIs: ws.ErrProtocol})
	}
	// A reserved opcode in the middle of a fragmented message.
	cases = append(cases, failCase{name: "op3_in_message", frames: []frame{{op: opText, payload: []byte("a")}, {fin: true, op: 3}}, code: 1002, errIs: ws.ErrProtocol})
	runFailCases(t, cases)
}

func TestConformanceFragmentationRules(t *testing.T) {
	runFailCases(t, []failCase{
		{name: "continuationFirst", frames: []frame{{fin: true, op: opCont, payload: []byte("x")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "continuationNoFinFirst", frames: []frame{{op: opCont, payload: []byte("x")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "continuationAfterMessage", frames: []frame{{fin: true, op: opBinary, payload: []byte("x")}, {fin: true, op: opCont, payload: []byte("y")}}, code: 1002, errIs: ws.ErrProtocol, echoed: 1},
		{name: "textInsideText", frames: []frame{{op: opText, payload: []byte("a")}, {fin: true, op: opText, payload: []byte("b")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "binaryInsideText", frames: []frame{{op: opText, payload: []byte("a")}, {fin: true, op: opBinary, payload: []byte("b")}}, code: 1002, errIs: ws.ErrProtocol},
		{name: "textInsideBinary", frames: []frame{{op: opBinary, payload: []byte("a")}, {op: opCont}, {fin: true, op: opText}}, code: 1002, errIs: ws.ErrProtocol},
	})
}

func TestConformanceFragmentedMessages(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		for _, op := range []byte{opText, opBinary} {
			for _, n := range []int{0, 1, 50, 3000} {
				p := testPayload(op, n, 8)
				for _, k := range []int{2, 7, 64} {
					pr.echoes(op, p, sendOpts{fragments: k}) // k > n gives empty fragments
				}
			}
		}
		// Empty first and last fragments around the data, uncompressed.
		pr.peer.writeFrames(
			frame{op: opBinary},
			frame{op: opCont, payload: []byte("mid")},
			frame{op: opCont},
			frame{fin: true, op: opCont},
		)
		if m := pr.peer.readMessage(); m.op != opBinary || string(m.payload) != "mid" {
			t.Fatalf("empty-edged fragments echoed as op %#x %q", m.op, m.payload)
		}
		pr.closeNormally()
	})
}

func TestConformanceMasking(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		// The raw peer flips the mask rule: an unmasked frame to our server,
		// a masked frame to our client (RFC 6455 section 5.1).
		pr.peer.write(appendFrame(nil, frame{fin: true, op: opText, payload: []byte("mask rule")}, !pr.peer.client))
		pr.failsWith(ws.StatusProtocolError, ws.ErrProtocol)
	})
}

// TestConformanceHugeLength sends a 64-bit length with the most significant
// bit set, which RFC 6455 section 5.2 forbids; our side must fail the
// connection (protocol error, or message too big) instead of allocating.
func TestConformanceHugeLength(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		hdr := []byte{bitFIN | opBinary, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}
		if pr.peer.client {
			hdr[1] |= 0x80
			hdr = append(hdr, 1, 2, 3, 4)
		}
		pr.peer.write(hdr)
		f := pr.peer.readFrame()
		code, _, _ := parseClose(f.payload)
		if f.op != opClose || (code != 1002 && code != 1009) {
			t.Fatalf("got %v code %d, want close 1002 or 1009", f, code)
		}
		pr.peer.finishClose(code)
		pr.wantResult(ws.StatusCode(code))
	})
}

// TestConformancePipelinedFirstFrame: frames that arrive in the same TCP
// segment as the handshake (a client that does not wait for the 101, a
// server that writes its first message right behind it) belong to the
// connection and must not be lost in a handshake buffer.
func TestConformancePipelinedFirstFrame(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		early := appendFrame(nil, frame{fin: true, op: opText, payload: []byte("early bird")}, h.side == ourServer)
		early = appendFrame(early, frame{fin: true, op: opPing, payload: []byte("p")}, h.side == ourServer)
		for _, cfg := range []config{{early: early}, {early: early, acceptConn: true}} {
			if cfg.acceptConn && h.side == ourClient {
				continue
			}
			pr := h.start(t, cfg)
			if m := pr.peer.readMessage(); m.op != opText || string(m.payload) != "early bird" {
				t.Fatalf("pipelined frame echoed as op %#x %q", m.op, m.payload)
			}
			if f := pr.peer.readFrame(); f.op != opPong || string(f.payload) != "p" {
				t.Fatalf("pipelined ping answered with %v", f)
			}
			pr.closeNormally()
		}
	})
}
