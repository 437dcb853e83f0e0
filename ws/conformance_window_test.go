package ws_test

// A DEFLATE (RFC 1951) block parser that reports the longest back-reference
// distance in a stream, so the suite can check that a compressor keeps to
// the negotiated LZ77 window (RFC 7692 section 7.1.2: server_max_window_bits
// and client_max_window_bits). compress/flate always accepts a 32 KiB
// window, so decoding alone cannot catch a compressor that uses a larger
// window than agreed. The decoder follows the canonical-Huffman approach of
// zlib's puff.c; it only parses symbols and does not produce output.

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

var errDeflateInput = errors.New("deflate: invalid or truncated stream")

type bitReader struct {
	b      []byte
	pos    int
	bitbuf uint32
	bitcnt uint
}

func (r *bitReader) bits(n uint) (int, error) {
	for r.bitcnt < n {
		if r.pos >= len(r.b) {
			return 0, errDeflateInput
		}
		r.bitbuf |= uint32(r.b[r.pos]) << r.bitcnt
		r.pos++
		r.bitcnt += 8
	}
	v := int(r.bitbuf & (1<<n - 1))
	r.bitbuf >>= n
	r.bitcnt -= n
	return v, nil
}

// huffman is a canonical code: count of codes per length and symbols in
// code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) (*huffman, error) {
	h := &huffman{symbol: make([]int, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	if h.count[0] == len(lengths) {
		return h, nil // no codes: only valid if never used
	}
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - h.count[l]
		if left < 0 {
			return nil, fmt.Errorf("%w: over-subscribed code", errDeflateInput)
		}
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h, nil
}

func (r *bitReader) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)], nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, fmt.Errorf("%w: no such code", errDeflateInput)
}

var (
	lenBase  = []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = []uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = []uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var fixedLit, fixedDist = func() (*huffman, *huffman) {
	l := make([]int, 288)
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	d := make([]int, 30)
	for i := range d {
		d[i] = 5
	}
	lit, _ := newHuffman(l)
	dist, _ := newHuffman(d)
	return lit, dist
}()

// deflateMaxDistance parses a raw DEFLATE stream until a final block or
// until the input ends at a block boundary (a message with its 00 00 ff ff
// tail restored ends so), and returns the longest match distance.
func deflateMaxDistance(stream []byte) (int, error) {
	r := &bitReader{b: stream}
	maxDist := 0
	for {
		if r.pos >= len(r.b) && r.bitcnt < 8 {
			return maxDist, nil // ended after a block, at a byte boundary
		}
		final, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		typ, err := r.bits(2)
		if err != nil {
			return 0, err
		}
		switch typ {
		case 0:
			r.bitbuf, r.bitcnt = 0, 0
			if r.pos+4 > len(r.b) {
				return 0, errDeflateInput
			}
			n := int(r.b[r.pos]) | int(r.b[r.pos+1])<<8
			if nc := int(r.b[r.pos+2]) | int(r.b[r.pos+3])<<8; n != ^nc&0xFFFF {
				return 0, fmt.Errorf("%w: stored length", errDeflateInput)
			}
			r.pos += 4
			if r.pos+n > len(r.b) {
				return 0, errDeflateInput
			}
			r.pos += n
		case 1:
			if err := r.codes(fixedLit, fixedDist, &maxDist); err != nil {
				return 0, err
			}
		case 2:
			lit, dist, err := r.dynamic()
			if err != nil {
				return 0, err
			}
			if err := r.codes(lit, dist, &maxDist); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("%w: block type 3", errDeflateInput)
		}
		if final == 1 {
			return maxDist, nil
		}
	}
}

func (r *bitReader) dynamic() (*huffman, *huffman, error) {
	var hdr [3]int
	for i, n := range []uint{5, 5, 4} {
		v, err := r.bits(n)
		if err != nil {
			return nil, nil, err
		}
		hdr[i] = v
	}
	nlen, ndist, ncode := hdr[0]+257, hdr[1]+1, hdr[2]+4
	if nlen > 286 || ndist > 30 {
		return nil, nil, fmt.Errorf("%w: bad counts", errDeflateInput)
	}
	cl := make([]int, 19)
	for i := range ncode {
		v, err := r.bits(3)
		if err != nil {
			return nil, nil, err
		}
		cl[clOrder[i]] = v
	}
	clh, err := newHuffman(cl)
	if err != nil {
		return nil, nil, err
	}
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist {
		sym, err := r.decode(clh)
		if err != nil {
			return nil, nil, err
		}
		if sym < 16 {
			lengths = append(lengths, sym)
			continue
		}
		val, rep := 0, 0
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return nil, nil, fmt.Errorf("%w: repeat with no length", errDeflateInput)
			}
			val = lengths[len(lengths)-1]
			x, err := r.bits(2)
			if err != nil {
				return nil, nil, err
			}
			rep = 3 + x
		case 17:
			x, err := r.bits(3)
			if err != nil {
				return nil, nil, err
			}
			rep = 3 + x
		default:
			x, err := r.bits(7)
			if err != nil {
				return nil, nil, err
			}
			rep = 11 + x
		}
		if len(lengths)+rep > nlen+ndist {
			return nil, nil, fmt.Errorf("%w: too many lengths", errDeflateInput)
		}
		for range rep {
			lengths = append(lengths, val)
		}
	}
	lit, err := newHuffman(lengths[:nlen])
	if err != nil {
		return nil, nil, err
	}
	dist, err := newHuffman(lengths[nlen:])
	if err != nil {
		return nil, nil, err
	}
	return lit, dist, nil
}

func (r *bitReader) codes(lit, dist *huffman, maxDist *int) error {
	for {
		sym, err := r.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			continue
		case sym == 256:
			return nil
		}
		sym -= 257
		if sym >= 29 {
			return fmt.Errorf("%w: length symbol", errDeflateInput)
		}
		if _, err := r.bits(lenExtra[sym]); err != nil {
			return err
		}
		ds, err := r.decode(dist)
		if err != nil {
			return err
		}
		if ds >= 30 {
			return fmt.Errorf("%w: distance symbol", errDeflateInput)
		}
		x, err := r.bits(distExtr[ds])
		if err != nil {
			return err
		}
		*maxDist = max(*maxDist, distBase[ds]+x)
	}
}

// TestConformanceWindowParser checks the distance parser itself against
// compress/flate: it parses every level's output, and finds the distance a
// repeated block forces.
func TestConformanceWindowParser(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression, flate.HuffmanOnly} {
		for _, gap := range []int{100, 1000, 20000} {
			block := make([]byte, gap)
			for i := range block {
				block[i] = byte(rnd.IntN(256))
			}
			data := append(bytes.Clone(block), block...)
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, level)
			fw.Write(data)
			fw.Flush()
			d, err := deflateMaxDistance(buf.Bytes())
			if err != nil {
				t.Fatalf("level %d gap %d: %v", level, gap, err)
			}
			matches := level != flate.NoCompression && level != flate.HuffmanOnly
			if matches && d != gap {
				t.Errorf("level %d: max distance %d, want %d", level, d, gap)
			}
			if !matches && d != 0 {
				t.Errorf("level %d: max distance %d, want none", level, d)
			}
		}
	}
	if _, err := deflateMaxDistance([]byte{0x07, 0x00}); err == nil {
		t.Errorf("block type 3 parsed without error")
	}
}
