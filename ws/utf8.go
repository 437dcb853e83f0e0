package ws

import "encoding/binary"

// utf8State validates UTF-8 incrementally: text arrives in frames and reads
// of any size, split anywhere, even inside a code point, and the connection
// must fail at the first byte that cannot start or continue a valid sequence
// (not at the end of the message).
//
// The state is the number of continuation bytes still expected and the
// allowed range of the next one; the first continuation byte's range is
// narrowed per lead byte, which rejects overlong forms (E0 80..9F, F0 80..8F),
// surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..BF) exactly
// as the table in RFC 3629 section 4 does. Lead bytes C0, C1 and F5..FF and
// stray continuation bytes are rejected outright.
type utf8State struct {
	need   uint8 // continuation bytes still expected
	lo, hi uint8 // allowed range of the next continuation byte
}

// write validates p as the continuation of the text seen so far. It reports
// false at the first invalid byte; the state is then meaningless.
func (s *utf8State) write(p []byte) bool {
	need, lo, hi := s.need, s.lo, s.hi
	i, n := 0, len(p)
	for i < n {
		if need == 0 {
			// ASCII fast path: 8 bytes per step while no high bit is set.
			for n-i >= 8 && binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 == 0 {
				i += 8
			}
			for i < n && p[i] < 0x80 {
				i++
			}
			if i == n {
				break
			}
			c := p[i]
			i++
			switch {
			case c < 0xC2: // continuation byte without lead, or overlong C0/C1
				return false
			case c < 0xE0:
				need, lo, hi = 1, 0x80, 0xBF
			case c == 0xE0:
				need, lo, hi = 2, 0xA0, 0xBF
			case c == 0xED:
				need, lo, hi = 2, 0x80, 0x9F
			case c < 0xF0:
				need, lo, hi = 2, 0x80, 0xBF
			case c == 0xF0:
				need, lo, hi = 3, 0x90, 0xBF
			case c < 0xF4:
				need, lo, hi = 3, 0x80, 0xBF
			case c == 0xF4:
				need, lo, hi = 3, 0x80, 0x8F
			default: // F5..FF
				return false
			}
			if n-i >= int(need) {
				// The whole sequence is here: check it in one go.
				if c := p[i]; c < lo || c > hi {
					return false
				}
				for k := 1; k < int(need); k++ {
					if p[i+k]&0xC0 != 0x80 {
						return false
					}
				}
				i += int(need)
				need = 0
			}
			continue
		}
		c := p[i]
		if c < lo || c > hi {
			return false
		}
		i++
		need--
		lo, hi = 0x80, 0xBF
	}
	s.need, s.lo, s.hi = need, lo, hi
	return true
}

// complete reports whether the text seen so far ends on a code point
// boundary; a message ending inside a sequence is invalid.
func (s *utf8State) complete() bool { return s.need == 0 }

// reset prepares for a new message.
func (s *utf8State) reset() { *s = utf8State{} }

// validUTF8 validates a complete text (a close reason, a decompressed
// message).
func validUTF8(p []byte) bool {
	var s utf8State
	return s.write(p) && s.complete()
}
