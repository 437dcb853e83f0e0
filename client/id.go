package client

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// idClock makes client message ids time-ordered: a server keeps every
// client message id in an index to answer retries (duplex's is keyed by
// the id first), and ids that grow with time land at its end, in a leaf
// it wrote recently, where random ids land anywhere in it.
var idClock struct {
	sync.Mutex
	ms  int64  // unix milliseconds of the last id
	seq uint16 // 12-bit counter within ms, randomly seeded each millisecond
}

// newTimeOrderedID returns a UUID version 7 (RFC 9562): 48 bits of Unix
// milliseconds, then a 12-bit counter that keeps the ids of one process
// increasing within a millisecond (RFC 9562 section 6.2, method 1), then
// 62 random bits. The random part keeps ids of different clients apart.
func newTimeOrderedID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	now := time.Now().UnixMilli()
	idClock.Lock()
	switch {
	case now > idClock.ms:
		idClock.ms = now
		idClock.seq = binary.BigEndian.Uint16(b[6:8]) & 0x07ff // room to count up
	case idClock.seq < 0x0fff:
		idClock.seq++
	default:
		// 4,096 ids in one millisecond: borrow the next one, so the order
		// still holds (the clock catches up at once).
		idClock.ms++
		idClock.seq = 0
	}
	ms, seq := idClock.ms, idClock.seq
	idClock.Unlock()
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | byte(seq>>8) // version 7
	b[7] = byte(seq)
	b[8] = 0x80 | b[8]&0x3f // variant 10
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
