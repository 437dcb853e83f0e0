package client

// A single-pass decoder for the server frames every message costs (ack,
// message, sync.end, result, error, receipt, typing). encoding/json decodes
// them with reflection after a separate validity scan, and the reader used
// to decode each frame twice (a head to learn the type, then the typed
// struct); at a few thousand frames per second that was a quarter of the
// load generator's CPU. This decoder reads the frame once into a union of
// the fields those frames have and allocates nothing (strings stay []byte
// slices of the frame, or of a scratch buffer when they have escapes).
//
// It only ever answers for input it decodes exactly as encoding/json would
// decode it into the frame's typed struct: anything it is not sure of (a
// null where a scalar goes is fine, but a number where a string goes, a
// float seq, invalid UTF-8, a key that only case-insensitively matches a
// field, non-ASCII or escaped keys, deep nesting) makes decode report false,
// and the caller decodes the frame with encoding/json as before. The
// differential fuzz test (FuzzDecodeFrame) holds it to that.

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/duplexhq/duplex/protocol"
)

// wireFrame is the union of the fields of the frames decoded here. String
// fields alias the frame or the decoder's scratch buffer: valid until the
// next decode.
type wireFrame struct {
	typ, id, conv, clientMsgID, sender, body, user, code, message []byte

	meta           []byte // the raw JSON value, nil when absent
	seq, ts, ttlMS int64
	more, dup      bool
}

// knownKeys are the keys wireFrame holds. A key that equals one of them
// only when case is ignored is one encoding/json would store in the field,
// so decode leaves such frames to it.
var knownKeys = [...]string{"type", "id", "conv", "client_msg_id", "sender", "body", "user",
	"code", "message", "meta", "seq", "ts", "ttl_ms", "more", "duplicate"}

// frameDecoder is owned by one reader goroutine.
type frameDecoder struct {
	// scratch receives unescaped strings. Its capacity is at least the
	// frame's length, which no unescaped string of the frame exceeds in
	// total, so appending never moves it and earlier fields stay valid.
	scratch []byte
}

// decode parses the JSON object p into f, reporting false when p is not
// something it decodes exactly like encoding/json (including invalid
// JSON): the caller then falls back to encoding/json.
func (d *frameDecoder) decode(p []byte, f *wireFrame) bool {
	*f = wireFrame{}
	if cap(d.scratch) < len(p) {
		d.scratch = make([]byte, 0, max(len(p), 512))
	}
	d.scratch = d.scratch[:0]
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return skipSpace(p, i+1) == len(p)
	}
	for {
		key, j, ok := plainKey(p, i)
		if !ok {
			return false
		}
		i = skipSpace(p, j)
		if i >= len(p) || p[i] != ':' {
			return false
		}
		i = skipSpace(p, i+1)
		switch string(key) {
		case "type":
			i, ok = d.str(p, i, &f.typ)
		case "id":
			i, ok = d.str(p, i, &f.id)
		case "conv":
			i, ok = d.str(p, i, &f.conv)
		case "client_msg_id":
			i, ok = d.str(p, i, &f.clientMsgID)
		case "sender":
			i, ok = d.str(p, i, &f.sender)
		case "body":
			i, ok = d.str(p, i, &f.body)
		case "user":
			i, ok = d.str(p, i, &f.user)
		case "code":
			i, ok = d.str(p, i, &f.code)
		case "message":
			i, ok = d.str(p, i, &f.message)
		case "seq":
			i, ok = integer(p, i, &f.seq)
		case "ts":
			i, ok = integer(p, i, &f.ts)
		case "ttl_ms":
			i, ok = integer(p, i, &f.ttlMS)
		case "more":
			i, ok = boolean(p, i, &f.more)
		case "duplicate":
			i, ok = boolean(p, i, &f.dup)
		case "meta":
			start := i
			if i, ok = protocol.SkipJSONValue(p, i); ok {
				f.meta = p[start:i:i]
			}
		default:
			if foldsToKnown(key) {
				return false
			}
			i, ok = protocol.SkipJSONValue(p, i)
		}
		if !ok {
			return false
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
			continue
		case '}':
			return skipSpace(p, i+1) == len(p)
		}
		return false
	}
}

func foldsToKnown(key []byte) bool {
	for _, k := range knownKeys {
		if len(k) == len(key) && bytes.EqualFold(key, []byte(k)) {
			return true
		}
	}
	return false
}

