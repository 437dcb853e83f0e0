package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendAck appends the frame of a to dst: the bytes Encode(a) returns,
// without reflection or allocation beyond dst's growth. a.Type is written
// as given.
func AppendAck(dst []byte, a *Ack) []byte {
	dst = append(dst, `{"type":`...)
	dst = AppendJSONString(dst, a.Type)
	dst = append(dst, `,"id":`...)
	dst = AppendJSONString(dst, a.ID)
	dst = append(dst, `,"conv":`...)
	dst = AppendJSONString(dst, a.Conv)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, a.Seq, 10)
	dst = append(dst, `,"client_msg_id":`...)
	dst = AppendJSONString(dst, a.ClientMsgID)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, a.TS, 10)
	if a.Duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	return append(dst, '}')
}

// AppendMessageEvent appends the frame of e to dst: the bytes Encode(e)
// returns. It fails, as Encode does, only when e.Meta is not valid JSON.
func AppendMessageEvent(dst []byte, e *MessageEvent) ([]byte, error) {
	dst = append(dst, `{"type":`...)
	dst = AppendJSONString(dst, e.Type)
	dst = append(dst, `,"conv":`...)
	dst = AppendJSONString(dst, e.Conv)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"sender":`...)
	dst = AppendJSONString(dst, e.Sender)
	dst = append(dst, `,"client_msg_id":`...)
	dst = AppendJSONString(dst, e.ClientMsgID)
	dst = append(dst, `,"body":`...)
	dst = AppendJSONString(dst, e.Body)
	if len(e.Meta) > 0 {
		dst = append(dst, `,"meta":`...)
		var err error
		if dst, err = appendRawJSON(dst, e.Meta); err != nil {
			return nil, err
		}
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.TS, 10)
	return append(dst, '}'), nil
}

// appendRawJSON appends raw as encoding/json writes a RawMessage.
func appendRawJSON(dst []byte, raw json.RawMessage) ([]byte, error) {
	n, err := NormalizeRawJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("protocol: meta: %w", err)
	}
	return append(dst, n...), nil
}

// NormalizeRawJSON returns raw as encoding/json embeds a json.RawMessage:
// compacted, with <, >, &, U+2028 and U+2029 escaped; an error when raw is
// not valid JSON. Usually raw is already in that form and is returned as it
// is, checked by SkipJSONValue (several times cheaper than json.Valid,
// which decides only what SkipJSONValue refuses).
func NormalizeRawJSON(raw json.RawMessage) (json.RawMessage, error) {
	if plainJSON(raw) {
		if end, ok := SkipJSONValue(raw, 0); ok && end == len(raw) || json.Valid(raw) {
			return raw, nil
		}
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return escaped.Bytes(), nil
}

// plainJSON reports whether raw has no byte that compacting or escaping
// could change.
func plainJSON(raw []byte) bool {
	for i, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n', '<', '>', '&':
			return false
		case 0xE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if len(raw)-i >= 3 && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8 {
				return false
			}
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes it by default: <, > and & escaped for HTML, invalid UTF-8
// replaced by U+FFFD, U+2028 and U+2029 escaped. Hand-written encoders of
// duplex.v1 frames use it to stay byte-identical to Encode.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
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
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
