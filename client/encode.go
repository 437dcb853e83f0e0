package client

// Send frames are encoded by appending into a buffer the connection's
// flusher reuses, byte for byte as encoding/json would encode the frame
// struct (TestAppendSendMatchesMarshal), without reflection or an
// allocation per send. Other requests are rare and use encoding/json.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/duplexhq/duplex/protocol"
)

// appendSend appends the send frame of o with request id id.
func (o *outgoing) appendSend(dst []byte, id string) []byte {
	dst = append(dst, `{"type":"`+protocol.TypeSend+`","id":`...)
	dst = appendString(dst, id)
	if o.conv != "" {
		dst = append(dst, `,"conv":`...)
		dst = appendString(dst, o.conv)
	}
	if o.clientMsgID != "" {
		dst = append(dst, `,"client_msg_id":`...)
		dst = appendString(dst, o.clientMsgID)
	}
	if o.body != "" {
		dst = append(dst, `,"body":`...)
		dst = appendString(dst, o.body)
	}
	if len(o.meta) > 0 {
		dst = append(dst, `,"meta":`...)
		dst = append(dst, o.meta...) // normalized by normalizeMeta
	}
	return append(dst, '}')
}

// normalizeMeta returns meta as encoding/json embeds a json.RawMessage
// (compacted, with <, >, &, U+2028 and U+2029 escaped), or an error when it
// is not valid JSON. Metadata that is already in that form, the usual
// case, is returned as is.
func normalizeMeta(meta json.RawMessage) (json.RawMessage, error) {
	if len(meta) == 0 {
		return nil, nil
	}
	if bytes.IndexAny(meta, " \t\r\n<>&\u2028\u2029") < 0 {
		// The single-pass decoder's validator (wire.go) is several times
		// cheaper than json.Valid; what it refuses (deep nesting
		// included) is left to encoding/json.
		if end, ok := skipValue(meta, 0, 0); ok && end == len(meta) {
			return meta, nil
		}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("client: meta is not valid JSON: %w", err)
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the ASCII bytes encoding/json copies into a string as
// they are (its HTML-safe set: printable, not ", \, <, > or &).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendString appends s as a JSON string the way encoding/json does:
// invalid UTF-8 becomes \ufffd, and <, >, &, U+2028 and U+2029 are
// escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if plainASCII[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
