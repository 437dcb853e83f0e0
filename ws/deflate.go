package ws

// The permessage-deflate engines (RFC 7692 section 7.2).
//
// Why github.com/klauspost/compress/flate and not compress/flate: measured
// with a scratch benchmark on this project's 2-core machine (go1.26,
// klauspost v1.20.3, synthetic JSON chat batches, pooled engines reset per
// message; the machine is shared, so compare rows, not absolute figures):
//
//	compress, no context (time, output/input)  stdlib          klauspost
//	  1 KiB, level 1                           16.4 µs 0.380   10.2 µs 0.387
//	  1 KiB, level 5                           34.3 µs 0.370   15.3 µs 0.371
//	  64 KiB, level 1                           344 µs 0.204    144 µs 0.200
//	  64 KiB, level 5                          1007 µs 0.171    357 µs 0.175
//	compress 1 KiB on top of a dictionary (context takeover)
//	  4 KiB dictionary                  412 µs, 1.2 MB in 20 allocs   14.1 µs, 0 allocs
//	  32 KiB dictionary                 426 µs, 1.2 MB in 20 allocs   54.8 µs, 0 allocs
//	  (stdlib cannot reset a writer to a new dictionary: NewWriterDict
//	  per message)
//	compress within a window < 32 KiB (negotiated window bits < 15)
//	  stdlib: only Huffman-only is safe, ratio 0.66 (1 KiB) / 0.62 (64 KiB)
//	  klauspost NewWriterWindow(1 KiB): 11.9 µs 0.371 / 438 µs 0.206
//	decompress                                 stdlib          klauspost
//	  1 KiB                                    7.1 µs          6.3 µs
//	  64 KiB                                   231 µs 7 allocs 215 µs 0 allocs
//	engine size                                writer ~1.2 MB  writer 0.8-1.1 MB
//	                                           reader ~41 KB   reader ~38 KB
//
// klauspost is 1.6-2.8x faster at compressing and a little faster at
// inflating, and it is the only one of the two that can reload a context
// takeover window into a pooled engine (ResetDict) and compress with LZ77
// matches bounded by a window smaller than 32 KiB (NewWriterWindow, which
// makes every window of 8-14 bits cost no ratio against Huffman-only).
//
// Context takeover, streams of ~400 byte chat messages (level 1):
// output/input is 0.57 without history, 0.28 with a 1 KiB window, 0.25
// with 4 KiB, 0.245 with 8 KiB, 0.234 with 32 KiB, for 1x, 1.3x, 2.2x, 3.1x
// and 6.7x the CPU of the no-history case: reloading the window costs about
// as much as compressing it. Levels 7-9 take 2.5-3x the time of level 1 on
// 1 KiB messages for about 1% of ratio.
//
// BenchmarkCompress and BenchmarkDecompress (this package) show 0 allocs/op
// in steady state for every window and context setting; B/op is 0 apart
// from the occasional engine re-created after a GC emptied a pool.
//
// Memory: engines are pooled and borrowed for one message only (the pools
// hold about one engine per goroutine compressing at the same moment). A
// connection keeps at most the history its mode requires (see
// CompressionMode), grown on demand up to the window.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// deflateTail is the empty stored block a sync flush ends with; RFC 7692
// section 7.2.1 removes it from every compressed message.
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is what the decompressor appends to a message: the removed
// sync tail, then a final empty stored block so that the flate reader ends
// with io.EOF instead of io.ErrUnexpectedEOF. A message that ends in a final
// block of its own (allowed by section 7.2.3.4) stops the reader before it.
var inflateTail = [9]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// errInvalidDeflate is wrapped by the decompressor's errors for data that
// is not a valid DEFLATE stream (RFC 7692 says to fail the connection; the
// Conn uses close code 1007, invalid payload data).
var errInvalidDeflate = errors.New("ws: invalid permessage-deflate data")

// minInflateHistory is the least history a decompressor keeps with context
// takeover: zlib's deflate does not support 8 window bits and silently uses
// 9 (zlib manual, deflateInit2), so a zlib-based peer that agreed to 8 may
// reference 512 bytes back.
const minInflateHistory = 512

// writerPools hold flate writers: [0,9) for levels 1-9 with the full 32 KiB
// window, [9,16) for bounded windows of 8-14 bits.
var writerPools [9 + maxWindowBits - minWindowBits]sync.Pool

// readerPool holds flate readers (io.ReadCloser that are flate.Resetter);
// one reader serves every window size.
var readerPool sync.Pool

// compressor compresses the messages of one direction of one connection.
// It holds no flate engine between messages, only the history needed for
// context takeover.
type compressor struct {
	level           int
	bits            int
	contextTakeover bool
	// hist is the tail of what was sent, up to 2^bits bytes; nil until the
	// first compressed message, and always nil without context takeover.
	hist []byte
	out  appendWriter
}

