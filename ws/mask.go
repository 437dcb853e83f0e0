package ws

import (
	"encoding/binary"
	"math/bits"
)

// maskBytes XORs b in place with the 4-byte masking key (RFC 6455 section
// 5.3), where pos is the offset of b[0] within the frame payload, and returns
// the offset after b, so a payload can be unmasked in pieces as it arrives.
//
// key holds the key bytes in wire order read as a little-endian uint32. The
// body works 8 bytes at a time with the key rotated to pos and doubled into a
// uint64; encoding/binary's unaligned loads compile to single moves on amd64
// and arm64, so no alignment head is needed, only a byte-wise tail.
func maskBytes(key uint32, pos int, b []byte) int {
	if len(b) == 0 {
		return pos
	}
	// Rotate so that the low byte is the key byte for b[0].
	k := bits.RotateLeft32(key, -8*(pos&3))
	k64 := uint64(k) | uint64(k)<<32
	i := 0
	for ; len(b)-i >= 32; i += 32 {
		s := b[i : i+32 : i+32]
		binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k64)
	}
	for ; len(b)-i >= 8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k)
		k = bits.RotateLeft32(k, -8)
	}
	return pos + len(b)
}

// maskCopy writes src XOR key into dst (len(dst) >= len(src)), src starting
// at payload offset pos; the client write path uses it to mask while copying
// the caller's bytes into the frame buffer, touching them once.
func maskCopy(dst, src []byte, key uint32, pos int) {
	k := bits.RotateLeft32(key, -8*(pos&3))
	k64 := uint64(k) | uint64(k)<<32
	dst = dst[:len(src)]
	i := 0
	for ; len(src)-i >= 32; i += 32 {
		s, d := src[i:i+32:i+32], dst[i:i+32:i+32]
		binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^k64)
	}
	for ; len(src)-i >= 8; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k64)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ byte(k)
		k = bits.RotateLeft32(k, -8)
	}
}
