package ws

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// naiveMask is the definition of section 5.3, byte by byte.
func naiveMask(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
}

func TestMaskBytesMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keyBytes := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	key := binary.LittleEndian.Uint32(keyBytes[:])
	for n := 0; n <= 100; n++ {
		for pos := 0; pos < 8; pos++ {
			for off := 0; off < 8; off++ { // unaligned starts
				buf := make([]byte, n+off)
				for i := range buf {
					buf[i] = byte(r.Uint32())
				}
				want := bytes.Clone(buf[off:])
				naiveMask(keyBytes, pos, want)
				got := buf[off:]
				if next := maskBytes(key, pos, got); next != pos+n {
					t.Fatalf("n=%d pos=%d: returned offset %d, want %d", n, pos, next, pos+n)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("n=%d pos=%d off=%d: got %x want %x", n, pos, off, got, want)
				}
			}
		}
	}
}

func TestMaskBytesInPieces(t *testing.T) {
	keyBytes := [4]byte{1, 2, 3, 4}
	key := binary.LittleEndian.Uint32(keyBytes[:])
	payload := bytes.Repeat([]byte("Hello, masked world! "), 20)
	want := bytes.Clone(payload)
	naiveMask(keyBytes, 0, want)
	for _, split := range []int{1, 3, 7, 8, 9, 33, 100} {
		got := bytes.Clone(payload)
		pos := 0
		for i := 0; i < len(got); i += split {
			pos = maskBytes(key, pos, got[i:min(i+split, len(got))])
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("split %d: mismatch", split)
		}
	}
}

func TestMaskCopy(t *testing.T) {
	keyBytes := [4]byte{0xde, 0xad, 0xbe, 0xef}
	key := binary.LittleEndian.Uint32(keyBytes[:])
	for n := 0; n < 80; n++ {
		for pos := 0; pos < 5; pos++ {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(i * 7)
			}
			want := bytes.Clone(src)
			naiveMask(keyBytes, pos, want)
			dst := make([]byte, n+5)
			maskCopy(dst, src, key, pos)
			if !bytes.Equal(dst[:n], want) {
				t.Fatalf("n=%d pos=%d: got %x want %x", n, pos, dst[:n], want)
			}
		}
	}
}

// TestMaskRFCExample checks the masked "Hello" of RFC 6455 section 5.7.
func TestMaskRFCExample(t *testing.T) {
	frame := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	key := binary.LittleEndian.Uint32(frame[2:6])
	payload := bytes.Clone(frame[6:])
	maskBytes(key, 0, payload)
	if string(payload) != "Hello" {
		t.Fatalf("unmasked %q", payload)
	}
}