// newCompressor returns a compressor whose output never references more
// than 2^windowBits bytes back (windowBits is clamped to 8-15), at the flate
// level (1-9, other values mean 1) when windowBits is 15. With
// contextTakeover, each message may reference the ones before it.
func newCompressor(level, windowBits int, contextTakeover bool) *compressor {
	if level < 1 || level > 9 {
		level = defaultLevel
	}
	return &compressor{level: level, bits: clampBits(windowBits), contextTakeover: contextTakeover}
}

// clampBits bounds window bits to what RFC 7692 allows.
func clampBits(b int) int {
	return min(max(b, minWindowBits), maxWindowBits)
}

// compress appends p, deflated as one permessage-deflate message (without
// the 00 00 ff ff tail), to dst.
func (c *compressor) compress(dst, p []byte) []byte {
	pool := c.pool()
	w, _ := pool.Get().(*flate.Writer)
	if w == nil {
		w = c.newWriter()
	}
	c.out.b = dst
	w.ResetDict(&c.out, c.hist)
	// The writer fails only when its destination does; appending cannot.
	_, _ = w.Write(p)
	_ = w.Flush()
	// Drop the references to this connection before pooling the writer.
	w.ResetDict(nil, nil)
	pool.Put(w)
	out := c.out.b
	c.out.b = nil
	if n := len(out); n-len(dst) >= len(deflateTail) && [4]byte(out[n-4:]) == deflateTail {
		out = out[:n-4]
	}
	if c.contextTakeover {
		c.hist = appendWindow(c.hist, p, 1<<c.bits)
	}
	return out
}

// addHistory records p as sent compressed by other means (a message
// compressed once for many connections, with no reference to earlier
// messages): the peer's window now ends with p, so ours must too. Without
// context takeover it does nothing.
func (c *compressor) addHistory(p []byte) {
	if c.contextTakeover {
		c.hist = appendWindow(c.hist, p, 1<<c.bits)
	}
}

// release drops the history; the compressor must not be used afterwards.
func (c *compressor) release() {
	c.hist = nil
}

func (c *compressor) pool() *sync.Pool {
	if c.bits == maxWindowBits {
		return &writerPools[c.level-1]
	}
	return &writerPools[9+c.bits-minWindowBits]
}

func (c *compressor) newWriter() *flate.Writer {
	var w *flate.Writer
	var err error
	if c.bits == maxWindowBits {
		w, err = flate.NewWriter(nil, c.level)
	} else {
		// A window-bounded encoder: its matches never reach further back
		// than the window, which the negotiation promised.
		w, err = flate.NewWriterWindow(nil, 1<<c.bits)
	}
	if err != nil {
		// Level and bits were validated in newCompressor.
		panic(fmt.Sprintf("ws: flate writer for level %d, window bits %d: %v", c.level, c.bits, err))
	}
	return w
}

// appendWriter appends to a byte slice; it lets a pooled flate writer
// write into the caller's buffer without allocating.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// appendWindow appends p to the history hist, keeping its last size bytes.
// The buffer grows with the history (so a connection that sent little holds
// little) and never beyond size.
func appendWindow(hist, p []byte, size int) []byte {
	if len(p) >= size {
		if cap(hist) < size {
			hist = make([]byte, 0, size)
		}
		return append(hist[:0], p[len(p)-size:]...)
	}
	need := min(len(hist)+len(p), size)
	if cap(hist) < need {
		grown := make([]byte, len(hist), min(size, max(need, 2*cap(hist), 512)))
		copy(grown, hist)
		hist = grown
	}
	if over := len(hist) + len(p) - size; over > 0 {
		hist = hist[:copy(hist, hist[over:])]
	}
	return append(hist, p...)
}

// decompressor inflates the messages of one direction of one connection.
// It holds no flate engine between messages, only the history needed for
// context takeover.
type decompressor struct {
	histSize        int
	contextTakeover bool
	// hist is the tail of what was received, up to histSize bytes.
	hist []byte
	in   inflateSource
}

// newDecompressor returns a decompressor for a peer that compresses within
// 2^windowBits bytes; with contextTakeover the peer's messages may
// reference the ones before them.
func newDecompressor(windowBits int, contextTakeover bool) *decompressor {
	return &decompressor{
		histSize:        max(1<<clampBits(windowBits), minInflateHistory),
		contextTakeover: contextTakeover,
	}
}

// emptySource parks pooled readers so they reference no connection.
var emptySource inflateSource

