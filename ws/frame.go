package ws

import "encoding/binary"

// opcode is a frame opcode (RFC 6455 section 5.2).
type opcode uint8

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

func (op opcode) isControl() bool { return op&0x8 != 0 }

// Frame header bits of the first two bytes.
const (
	bitFIN  = 0x80
	bitRSV1 = 0x40
	bitRSV2 = 0x20
	bitRSV3 = 0x10
	bitMask = 0x80

	// maxHeaderSize is 2 bytes + 8 bytes of extended length + 4 bytes of key.
	maxHeaderSize = 14
	// maxControlPayload is the limit of section 5.5.
	maxControlPayload = 125
)

// putHeader encodes a frame header into dst (at least maxHeaderSize bytes)
// and returns its length. mask selects whether key is written; key is in the
// little-endian convention of maskBytes. Lengths use the minimal encoding, as
// section 5.2 requires.
func putHeader(dst []byte, fin, rsv1 bool, op opcode, length int, mask bool, key uint32) int {
	b0 := byte(op)
	if fin {
		b0 |= bitFIN
	}
	if rsv1 {
		b0 |= bitRSV1
	}
	dst[0] = b0
	var b1 byte
	if mask {
		b1 = bitMask
	}
	n := 2
	switch {
	case length <= 125:
		dst[1] = b1 | byte(length)
	case length <= 0xFFFF:
		dst[1] = b1 | 126
		binary.BigEndian.PutUint16(dst[2:], uint16(length))
		n = 4
	default:
		dst[1] = b1 | 127
		binary.BigEndian.PutUint64(dst[2:], uint64(length))
		n = 10
	}
	if mask {
		binary.LittleEndian.PutUint32(dst[n:], key)
		n += 4
	}
	return n
}

// headerSize is the encoded size of a header for a payload of length bytes.
func headerSize(length int, mask bool) int {
	n := 2
	switch {
	case length > 0xFFFF:
		n = 10
	case length > 125:
		n = 4
	}
	if mask {
		n += 4
	}
	return n
}

// validCloseCode reports whether code may appear in a close frame on the
// wire (RFC 6455 section 7.4): the defined codes 1000-1003 and 1007-1011, and
// the registered/private range 3000-4999. 1004-1006 and 1015 are reserved or
// local-only, and everything else is unassigned. Both the receive path
// (failing with 1002) and Close (refusing to send) use it.
func validCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