func skipSpace(p []byte, i int) int {
	for i < len(p) {
		switch p[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plainKey reads a key at p[i] that has no escapes and only printable
// ASCII; anything else reports false (encoding/json folds some non-ASCII
// letters onto ASCII ones when matching fields).
func plainKey(p []byte, i int) (key []byte, next int, ok bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(p); j++ {
		switch c := p[j]; {
		case c == '"':
			return p[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// isNull reports a null literal at p[i]: into a string, number or bool
// field encoding/json stores nothing, leaving an earlier duplicate's value.
func isNull(p []byte, i int) bool {
	return len(p)-i >= 4 && string(p[i:i+4]) == "null"
}

// str reads a JSON string (or null) at p[i] into *dst.
func (d *frameDecoder) str(p []byte, i int, dst *[]byte) (int, bool) {
	if isNull(p, i) {
		return i + 4, true
	}
	if i >= len(p) || p[i] != '"' {
		return 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(p); j++ {
		switch c := p[j]; {
		case c == '"':
			s := p[start:j:j]
			if !ascii && !utf8.Valid(s) {
				return 0, false // encoding/json replaces the bad bytes
			}
			*dst = s
			return j + 1, true
		case c == '\\':
			return d.unescape(p, start, j, dst)
		case c < 0x20:
			return 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, false
}

// unescape decodes the string that starts at p[start] and has its first
// backslash at p[j] into the scratch buffer, as encoding/json's unquote
// does (a lone or mismatched surrogate becomes U+FFFD).
func (d *frameDecoder) unescape(p []byte, start, j int, dst *[]byte) (int, bool) {
	out := len(d.scratch)
	if !utf8.Valid(p[start:j]) {
		return 0, false
	}
	d.scratch = append(d.scratch, p[start:j]...)
	for j < len(p) {
		c := p[j]
		switch {
		case c == '"':
			*dst = d.scratch[out:len(d.scratch):len(d.scratch)]
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			if j+1 >= len(p) {
				return 0, false
			}
			switch e := p[j+1]; e {
			case '"', '\\', '/':
				d.scratch = append(d.scratch, e)
			case 'b':
				d.scratch = append(d.scratch, '\b')
			case 'f':
				d.scratch = append(d.scratch, '\f')
			case 'n':
				d.scratch = append(d.scratch, '\n')
			case 'r':
				d.scratch = append(d.scratch, '\r')
			case 't':
				d.scratch = append(d.scratch, '\t')
			case 'u':
				r := hex4(p, j+2)
				if r < 0 {
					return 0, false
				}
				j += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if j+1 < len(p) && p[j] == '\\' && p[j+1] == 'u' {
						r2 = hex4(p, j+2)
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						j += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				}
				d.scratch = utf8.AppendRune(d.scratch, r)
				continue
			default:
				return 0, false
			}
			j += 2
		case c < utf8.RuneSelf:
			d.scratch = append(d.scratch, c)
			j++
		default:
			r, n := utf8.DecodeRune(p[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, false
			}
			d.scratch = append(d.scratch, p[j:j+n]...)
			j += n
		}
	}
	return 0, false
}

// hex4 decodes the 4 hex digits at p[i], or returns -1.
func hex4(p []byte, i int) rune {
	if len(p)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range p[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// integer reads an int64 (or null) at p[i]: a JSON number without
// fraction or exponent that fits (encoding/json refuses the others for
// an int64 field).
func integer(p []byte, i int, dst *int64) (int, bool) {
	if isNull(p, i) {
		return i + 4, true
	}
	neg := false
	if i < len(p) && p[i] == '-' {
		neg = true
		i++
	}
	if i >= len(p) || p[i] < '0' || p[i] > '9' {
		return 0, false
	}
	var u uint64
	start := i
	if p[i] == '0' {
		i++
	} else {
		for i < len(p) && '0' <= p[i] && p[i] <= '9' {
			if i-start >= 18 { // 19 digits may overflow; leave them to strconv
				return 0, false
			}
			u = u*10 + uint64(p[i]-'0')
			i++
		}
	}
	if i < len(p) && (p[i] == '.' || p[i] == 'e' || p[i] == 'E') {
		return 0, false
	}
	*dst = int64(u)
	if neg {
		*dst = -int64(u)
	}
	return i, true
}

// boolean reads true, false or null at p[i].
func boolean(p []byte, i int, dst *bool) (int, bool) {
	switch {
	case len(p)-i >= 4 && string(p[i:i+4]) == "true":
		*dst = true
		return i + 4, true
	case len(p)-i >= 5 && string(p[i:i+5]) == "false":
		*dst = false
		return i + 5, true
	case isNull(p, i):
		return i + 4, true
	}
	return 0, false
}
