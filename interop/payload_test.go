package interop

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// textPieces mix one- to four-byte UTF-8 sequences, so that a text message
// cut into frames (or into deflate blocks) splits runes at every offset.
var textPieces = []string{"héllo ", "wörld ", "日本語の文 ", "😀🎉 ", "plain ascii text ", "Ελληνικά ", "∑∞ "}

// textPayload returns valid UTF-8 of exactly n bytes: repetitive enough to
// compress, varied by seed.
func textPayload(n, seed int) []byte {
	b := make([]byte, 0, n)
	for i := seed; ; i++ {
		piece := textPieces[i%len(textPieces)]
		if len(b)+len(piece) > n {
			break
		}
		b = append(b, piece...)
	}
	for len(b) < n {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

// binaryPayload returns n pseudo-random, incompressible bytes.
func binaryPayload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(uint64(n), seed))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// burstPayloads returns n chat-like JSON messages that differ in their
// details: alike enough across messages for context takeover to pay, and
// each long enough (over any sane compression threshold) to be compressed
// on its own.
func burstPayloads(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil,
			`{"type":"message","conversation":"room-%d","seq":%d,"author":{"id":"user-%d","name":"Ünïcode Üser %d"},`+
				`"body":"message number %d: the quick brown fox jumps over the lazy dog; the quick brown fox jumps again",`+
				`"sent_at":"2026-11-21T06:%02d:%02dZ","attachments":[],"reactions":{"👍":%d}}`,
			i%7, i, i%13, i%13, i, i/60%60, i%60, i%5)
	}
	return msgs
}

func TestPayloads(t *testing.T) {
	for i, n := range messageSizes {
		if p := textPayload(n, i); len(p) != n || !utf8.Valid(p) {
			t.Errorf("textPayload(%d): %d bytes, valid UTF-8 %v", n, len(p), utf8.Valid(p))
		}
		if p := binaryPayload(n, uint64(i)); len(p) != n {
			t.Errorf("binaryPayload(%d): %d bytes", n, len(p))
		}
	}
	for _, m := range burstPayloads(burstCount) {
		if string(m) == cmdClose || string(m) == cmdPing || !utf8.Valid(m) {
			t.Fatalf("burst payload %q collides with a command or is not UTF-8", m)
		}
	}
}
