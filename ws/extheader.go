package ws

import (
	"errors"
	"fmt"
	"strings"
)

// Parsing of Sec-WebSocket-Extensions (RFC 6455 section 9.1):
//
//	extension-list = 1#extension
//	extension      = extension-token *( ";" extension-param )
//	extension-param = token [ "=" (token | quoted-string) ]
//
// where a quoted-string value must be a token once unescaped. Empty list
// elements and optional whitespace around separators are accepted (the #
// rule of RFC 9110 section 5.6.1).

// errBadExtensions is wrapped by every syntax error in an extension list.
var errBadExtensions = errors.New("ws: malformed Sec-WebSocket-Extensions")

// extension is one element of an extension list.
type extension struct {
	name   string
	params []extensionParam
}

// extensionParam is one parameter; hasValue tells "p" from "p=...".
type extensionParam struct {
	name     string
	value    string
	hasValue bool
}

// parseExtensions parses every value of the header, in order.
func parseExtensions(values []string) ([]extension, error) {
	var exts []extension
	for _, v := range values {
		var err error
		if exts, err = appendExtensions(exts, v); err != nil {
			return nil, err
		}
	}
	return exts, nil
}

// extParser scans one header value.
type extParser struct {
	s   string
	pos int
}

func appendExtensions(exts []extension, s string) ([]extension, error) {
	p := extParser{s: s}
	for {
		p.skipSpace()
		if p.done() {
			return exts, nil
		}
		if p.peek() == ',' {
			p.pos++ // empty list element
			continue
		}
		name, err := p.token("extension name")
		if err != nil {
			return nil, err
		}
		e := extension{name: name}
		for {
			p.skipSpace()
			if p.done() || p.peek() == ',' {
				break
			}
			if p.peek() != ';' {
				return nil, p.errorf("unexpected %q after %q", p.peek(), e.name)
			}
			p.pos++
			p.skipSpace()
			param, err := p.param()
			if err != nil {
				return nil, err
			}
			e.params = append(e.params, param)
		}
		exts = append(exts, e)
	}
}

func (p *extParser) param() (extensionParam, error) {
	name, err := p.token("parameter name")
	if err != nil {
		return extensionParam{}, err
	}
	param := extensionParam{name: name}
	p.skipSpace()
	if p.done() || p.peek() != '=' {
		return param, nil
	}
	p.pos++
	p.skipSpace()
	param.hasValue = true
	if !p.done() && p.peek() == '"' {
		param.value, err = p.quoted()
	} else {
		param.value, err = p.token("parameter value")
	}
	return param, err
}

func (p *extParser) done() bool { return p.pos >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.pos] }

func (p *extParser) skipSpace() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.pos++
	}
}

func (p *extParser) token(what string) (string, error) {
	start := p.pos
	for !p.done() && isTokenChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		if p.done() {
			return "", p.errorf("missing %s at end", what)
		}
		return "", p.errorf("missing %s before %q", what, p.peek())
	}
	return p.s[start:p.pos], nil
}

// quoted reads a quoted-string whose content must be a token.
func (p *extParser) quoted() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.pos++
		switch {
		case c == '"':
			v := b.String()
			if v == "" || !isToken(v) {
				return "", p.errorf("quoted value %s is not a token", p.s[start:p.pos])
			}
			return v, nil
		case c == '\\':
			if p.done() {
				return "", p.errorf("unterminated quoted value")
			}
			c = p.peek()
			p.pos++
			if c < ' ' && c != '\t' || c == 0x7f {
				return "", p.errorf("control character in quoted value")
			}
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", p.errorf("control character in quoted value")
		}
		b.WriteByte(c)
	}
	return "", p.errorf("unterminated quoted value")
}

func (p *extParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s (at byte %d of %q)", errBadExtensions, fmt.Sprintf(format, args...), p.pos, p.s)
}

// isTokenChar reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	for i := range len(s) {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}