// decompress inflates one message, src being its payloads concatenated
// (without the 00 00 ff ff tail), and appends the result to dst. It stops
// as soon as the output would exceed limit bytes (limit < 0: no limit) and
// then returns an error wrapping ErrMessageTooBig; it never grows dst beyond
// limit+1 bytes past its original length. Data that is not valid deflate
// yields an error wrapping errInvalidDeflate. On error the returned slice is dst
// unchanged, and the connection must be failed (the history is no longer in
// step with the peer's).
func (d *decompressor) decompress(dst, src []byte, limit int64) ([]byte, error) {
	start := len(dst)
	// end is the capacity needed to notice one byte beyond the limit.
	end := maxInt
	if limit >= 0 && limit < int64(maxInt-start-1) {
		end = start + int(limit) + 1
	}

	d.in = inflateSource{src: src, tail: inflateTail[:]}
	fr, _ := readerPool.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReaderDict(&d.in, d.hist)
	} else if err := fr.(flate.Resetter).Reset(&d.in, d.hist); err != nil {
		panic("ws: flate reader reset: " + err.Error()) // cannot fail
	}

	var err error
	for {
		if len(dst) == cap(dst) {
			// Guess 4x the input the first time (typical for text),
			// then double what was produced, within the limit.
			grow := min(max(4*len(src), len(dst)-start, 512), end-len(dst))
			grown := make([]byte, len(dst), len(dst)+grow)
			copy(grown, dst)
			dst = grown
		}
		n, rerr := fr.Read(dst[len(dst):min(cap(dst), end)])
		dst = dst[:len(dst)+n]
		if len(dst) >= end {
			err = fmt.Errorf("ws: decompressed message exceeds the read limit of %d bytes: %w", limit, ErrMessageTooBig)
			break
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("%w: %w", errInvalidDeflate, rerr)
			break
		}
	}

	_ = fr.(flate.Resetter).Reset(&emptySource, nil)
	readerPool.Put(fr)
	d.in = inflateSource{}
	if err != nil {
		return dst[:start], err
	}
	if d.contextTakeover {
		d.hist = appendWindow(d.hist, dst[start:], d.histSize)
	}
	return dst, nil
}

// trialScratch is the buffer trial output streams through.
const trialScratch = 16 << 10

var bytesReaderPool = sync.Pool{New: func() any { return new(bytes.Reader) }}

// tryPrefix inflates in, the first part of a message, without keeping the
// output (it streams through a pooled scratch buffer) and without touching
// the history, to find out early whether the message is bad: it returns an
// error wrapping ErrMessageTooBig when the output already exceeds limit,
// ErrInvalidUTF8 when text output is already not UTF-8 (a code point cut at
// the end is fine), or errInvalidDeflate when the data is corrupt. Running
// out of input is not an error: the rest has not arrived yet.
func (d *decompressor) tryPrefix(in []byte, limit int64, text bool) error {
	src := bytesReaderPool.Get().(*bytes.Reader)
	src.Reset(in)
	fr, _ := readerPool.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReaderDict(src, d.hist)
	} else if err := fr.(flate.Resetter).Reset(src, d.hist); err != nil {
		panic("ws: flate reader reset: " + err.Error()) // cannot fail
	}
	scratch := getBuf(trialScratch)
	var u utf8State
	var total int64
	var err error
	for {
		n, rerr := fr.Read(*scratch)
		total += int64(n)
		if total > limit {
			err = fmt.Errorf("%w: compressed message inflates beyond the %d-byte limit", ErrMessageTooBig, limit)
			break
		}
		if text && !u.write((*scratch)[:n]) {
			err = fmt.Errorf("%w in compressed text message", ErrInvalidUTF8)
			break
		}
		if rerr == nil {
			continue
		}
		var corrupt flate.CorruptInputError
		if errors.As(rerr, &corrupt) {
			err = fmt.Errorf("%w: %w", errInvalidDeflate, rerr)
		}
		break // io.ErrUnexpectedEOF: the rest has not arrived yet
	}
	putBuf(scratch)
	_ = fr.(flate.Resetter).Reset(&emptySource, nil)
	readerPool.Put(fr)
	src.Reset(nil)
	bytesReaderPool.Put(src)
	return err
}

// release drops the history; the decompressor must not be used afterwards.
func (d *decompressor) release() {
	d.hist = nil
}

const maxInt = int(^uint(0) >> 1)

// inflateSource reads a message and then the tail. It is an io.ByteReader
// so that the flate reader uses it directly instead of allocating a
// bufio.Reader per message.
type inflateSource struct {
	src, tail []byte
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(s.src) > 0 {
		n := copy(p, s.src)
		s.src = s.src[n:]
		return n, nil
	}
	if len(s.tail) > 0 {
		n := copy(p, s.tail)
		s.tail = s.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.src) > 0 {
		b := s.src[0]
		s.src = s.src[1:]
		return b, nil
	}
	if len(s.tail) > 0 {
		b := s.tail[0]
		s.tail = s.tail[1:]
		return b, nil
	}
	return 0, io.EOF
}
