package ws

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
)

// FuzzInflate feeds arbitrary bytes to the decompressor as two consecutive
// messages (the second on top of the first's history when context takeover
// is on). It must never panic, never return more than the limit, and fail
// only with ErrMessageTooBig or errInvalidDeflate, leaving dst untouched.
func FuzzInflate(f *testing.F) {
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	f.Add(hello, []byte{0xf2, 0x00, 0x11, 0x00, 0x00}, uint8(15), true, uint16(100))
	f.Add([]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, hello, uint8(8), false, uint16(5))
	f.Add([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, []byte{0x00}, uint8(9), true, uint16(0))
	c := newCompressor(1, 15, true)
	msgs := testMessages(8)
	f.Add(c.compress(nil, msgs[0]), c.compress(nil, msgs[5]), uint8(15), true, uint16(60000))
	f.Add(newCompressor(9, 15, false).compress(nil, make([]byte, 100000)), []byte{}, uint8(12), false, uint16(4096))
	f.Fuzz(func(t *testing.T, m1, m2 []byte, bits uint8, ct bool, limit uint16) {
		d := newDecompressor(int(bits), ct)
		for _, m := range [][]byte{m1, m2} {
			dst := []byte("dst")
			out, err := d.decompress(dst, m, int64(limit))
			if err != nil {
				if !errors.Is(err, ErrMessageTooBig) && !errors.Is(err, errInvalidDeflate) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				if !bytes.Equal(out, []byte("dst")) {
					t.Fatalf("dst changed on error")
				}
				if cap(out) > len("dst")+int(limit)+1 && cap(out) != cap(dst) {
					t.Fatalf("output buffer of %d bytes for a limit of %d", cap(out), limit)
				}
				return // the connection would be failed here
			}
			if len(out)-len("dst") > int(limit) {
				t.Fatalf("%d bytes out, limit %d", len(out)-len("dst"), limit)
			}
			if string(out[:3]) != "dst" {
				t.Fatalf("dst prefix overwritten")
			}
			if len(d.hist) > d.histSize {
				t.Fatalf("history of %d bytes, bound %d", len(d.hist), d.histSize)
			}
		}
	})
}

// FuzzDeflateRoundTrip compresses arbitrary messages with arbitrary
// parameters and checks the round trip and the window bound.
func FuzzDeflateRoundTrip(f *testing.F) {
	f.Add([]byte("Hello, Hello, Hello"), []byte("Hello"), uint8(15), uint8(1), true)
	f.Add(bytes.Repeat([]byte("abcdefghij"), 100), bytes.Repeat([]byte("abcdefghij"), 50), uint8(8), uint8(1), true)
	f.Add(chatMessage(rand.New(rand.NewSource(9)), 3000), []byte{}, uint8(10), uint8(9), false)
	f.Fuzz(func(t *testing.T, m1, m2 []byte, bits, level uint8, ct bool) {
		b := clampBits(int(bits))
		c := newCompressor(int(level), b, ct)
		d := newDecompressor(b, ct)
		var sent []byte
		for _, m := range [][]byte{m1, m2} {
			z := c.compress(nil, m)
			var hist []byte
			if ct {
				hist = sent
			}
			if _, _, err := checkInflate(hist, z, 1<<b); err != nil {
				t.Fatalf("window %d: %v", b, err)
			}
			out, err := d.decompress(nil, z, int64(len(m)))
			if err != nil || !bytes.Equal(out, m) {
				t.Fatalf("round trip: %v", err)
			}
			sent = append(sent, m...)
		}
	})
}
