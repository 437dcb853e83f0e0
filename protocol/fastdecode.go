package protocol

import (
	"unicode/utf8"
)

// decodeFast fills r (already reset) from frame without reflection when
// frame has the everyday shape of a request: one JSON object whose known
// fields hold values of their own type, and a known request type. It
// reports false whenever it is not certain to produce exactly what
// json.Unmarshal would (escapes it does not handle, a field name that
// only matches case-insensitively, a duplicate or null field, a list
// field, invalid JSON, an unknown type, ...): Decode then runs the
// reflective decoder, which stays the reference for every refusal. So
// the fast path changes the cost of a request, never its outcome; the
// differential fuzz test FuzzDecodeFastMatches holds it to that.
//
// All string fields share one allocation; a request type is one of the
// Type constants and costs none.
func decodeFast(frame []byte, r *Request) bool {
	p := fastParser{b: frame}
	p.space()
	if !p.eat('{') {
		return false
	}
	var (
		stack   [256]byte // backing for the strings of a small request
		scratch = stack[:0]
		spans   [fieldCount]struct{ start, end int32 }
		seen    uint32
		typ     string
	)
	p.space()
	if !p.eat('}') {
		for {
			p.space()
			key, ok := p.plainKey()
			if !ok {
				return false
			}
			p.space()
			if !p.eat(':') {
				return false
			}
			p.space()
			f := fieldOf(key)
			if f < fieldCount {
				if seen&(1<<f) != 0 {
					return false // duplicate: json.Unmarshal would merge
				}
				seen |= 1 << f
			}
			switch {
			case f == fType:
				start := p.i
				if !p.plainString() {
					return false
				}
				if typ = requestType(p.b[start+1 : p.i-1]); typ == "" {
					return false
				}
			case f == fMeta:
				start := p.i
				if p.i >= len(p.b) || p.b[p.i] == 'n' || !p.skipValue(0) {
					return false // null meta is rare: leave it to the reference
				}
				r.Meta = append(r.Meta[:0:0], p.b[start:p.i]...)
			case f < fieldCount && fieldKinds[f] == kindString:
				start := len(scratch)
				if scratch, ok = p.appendString(scratch); !ok {
					return false
				}
				spans[f].start, spans[f].end = int32(start), int32(len(scratch))
			case f < fieldCount && fieldKinds[f] == kindInt:
				n, ok := p.integer(f == fLimit)
				if !ok {
					return false
				}
				switch f {
				case fAfter:
					r.After = n
				case fBefore:
					r.Before = n
				case fLimit:
					r.Limit = int(n)
				case fSeq:
					r.Seq = n
				}
			case f == fieldUnknown:
				if !p.skipValue(0) {
					return false
				}
			default: // a field of a type left to the reference decoder
				return false
			}
			p.space()
			if p.eat(',') {
				continue
			}
			if p.eat('}') {
				break
			}
			return false
		}
	}
	p.space()
	if p.i != len(p.b) {
		return false
	}
	r.Type = typ
	if len(scratch) > 0 {
		all := string(scratch)
		for f := range fieldCount {
			if seen&(1<<f) != 0 && fieldKinds[f] == kindString {
				*r.stringField(f) = all[spans[f].start:spans[f].end]
			}
		}
	}
	return true
}

// Fields of Request the fast path knows by name.
const (
	fType = iota
	fID
	fConv
	fClientMsgID
	fBody
	fMeta
	fAfter
	fBefore
	fLimit
	fSeq
	fChannel
	fPeer
	fTitle
	fUser
	fSince   // pointer: left to the reference decoder
	fData    // any JSON: left to the reference decoder
	fUsers   // list: left to the reference decoder
	fMembers // list: left to the reference decoder
	fieldCount

	fieldUnknown = 255 // a name no field matches, even case-insensitively
	fieldFolded  = 254 // a name that matches a field only case-insensitively
)

const (
	kindString = iota + 1
	kindInt
	kindOther
)

var fieldNames = [fieldCount]string{
	"type", "id", "conv", "client_msg_id", "body", "meta", "after", "before", "limit", "seq",
	"channel", "peer", "title", "user", "since", "data", "users", "members",
}

// fieldKinds says how the fast path reads each field; type is read apart.
var fieldKinds = [fieldCount]uint8{
	kindOther, kindString, kindString, kindString, kindString, kindOther, kindInt, kindInt, kindInt, kindInt,
	kindString, kindString, kindString, kindString, kindOther, kindOther, kindOther, kindOther,
}

func (r *Request) stringField(f int) *string {
	switch f {
	case fID:
		return &r.ID
	case fConv:
		return &r.Conv
	case fClientMsgID:
		return &r.ClientMsgID
	case fBody:
		return &r.Body
	case fChannel:
		return &r.Channel
	case fPeer:
		return &r.Peer
	case fTitle:
		return &r.Title
	case fUser:
		return &r.User
	}
	panic("protocol: not a string field")
}

