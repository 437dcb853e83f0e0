package ws

import (
	"bytes"
	"testing"
)

// FuzzParser feeds arbitrary input to the parser whole and in pieces of a
// fuzzed size: it must never panic, never consume more than it was given,
// and reach the same events and the same verdict however the input is
// split (the property the event-driven mode relies on).
func FuzzParser(f *testing.F) {
	f.Add(maskedFrame(true, opText, "Hello"), uint8(1), true, false)
	f.Add(append(maskedFrame(false, opText, "He\xc3"), maskedFrame(true, opContinuation, "\xa9llo")...), uint8(3), true, false)
	f.Add(frameSpec{fin: true, op: opBinary, payload: make([]byte, 300)}.bytes(), uint8(7), false, false)
	f.Add(frameSpec{fin: true, rsv: bitRSV1, op: opText, mask: true, payload: []byte{1, 2}}.bytes(), uint8(2), true, true)
	f.Add(maskedFrame(true, opClose, closeBody(1000, "bye")), uint8(5), true, false)
	f.Fuzz(func(t *testing.T, in []byte, step uint8, server, deflate bool) {
		whole, errWhole := parseAll(&parser{server: server, deflate: deflate, limit: 1 << 16}, in, 0)
		split, errSplit := parseAll(&parser{server: server, deflate: deflate, limit: 1 << 16}, in, int(step%16)+1)
		if whole != split {
			t.Fatalf("events differ by split:\nwhole %q\nsplit %q", whole, split)
		}
		if (errWhole == nil) != (errSplit == nil) || (errWhole != nil && closeCodeFor(errWhole) != closeCodeFor(errSplit)) {
			t.Fatalf("verdict differs by split: %v vs %v", errWhole, errSplit)
		}
		// feed never reports consuming more than it got.
		p := &parser{server: server, deflate: deflate, limit: 1 << 16}
		buf := bytes.Clone(in)
		for len(buf) > 0 {
			n, _, err := p.feed(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("consumed %d of %d", n, len(buf))
			}
			if err != nil {
				break
			}
			if n == 0 {
				t.Fatal("no progress")
			}
			buf = buf[n:]
		}
	})
}
