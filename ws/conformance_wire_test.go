package ws_test

// Raw RFC 6455 framing for the conformance suite, written from the RFC and
// independent of package ws: the raw peers build and parse frames with these
// helpers so that every byte on the wire is under the test's control.

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// Header bits of the first byte.
const (
	bitFIN  byte = 0x80
	bitRSV1 byte = 0x40
	bitRSV2 byte = 0x20
	bitRSV3 byte = 0x10
)

// wsGUID is the magic string of RFC 6455 section 1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptFor computes Sec-WebSocket-Accept for key.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// frame is one WebSocket frame as seen on the wire.
type frame struct {
	fin     bool
	rsv     byte // RSV bits in header position (bitRSV1|bitRSV2|bitRSV3)
	op      byte
	masked  bool    // only meaningful for frames read
	key     [4]byte // the masking key of a masked frame read
	payload []byte
}

func (f frame) String() string {
	return fmt.Sprintf("frame{fin:%v rsv:%#x op:%#x masked:%v len:%d}", f.fin, f.rsv, f.op, f.masked, len(f.payload))
}

// appendFrame appends the encoding of f to b, masking the payload with a
// random key when mask is set. The length uses the minimal encoding.
func appendFrame(b []byte, f frame, mask bool) []byte {
	b0 := f.rsv | f.op&0x0F
	if f.fin {
		b0 |= bitFIN
	}
	var mbit byte
	if mask {
		mbit = 0x80
	}
	n := len(f.payload)
	switch {
	case n <= 125:
		b = append(b, b0, mbit|byte(n))
	case n <= 0xFFFF:
		b = append(b, b0, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, b0, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !mask {
		return append(b, f.payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, f.payload...)
	for i := range f.payload {
		b[start+i] ^= key[i&3]
	}
	return b
}

// maxTestFrame bounds what the raw peers accept from package ws, so a
// corrupt length cannot make the test allocate without bound.
const maxTestFrame = 64 << 20

// readFrame parses one frame from r, unmasking its payload if masked.
func readFrame(r *bufio.Reader) (frame, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	f := frame{
		fin:    hdr[0]&bitFIN != 0,
		rsv:    hdr[0] & (bitRSV1 | bitRSV2 | bitRSV3),
		op:     hdr[0] & 0x0F,
		masked: hdr[1]&0x80 != 0,
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
		if n < 126 {
			return f, fmt.Errorf("non-minimal 16-bit length %d", n)
		}
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
		if n <= 0xFFFF {
			return f, fmt.Errorf("non-minimal 64-bit length %d", n)
		}
	}
	if n > maxTestFrame {
		return f, fmt.Errorf("frame length %d over the test limit", n)
	}
	if f.masked {
		if _, err := io.ReadFull(r, f.key[:]); err != nil {
			return f, err
		}
	}
	key := f.key
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// closePayload builds a close frame body: code (if >= 0) then reason.
func closePayload(code int, reason string) []byte {
	if code < 0 {
		return nil
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	return append(b, reason...)
}

// parseClose splits a close frame body; code is -1 for an empty body.
func parseClose(p []byte) (code int, reason string, err error) {
	switch len(p) {
	case 0:
		return -1, "", nil
	case 1:
		return 0, "", fmt.Errorf("1-byte close payload %x", p)
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:]), nil
}