// fieldOf names the field key (plain ASCII) selects. encoding/json matches
// names case-insensitively; such a match is fieldFolded, which the fast
// path leaves to the reference decoder.
func fieldOf(key []byte) int {
	for f, name := range fieldNames {
		if string(key) == name {
			return f
		}
	}
	for _, name := range fieldNames {
		if asciiEqualFold(key, name) {
			return fieldFolded
		}
	}
	return fieldUnknown
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// requestType returns the Type constant spelled by t, "" if none.
func requestType(t []byte) string {
	switch string(t) {
	case TypeSend:
		return TypeSend
	case TypeSync:
		return TypeSync
	case TypeHistory:
		return TypeHistory
	case TypeRead:
		return TypeRead
	case TypeTyping:
		return TypeTyping
	case TypeSubscribe:
		return TypeSubscribe
	case TypeUnsubscribe:
		return TypeUnsubscribe
	case TypePublish:
		return TypePublish
	case TypePresence:
		return TypePresence
	case TypeConvs:
		return TypeConvs
	case TypeCreateDirect:
		return TypeCreateDirect
	case TypeCreateGroup:
		return TypeCreateGroup
	case TypeAddMember:
		return TypeAddMember
	case TypeRemoveMember:
		return TypeRemoveMember
	case TypePing:
		return TypePing
	}
	return ""
}

// fastParser walks a frame; every method reports false on anything it
// does not accept, leaving the verdict to the reference decoder.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plainKey reads an object key of printable ASCII without escapes and
// returns its bytes.
func (p *fastParser) plainKey() ([]byte, bool) {
	start := p.i
	if !p.plainString() {
		return nil, false
	}
	return p.b[start+1 : p.i-1], true
}

// plainString reads a string of printable ASCII without escapes.
func (p *fastParser) plainString() bool {
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return true
		case c < ' ' || c == '\\' || c >= utf8.RuneSelf:
			return false
		}
	}
	return false
}

// appendString reads a string value and appends its decoded content to
// dst: the short escapes and \u escapes outside the surrogate range are
// decoded, valid UTF-8 is copied; anything else is refused.
func (p *fastParser) appendString(dst []byte) ([]byte, bool) {
	if !p.eat('"') {
		return dst, false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return dst, true
		case c < ' ':
			return dst, false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return dst, false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				v, ok := p.hex4()
				if !ok || 0xD800 <= v && v < 0xE000 {
					return dst, false // surrogates: pairing rules left to the reference
				}
				dst = utf8.AppendRune(dst, v)
			default:
				return dst, false
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			p.i++
		default:
			rn, size := utf8.DecodeRune(p.b[p.i:])
			if rn == utf8.RuneError && size == 1 {
				return dst, false // json.Unmarshal would substitute U+FFFD
			}
			dst = append(dst, p.b[p.i:p.i+size]...)
			p.i += size
		}
	}
	return dst, false
}

func (p *fastParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var v rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	p.i += 4
	return v, true
}

// integer reads a JSON integer that fits in int64 (small: in 32 bits);
// fractions, exponents and long numbers are refused.
func (p *fastParser) integer(small bool) (int64, bool) {
	neg := p.eat('-')
	start := p.i
	var n int64
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	maxDigits := 18
	if small {
		maxDigits = 9
	}
	if digits == 0 || digits > maxDigits || digits > 1 && p.b[start] == '0' {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// maxFastDepth bounds the nesting the fast path validates; deeper values
// go to the reference decoder.
const maxFastDepth = 32

// SkipJSONValue validates the JSON value that starts at b[i] (no leading
// space) and returns the index just past it. It reports false for invalid
// JSON and also for nesting deeper than it follows: json.Valid has the last
// word on what it refuses. Hand-written decoders and encoders of frames
// (the client's included) use it instead of a validator of their own.
func SkipJSONValue(b []byte, i int) (next int, ok bool) {
	p := fastParser{b: b, i: i}
	if !p.skipValue(0) {
		return 0, false
	}
	return p.i, true
}

// skipValue validates one JSON value and moves past it.
func (p *fastParser) skipValue(depth int) bool {
	if p.i >= len(p.b) || depth > maxFastDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.i++
		p.space()
		if p.eat(end) {
			return true
		}
		for {
			p.space()
			if c == '{' { // a member: key and colon before the value
				if !p.skipString() {
					return false
				}
				p.space()
				if !p.eat(':') {
					return false
				}
				p.space()
			}
			if !p.skipValue(depth + 1) {
				return false
			}
			p.space()
			if p.eat(',') {
				continue
			}
			return p.eat(end)
		}
	case c == '"':
		return p.skipString()
	case c == '-' || '0' <= c && c <= '9':
		return p.skipNumber()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return false
}

// skipString validates a string as JSON's grammar does (which, like
// encoding/json's scanner, does not look at UTF-8 validity).
func (p *fastParser) skipString() bool {
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return true
		case c < ' ':
			return false
		case c == '\\':
			if p.i >= len(p.b) {
				return false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := p.hex4(); !ok {
					return false
				}
			default:
				return false
			}
		}
	}
	return false
}

func (p *fastParser) skipNumber() bool {
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') && !p.digits() {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more decimal digits.
func (p *fastParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *fastParser) literal(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}
