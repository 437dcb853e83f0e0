package ws

import (
	"errors"
	"fmt"
	"io"
)

// checkInflate is a small RFC 1951 inflater written for the tests (after
// zlib's puff.c): it decodes one permessage-deflate message (src without
// the 00 00 ff ff tail) on top of hist, the bytes already in the peer's
// window, and fails on any back-reference farther than window bytes. The
// production flate readers cannot check this: they accept any distance
// within 32 KiB of output.
func checkInflate(hist, src []byte, window int) (out []byte, maxDist int, err error) {
	in := append(append([]byte(nil), src...), deflateTail[:]...)
	f := &checkInflater{in: in, out: append([]byte(nil), hist...), window: window}
	start := len(f.out)
	for {
		if f.pos == len(f.in) && f.nbits == 0 {
			break // ended on a block boundary, as a sync flush does
		}
		final, err := f.bits(1)
		if err != nil {
			return nil, 0, err
		}
		typ, err := f.bits(2)
		if err != nil {
			return nil, 0, err
		}
		switch typ {
		case 0:
			err = f.stored()
		case 1:
			err = f.codes(fixedLit, fixedDist)
		case 2:
			err = f.dynamic()
		default:
			err = errors.New("invalid block type 3")
		}
		if err != nil {
			return nil, 0, err
		}
		if final == 1 {
			break
		}
	}
	return f.out[start:], f.maxDist, nil
}

type checkInflater struct {
	in      []byte
	pos     int
	bitbuf  uint32
	nbits   uint
	out     []byte
	window  int
	maxDist int
}

func (f *checkInflater) bits(n uint) (int, error) {
	for f.nbits < n {
		if f.pos >= len(f.in) {
			return 0, io.ErrUnexpectedEOF
		}
		f.bitbuf |= uint32(f.in[f.pos]) << f.nbits
		f.pos++
		f.nbits += 8
	}
	v := f.bitbuf & (1<<n - 1)
	f.bitbuf >>= n
	f.nbits -= n
	return int(v), nil
}

func (f *checkInflater) stored() error {
	f.bitbuf, f.nbits = 0, 0
	if f.pos+4 > len(f.in) {
		return io.ErrUnexpectedEOF
	}
	n := int(f.in[f.pos]) | int(f.in[f.pos+1])<<8
	nc := int(f.in[f.pos+2]) | int(f.in[f.pos+3])<<8
	f.pos += 4
	if n != ^nc&0xffff {
		return errors.New("stored block length mismatch")
	}
	if f.pos+n > len(f.in) {
		return io.ErrUnexpectedEOF
	}
	f.out = append(f.out, f.in[f.pos:f.pos+n]...)
	f.pos += n
	return nil
}

// checkHuffman is a canonical Huffman code: counts per length, symbols in
// code order.
type checkHuffman struct {
	counts  [16]int
	symbols []int
}

func newCheckHuffman(lengths []int) (*checkHuffman, error) {
	h := &checkHuffman{symbols: make([]int, len(lengths))}
	for _, l := range lengths {
		h.counts[l]++
	}
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - h.counts[l]
		if left < 0 {
			return nil, errors.New("over-subscribed code")
		}
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.counts[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbols[offs[l]] = sym
			offs[l]++
		}
	}
	return h, nil
}

func (f *checkInflater) decode(h *checkHuffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := f.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.counts[l]
		if code-count < first {
			return h.symbols[index+code-first], nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

var (
	lenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	fixedLit, fixedDist = func() (*checkHuffman, *checkHuffman) {
		var l [288]int
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
		var d [30]int
		for i := range d {
			d[i] = 5
		}
		lit, _ := newCheckHuffman(l[:])
		dist, _ := newCheckHuffman(d[:])
		return lit, dist
	}()
)

func (f *checkInflater) codes(lit, dist *checkHuffman) error {
	for {
		sym, err := f.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			f.out = append(f.out, byte(sym))
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("invalid length symbol %d", sym)
		}
		sym -= 257
		extra, err := f.bits(lenExtra[sym])
		if err != nil {
			return err
		}
		length := lenBase[sym] + extra
		dsym, err := f.decode(dist)
		if err != nil {
			return err
		}
		if dsym > 29 {
			return fmt.Errorf("invalid distance symbol %d", dsym)
		}
		extra, err = f.bits(dstExtra[dsym])
		if err != nil {
			return err
		}
		d := dstBase[dsym] + extra
		if d > f.window {
			return fmt.Errorf("back-reference %d bytes back, beyond the %d byte window", d, f.window)
		}
		if d > len(f.out) {
			return fmt.Errorf("back-reference %d bytes back, before the start of the stream", d)
		}
		f.maxDist = max(f.maxDist, d)
		for range length {
			f.out = append(f.out, f.out[len(f.out)-d])
		}
	}
}

func (f *checkInflater) dynamic() error {
	nlen, err := f.bits(5)
	if err != nil {
		return err
	}
	ndist, err := f.bits(5)
	if err != nil {
		return err
	}
	ncode, err := f.bits(4)
	if err != nil {
		return err
	}
	nlen, ndist, ncode = nlen+257, ndist+1, ncode+4
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var cl [19]int
	for i := range ncode {
		if cl[order[i]], err = f.bits(3); err != nil {
			return err
		}
	}
	clh, err := newCheckHuffman(cl[:])
	if err != nil {
		return err
	}
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist {
		sym, err := f.decode(clh)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths = append(lengths, sym)
			continue
		}
		val, rep := 0, 0
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return errors.New("repeat with no previous length")
			}
			val = lengths[len(lengths)-1]
			rep, err = f.bits(2)
			rep += 3
		case 17:
			rep, err = f.bits(3)
			rep += 3
		default:
			rep, err = f.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if len(lengths)+rep > nlen+ndist {
			return errors.New("too many code lengths")
		}
		for range rep {
			lengths = append(lengths, val)
		}
	}
	lit, err := newCheckHuffman(lengths[:nlen])
	if err != nil {
		return err
	}
	dist, err := newCheckHuffman(lengths[nlen:])
	if err != nil {
		return err
	}
	return f.codes(lit, dist)
}
