package ws_test

// UTF-8 validation of text messages (RFC 6455 sections 5.6 and 8.1): every
// class of invalid sequence fails with 1007 wherever fragment boundaries
// fall, valid text passes however it is split, and the failure comes as soon
// as the bad byte arrives.

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/duplexhq/duplex/ws"
)

// badUTF8 lists invalid sequences by class (Unicode 15, table 3-7).
var badUTF8 = []struct {
	name string
	seq  string
	// atEnd marks sequences that are only invalid because the message ends
	// (truncated): they cannot fail before the final fragment.
	atEnd bool
}{
	{name: "overlong2_C0AF", seq: "\xc0\xaf"},
	{name: "overlong2_C1BF", seq: "\xc1\xbf"},
	{name: "overlong3_E080AF", seq: "\xe0\x80\xaf"},
	{name: "overlong3_E09FBF", seq: "\xe0\x9f\xbf"},
	{name: "overlong4_F08080AF", seq: "\xf0\x80\x80\xaf"},
	{name: "overlong4_F08FBFBF", seq: "\xf0\x8f\xbf\xbf"},
	{name: "surrogate_D800", seq: "\xed\xa0\x80"},
	{name: "surrogate_DB7F", seq: "\xed\xad\xbf"},
	{name: "surrogate_DC00", seq: "\xed\xb0\x80"},
	{name: "surrogate_DFFF", seq: "\xed\xbf\xbf"},
	{name: "surrogate_pair", seq: "\xed\xa0\x80\xed\xb0\x80"},
	{name: "above10FFFF_F4908080", seq: "\xf4\x90\x80\x80"},
	{name: "above10FFFF_F7BFBFBF", seq: "\xf7\xbf\xbf\xbf"},
	{name: "fiveByte", seq: "\xf8\x88\x80\x80\x80"},
	{name: "sixByte", seq: "\xfc\x84\x80\x80\x80\x80"},
	{name: "stray80", seq: "\x80"},
	{name: "strayBF", seq: "\xbf"},
	{name: "strayAfterRune", seq: "\xc3\xa9\xa9"},
	{name: "lead_C0", seq: "\xc0"},
	{name: "lead_C1", seq: "\xc1"},
	{name: "lead_F5", seq: "\xf5"},
	{name: "lead_F8", seq: "\xf8"},
	{name: "lead_FE", seq: "\xfe"},
	{name: "lead_FF", seq: "\xff"},
	{name: "leadThenASCII", seq: "\xe2\x82a"},
	{name: "truncated2", seq: "\xc3", atEnd: true},
	{name: "truncated3", seq: "\xe2\x82", atEnd: true},
	{name: "truncated4", seq: "\xf0\x9f\x98", atEnd: true},
}

// badMessage frames seq between short valid text (nothing after a
// truncated sequence).
func badMessage(seq string, atEnd bool) []byte {
	m := "é" + seq
	if !atEnd {
		m += "z"
	}
	return []byte(m)
}

func TestConformanceUTF8TableIsInvalid(t *testing.T) {
	// Guards the table itself: every message must really be invalid.
	for _, b := range badUTF8 {
		if utf8.Valid(badMessage(b.seq, b.atEnd)) {
			t.Errorf("%s: %x is valid UTF-8", b.name, b.seq)
		}
	}
}

// TestConformanceUTF8InvalidSplit sends every invalid message as two
// uncompressed fragments split at every byte position, and as one fragment
// per byte.
func TestConformanceUTF8InvalidSplit(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		for _, b := range badUTF8 {
			msg := badMessage(b.seq, b.atEnd)
			for i := 0; i <= len(msg); i++ {
				t.Run(fmt.Sprintf("%s/split%d", b.name, i), func(t *testing.T) {
					pr := h.start(t, config{})
					pr.peer.writeFrames(frame{op: opText, payload: msg[:i]}, frame{fin: true, op: opCont, payload: msg[i:]})
					pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
				})
			}
			t.Run(b.name+"/bytewise", func(t *testing.T) {
				pr := h.start(t, config{})
				fs := []frame{{op: opText}}
				for j := range msg {
					fs = append(fs, frame{op: opCont, payload: msg[j : j+1], fin: j == len(msg)-1})
				}
				pr.peer.writeFrames(fs...)
				pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
			})
		}
	})
}

// TestConformanceUTF8InvalidCompressed sends every invalid message
// compressed, whole and with its compressed body split in two frames.
func TestConformanceUTF8InvalidCompressed(t *testing.T) {
	for _, m := range modes[1:] {
		t.Run(m.name, func(t *testing.T) {
			forEachSide(t, m, func(t *testing.T, h harness) {
				for _, b := range badUTF8 {
					for _, k := range []int{1, 2} {
						t.Run(fmt.Sprintf("%s/frames%d", b.name, k), func(t *testing.T) {
							pr := h.start(t, config{})
							pr.peer.sendMessage(opText, badMessage(b.seq, b.atEnd), sendOpts{fragments: k})
							pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
						})
					}
				}
			})
		})
	}
}

// TestConformanceUTF8FailFast sends the invalid bytes in a first, non-final
// fragment and nothing more: the 1007 close must come without the rest of
// the message (RFC 6455 section 8.1 allows failing "as soon as" the
// endpoint can tell; the package promises it does).
func TestConformanceUTF8FailFast(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		for _, b := range badUTF8 {
			if b.atEnd {
				continue
			}
			t.Run(b.name, func(t *testing.T) {
				pr := h.start(t, config{})
				pr.peer.writeFrame(frame{op: opText, payload: badMessage(b.seq, false)})
				pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
			})
		}
		t.Run("midMessageFragment", func(t *testing.T) {
			pr := h.start(t, config{})
			pr.peer.writeFrames(frame{op: opText, payload: []byte("fine so far ")}, frame{op: opCont, payload: []byte("then \xed\xa0\x80")})
			pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
		})
	})
}

// TestConformanceUTF8ValidSplit echoes valid multi-byte text split into two
// fragments at every byte position (so every rune is cut at every offset).
func TestConformanceUTF8ValidSplit(t *testing.T) {
	msg := []byte("aé€😀\U0010FFFF\u0080\u07FF\u0800\uFFFD\U00010000\ud7ff\ue000z")
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		for i := 0; i <= len(msg); i++ {
			pr.peer.writeFrames(frame{op: opText, payload: msg[:i]}, frame{fin: true, op: opCont, payload: msg[i:]})
			if m := pr.peer.readMessage(); m.op != opText || string(m.payload) != string(msg) {
				t.Fatalf("split at %d echoed as op %#x %q", i, m.op, m.payload)
			}
		}
		// And one fragment per byte, compressed when negotiated.
		pr.echoes(opText, msg, sendOpts{fragments: len(msg)})
		pr.closeNormally()
	})
}

// TestConformanceUTF8FailFastCompressed is the fail-fast rule for
// compressed messages: the first fragment carries a complete, flushed
// deflate block whose text is already invalid, and nothing follows. The
// package promises 1007 "at the first bad byte", so inflating must be
// incremental too.
func TestConformanceUTF8FailFastCompressed(t *testing.T) {
	for _, m := range modes[1:] {
		t.Run(m.name, func(t *testing.T) {
			forEachSide(t, m, func(t *testing.T, h harness) {
				pr := h.start(t, config{})
				body := pr.peer.deflate.compress([]byte("fine so far, then \xed\xa0\x80 and more"))
				pr.peer.writeFrame(frame{rsv: bitRSV1, op: opText, payload: body})
				pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
			})
		})
	}
}
