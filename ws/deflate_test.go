package ws

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"
)

// chatMessage returns a JSON chat message of about n bytes, like the ones
// duplex carries: repeated keys, ids, short texts.
func chatMessage(r *rand.Rand, n int) []byte {
	words := []string{"hello", "the", "meeting", "is", "at", "noon", "can", "you", "send", "me",
		"report", "thanks", "ok", "see", "later", "deploy", "build", "failed", "again", "fixed"}
	var b bytes.Buffer
	b.WriteString(`{"type":"batch","messages":[`)
	for i := 0; b.Len() < n-150; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"m_%08x","conversation":"c_7f3a2b91","seq":%d,"sender":"u_%04d","text":"`,
			r.Uint32(), 1000+i, r.Intn(50))
		for j := range 4 + r.Intn(10) {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.Intn(len(words))])
		}
		b.WriteString(`"}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// testMessages is a sequence that exercises the engines: chat messages,
// incompressible bytes, long runs, an empty message, and messages that
// repeat content from further back than small windows reach.
func testMessages(seed int64) [][]byte {
	r := rand.New(rand.NewSource(seed))
	var msgs [][]byte
	random := func(n int) []byte {
		b := make([]byte, n)
		r.Read(b)
		return b
	}
	block := chatMessage(r, 3000)
	for i := range 40 {
		switch i % 8 {
		case 0:
			msgs = append(msgs, chatMessage(r, 200+r.Intn(800)))
		case 1:
			msgs = append(msgs, random(1+r.Intn(2000)))
		case 2:
			msgs = append(msgs, bytes.Repeat([]byte{'a'}, 1+r.Intn(70000)))
		case 3:
			msgs = append(msgs, nil)
		case 4:
			// The same 3000 bytes twice with noise between: a match
			// exists only at distances > 3000.
			m := append(append(append([]byte{}, block...), random(r.Intn(40000))...), block...)
			msgs = append(msgs, m)
		case 5:
			msgs = append(msgs, block) // repeats across messages
		default:
			msgs = append(msgs, chatMessage(r, 100+r.Intn(100000)))
		}
	}
	return msgs
}

// TestDeflateRoundTrip compresses a sequence of messages with every window
// size, both context takeover settings and a fast and a slow level, and
// checks each message three ways: our decompressor gets the original back,
// an independent inflater finds no back-reference beyond the window (nor,
// without context takeover, into earlier messages), and the standard
// library's flate reader agrees.
func TestDeflateRoundTrip(t *testing.T) {
	msgs := testMessages(1)
	for bits := minWindowBits; bits <= maxWindowBits; bits++ {
		for _, ct := range []bool{false, true} {
			for _, level := range []int{1, 9} {
				if bits < maxWindowBits && level != 1 {
					continue // level applies to 15-bit windows only
				}
				t.Run(fmt.Sprintf("bits=%d/ct=%v/level=%d", bits, ct, level), func(t *testing.T) {
					t.Parallel()
					roundTrip(t, msgs, level, bits, ct)
				})
			}
		}
	}
}

func roundTrip(t *testing.T, msgs [][]byte, level, bits int, ct bool) {
	c := newCompressor(level, bits, ct)
	d := newDecompressor(bits, ct)
	defer c.release()
	defer d.release()
	var sent []byte // everything the peer has decompressed so far
	var buf, out []byte
	for i, m := range msgs {
		buf = c.compress(buf[:0], m)
		var err error
		out, err = d.decompress(out[:0], buf, 1<<30)
		if err != nil {
			t.Fatalf("message %d (%d bytes): decompress: %v", i, len(m), err)
		}
		if !bytes.Equal(out, m) {
			t.Fatalf("message %d (%d bytes): round trip changed it", i, len(m))
		}

		var hist []byte
		if ct {
			hist = sent
		}
		got, maxDist, err := checkInflate(hist, buf, 1<<bits)
		if err != nil {
			t.Fatalf("message %d (%d bytes): window check: %v", i, len(m), err)
		}
		if !bytes.Equal(got, m) {
			t.Fatalf("message %d: window check inflater disagrees", i)
		}
		if maxDist > 1<<bits {
			t.Fatalf("message %d: distance %d beyond window", i, maxDist)
		}

		if !ct || i == 0 {
			// Interop: a stock inflater decodes the message on its own.
			fr := stdflate.NewReader(io.MultiReader(bytes.NewReader(buf), bytes.NewReader(inflateTail[:])))
			got, err := io.ReadAll(fr)
			if err != nil || !bytes.Equal(got, m) {
				t.Fatalf("message %d: compress/flate: %v (equal %v)", i, err, bytes.Equal(got, m))
			}
		}
		sent = append(sent, m...)

		// Memory: history only with context takeover, never beyond
		// the window (at least 512 bytes on the receiving side).
		if !ct && (c.hist != nil || d.hist != nil) {
			t.Fatalf("message %d: history kept without context takeover", i)
		}
		if cap(c.hist) > 1<<bits || cap(d.hist) > max(1<<bits, minInflateHistory) {
			t.Fatalf("message %d: history capacities %d and %d for %d window bits", i, cap(c.hist), cap(d.hist), bits)
		}
	}
}

// TestDeflateContextTakeover checks that history is really used when
// negotiated and really not used otherwise.
func TestDeflateContextTakeover(t *testing.T) {
	msg := chatMessage(rand.New(rand.NewSource(2)), 2000)
	for _, tc := range []struct {
		bits int
		ct   bool
	}{{15, true}, {12, true}, {15, false}, {9, false}} {
		c := newCompressor(1, tc.bits, tc.ct)
		first := len(c.compress(nil, msg))
		second := c.compress(nil, msg)
		if tc.ct && len(second) > first/4 {
			t.Errorf("bits=%d: repeated message compressed to %d bytes (first %d): history unused", tc.bits, len(second), first)
		}
		if !tc.ct && len(second) != first {
			t.Errorf("bits=%d without context: sizes %d then %d", tc.bits, first, len(second))
		}
		if !tc.ct && c.hist != nil {
			t.Errorf("bits=%d without context keeps %d bytes of history", tc.bits, cap(c.hist))
		}
		if tc.ct && cap(c.hist) > 1<<tc.bits {
			t.Errorf("bits=%d: history capacity %d beyond the window", tc.bits, cap(c.hist))
		}
	}
}

// TestDecompressRFC7692Examples decodes the examples of RFC 7692 section
// 7.2.3 byte for byte.
func TestDecompressRFC7692Examples(t *testing.T) {
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	tests := []struct {
		name string
		ct   bool
		msgs [][]byte
	}{
		{"7.2.3.1 one message", false, [][]byte{hello}},
		{"7.2.3.2 shared window", true, [][]byte{hello, {0xf2, 0x00, 0x11, 0x00, 0x00}}},
		{"7.2.3.2 without sharing", false, [][]byte{hello, hello}},
		{"7.2.3.3 stored block", false, [][]byte{{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}}},
		{"7.2.3.4 BFINAL set", false, [][]byte{{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}}},
		{"7.2.3.5 two blocks", false, [][]byte{{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecompressor(15, tc.ct)
			for i, m := range tc.msgs {
				got, err := d.decompress(nil, m, 100)
				if err != nil || string(got) != "Hello" {
					t.Fatalf("message %d: got %q, %v; want \"Hello\"", i, got, err)
				}
			}
		})
	}
	t.Run("7.2.3.6 empty message", func(t *testing.T) {
		got, err := newDecompressor(15, false).decompress([]byte("x"), []byte{0x00}, 0)
		if err != nil || string(got) != "x" {
			t.Fatalf("got %q, %v; want dst unchanged", got, err)
		}
		if c := newCompressor(1, 15, false).compress(nil, nil); !bytes.Equal(c, []byte{0x00}) {
			t.Fatalf("empty message compressed to % x, want 00", c)
		}
	})
	t.Run("shared window without context takeover fails", func(t *testing.T) {
		d := newDecompressor(15, false)
		if _, err := d.decompress(nil, hello, 100); err != nil {
			t.Fatal(err)
		}
		if got, err := d.decompress(nil, []byte{0xf2, 0x00, 0x11, 0x00, 0x00}, 100); !errors.Is(err, errInvalidDeflate) {
			t.Fatalf("got %q, %v; want an error wrapping errInvalidDeflate", got, err)
		}
	})
}

// TestDecompressCompressFlate checks interop the other way: messages from
// a stock compress/flate writer with a sync flush, tail removed.
func TestDecompressCompressFlate(t *testing.T) {
	var stream bytes.Buffer
	w, _ := stdflate.NewWriter(&stream, stdflate.BestCompression)
	d := newDecompressor(15, true)
	for i, m := range testMessages(3)[:12] {
		stream.Reset()
		w.Write(m)
		w.Flush()
		b := stream.Bytes()
		if !bytes.HasSuffix(b, deflateTail[:]) {
			t.Fatalf("message %d: flush did not end with the tail", i)
		}
		got, err := d.decompress(nil, b[:len(b)-4], 1<<30)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("message %d: %v (equal %v)", i, err, bytes.Equal(got, m))
		}
	}
}

// TestDecompressLimit is the decompression bomb test: 1 MiB of zeros
// compresses to about a kilobyte; with a 64 KiB limit, inflating stops at
// the limit, without buffering the rest.
func TestDecompressLimit(t *testing.T) {
	zeros := make([]byte, 1<<20)
	bomb := newCompressor(9, 15, false).compress(nil, zeros)
	if len(bomb) > 4<<10 {
		t.Fatalf("1 MiB of zeros compressed to %d bytes", len(bomb))
	}
	const limit = 64 << 10
	d := newDecompressor(15, true)
	dst := []byte("prefix")
	got, err := d.decompress(dst, bomb, limit)
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("err = %v, want ErrMessageTooBig", err)
	}
	if string(got) != "prefix" {
		t.Fatalf("dst changed on error: %q", got[:min(len(got), 10)])
	}
	if cap(got) > len("prefix")+limit+1 {
		t.Fatalf("output buffer grew to %d bytes, beyond the limit", cap(got))
	}
	if d.hist != nil {
		t.Fatalf("a failed message entered the history")
	}

	// Exactly at the limit is fine, one byte over is not.
	msg := newCompressor(1, 15, false).compress(nil, zeros[:1000])
	if got, err := newDecompressor(15, false).decompress(nil, msg, 1000); err != nil || len(got) != 1000 {
		t.Fatalf("at the limit: %d bytes, %v", len(got), err)
	}
	if _, err := newDecompressor(15, false).decompress(nil, msg, 999); !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("over the limit: %v", err)
	}
	if got, err := newDecompressor(15, false).decompress(nil, msg, -1); err != nil || len(got) != 1000 {
		t.Fatalf("no limit: %d bytes, %v", len(got), err)
	}
}

// TestDecompressCorrupt feeds invalid and truncated streams.
func TestDecompressCorrupt(t *testing.T) {
	good := newCompressor(1, 15, false).compress(nil, chatMessage(rand.New(rand.NewSource(4)), 5000))
	tests := map[string][]byte{
		"reserved block type": {0xff, 0xff, 0xff},
		"stored length check": {0x00, 0x05, 0x00, 0x00, 0x00, 'H', 'e', 'l', 'l', 'o'},
		"distance too far":    {0xf2, 0x00, 0x11, 0x00, 0x00}, // references history that is not there
		"truncated":           good[:len(good)/2],
		// With the tail appended, an empty payload is a cut stored block
		// (RFC 7692 section 7.2.2); an empty message is sent as 0x00.
		"empty payload": {},
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			d := newDecompressor(15, true)
			got, err := d.decompress([]byte("keep"), src, 1<<20)
			if !errors.Is(err, errInvalidDeflate) {
				t.Fatalf("err = %v, want errInvalidDeflate", err)
			}
			if string(got) != "keep" {
				t.Fatalf("dst changed on error")
			}
			// The pooled reader must still work for the next message.
			if out, err := newDecompressor(15, false).decompress(nil, good, 1<<20); err != nil || len(out) == 0 {
				t.Fatalf("after a corrupt message: %v", err)
			}
		})
	}
}

// TestAppendWindow checks that the history is always the last bytes of
// everything appended, within its bound.
func TestAppendWindow(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, size := range []int{256, 512, 1024, 32 << 10} {
		var hist, all []byte
		for range 200 {
			p := make([]byte, r.Intn(3*size/2))
			r.Read(p)
			hist = appendWindow(hist, p, size)
			all = append(all, p...)
			want := all[max(0, len(all)-size):]
			if !bytes.Equal(hist, want) {
				t.Fatalf("size %d: history is not the tail of the stream", size)
			}
			if cap(hist) > size {
				t.Fatalf("size %d: capacity %d", size, cap(hist))
			}
		}
	}
}

// benchMessages returns, per size, different chat messages of that size,
// 64 KiB of them or more: with context takeover, messages repeating within
// the 32 KiB window would compress to a single match and make the figures
// meaningless.
func benchMessages() map[string][][]byte {
	r := rand.New(rand.NewSource(6))
	m := map[string][][]byte{}
	for range 64 {
		m["1KiB"] = append(m["1KiB"], chatMessage(r, 1<<10))
	}
	for range 4 {
		m["64KiB"] = append(m["64KiB"], chatMessage(r, 64<<10))
	}
	return m
}

// BenchmarkCompress measures compression per message in steady state
// (pooled engines, reused output buffer; with context takeover the window
// is full): it must not allocate. The ct=true rows against ct=false show
// the cost of reloading the window into a pooled engine for every message.
func BenchmarkCompress(b *testing.B) {
	msgs := benchMessages()
	for _, name := range []string{"1KiB", "64KiB"} {
		for _, cfg := range []struct {
			bits int
			ct   bool
		}{{15, false}, {15, true}, {13, true}, {10, false}, {10, true}} {
			b.Run(fmt.Sprintf("%s/bits=%d/ct=%v", name, cfg.bits, cfg.ct), func(b *testing.B) {
				ms := msgs[name]
				c := newCompressor(1, cfg.bits, cfg.ct)
				var out []byte
				for i := range 64 { // fill the history and the pool
					out = c.compress(out[:0], ms[i%len(ms)])
				}
				in, total := 0, 0
				b.SetBytes(int64(len(ms[0])))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					m := ms[i%len(ms)]
					out = c.compress(out[:0], m)
					in += len(m)
					total += len(out)
				}
				b.ReportMetric(float64(total)/float64(in), "ratio")
			})
		}
	}
}

// BenchmarkDecompress measures decompression per message in steady state:
// it must not allocate.
func BenchmarkDecompress(b *testing.B) {
	msgs := benchMessages()
	for _, name := range []string{"1KiB", "64KiB"} {
		for _, ct := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/ct=%v", name, ct), func(b *testing.B) {
				ms := msgs[name]
				// One stream of frames; with context takeover the
				// decompressor's history is emptied (keeping its
				// buffer) whenever the stream starts again.
				c := newCompressor(1, 15, ct)
				var frames [][]byte
				for _, m := range ms {
					frames = append(frames, c.compress(nil, m))
				}
				d := newDecompressor(15, ct)
				out := make([]byte, 0, 2*len(ms[0]))
				var err error
				run := func(i int) {
					if i%len(frames) == 0 {
						d.hist = d.hist[:0]
					}
					if out, err = d.decompress(out[:0], frames[i%len(frames)], 1<<30); err != nil {
						b.Fatal(err)
					}
				}
				for i := range len(frames) { // fill the history and the pool
					run(i)
				}
				b.SetBytes(int64(len(ms[0])))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					run(i)
				}
			})
		}
	}
}
