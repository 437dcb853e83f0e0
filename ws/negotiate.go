package ws

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Negotiation of permessage-deflate (RFC 7692 section 7.1).

const (
	extDeflate = "permessage-deflate"

	paramServerNoContext = "server_no_context_takeover"
	paramClientNoContext = "client_no_context_takeover"
	paramServerMaxWindow = "server_max_window_bits"
	paramClientMaxWindow = "client_max_window_bits"
)

// errDeflateResponse is wrapped by every error of clientAccept.
var errDeflateResponse = errors.New("ws: invalid permessage-deflate response")

// deflateOffer is one permessage-deflate offer as a client sent it.
type deflateOffer struct {
	serverNoContext bool
	clientNoContext bool
	serverMaxWindow int  // 0: absent
	clientMaxWindow int  // 0: absent or without value
	clientWindowOK  bool // client_max_window_bits present
}

// negotiateServer answers the Sec-WebSocket-Extensions offers in the
// request headers h (every header, comma lists, parameters with and without
// values, quoted values). The first permessage-deflate offer we can accept
// wins; offers with unknown, duplicate or invalid parameters are declined
// (RFC 7692 section 5), not failed. response is the Sec-WebSocket-Extensions
// value to send, "" when nothing was negotiated (compression disabled or no
// acceptable offer). err is set only when the header is not valid syntax,
// even with compression disabled: the server answers 400.
func (o *CompressionOptions) negotiateServer(h http.Header) (p *deflateParams, response string, err error) {
	exts, err := parseExtensions(h.Values("Sec-WebSocket-Extensions"))
	if err != nil {
		return nil, "", err
	}
	if o.Mode == CompressionDisabled {
		return nil, "", nil
	}
	for _, e := range exts {
		if !strings.EqualFold(e.name, extDeflate) {
			continue
		}
		offer, ok := parseDeflateOffer(e.params)
		if !ok {
			continue
		}
		p, response = o.answer(offer)
		return p, response, nil
	}
	return nil, "", nil
}

// parseDeflateOffer validates the parameters of one offer; ok is false
// when the offer must be declined.
func parseDeflateOffer(params []extensionParam) (offer deflateOffer, ok bool) {
	var seen [4]bool
	for _, prm := range params {
		i := deflateParamIndex(prm.name)
		if i < 0 || seen[i] {
			return offer, false
		}
		seen[i] = true
		switch i {
		case 0:
			offer.serverNoContext = true
		case 1:
			offer.clientNoContext = true
		case 2:
			if offer.serverMaxWindow, ok = parseWindowBits(prm.value); !ok {
				return offer, false
			}
		case 3:
			offer.clientWindowOK = true
			if prm.hasValue {
				if offer.clientMaxWindow, ok = parseWindowBits(prm.value); !ok {
					return offer, false
				}
			}
		}
		if (i == 0 || i == 1) && prm.hasValue || i == 2 && !prm.hasValue {
			return offer, false
		}
	}
	return offer, true
}

// deflateParamIndex returns 0-3 for the four parameters of RFC 7692, -1
// for anything else.
func deflateParamIndex(name string) int {
	for i, n := range [...]string{paramServerNoContext, paramClientNoContext, paramServerMaxWindow, paramClientMaxWindow} {
		if strings.EqualFold(name, n) {
			return i
		}
	}
	return -1
}

// parseWindowBits parses a window size: a decimal 8-15 without leading
// zeros or sign.
func parseWindowBits(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 || s[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || s[0] == '-' || n < minWindowBits || n > maxWindowBits {
		return 0, false
	}
	return n, true
}

// answer builds the parameters and the response for an acceptable offer.
func (o *CompressionOptions) answer(offer deflateOffer) (*deflateParams, string) {
	p := &deflateParams{
		serverNoContextTakeover: offer.serverNoContext || o.Mode == CompressionNoContextTakeover,
		clientNoContextTakeover: offer.clientNoContext || o.Mode == CompressionNoContextTakeover,
		serverMaxWindowBits:     windowBits(o.ServerMaxWindowBits),
		clientMaxWindowBits:     maxWindowBits,
	}
	var b strings.Builder
	b.WriteString(extDeflate)
	if p.serverNoContextTakeover {
		b.WriteString("; " + paramServerNoContext)
	}
	if p.clientNoContextTakeover {
		b.WriteString("; " + paramClientNoContext)
	}
	// Our window is only announced when the client asked for a bound:
	// compressing within a smaller window than the client expects needs no
	// agreement, and some clients reject server_max_window_bits they did
	// not offer.
	if offer.serverMaxWindow > 0 {
		p.serverMaxWindowBits = min(p.serverMaxWindowBits, offer.serverMaxWindow)
		fmt.Fprintf(&b, "; %s=%d", paramServerMaxWindow, p.serverMaxWindowBits)
	}
	// The client's window can be bounded only if it offered to be.
	if offer.clientWindowOK {
		p.clientMaxWindowBits = windowBits(o.ClientMaxWindowBits)
		if offer.clientMaxWindow > 0 {
			p.clientMaxWindowBits = min(p.clientMaxWindowBits, offer.clientMaxWindow)
		}
		if p.clientMaxWindowBits < maxWindowBits {
			fmt.Fprintf(&b, "; %s=%d", paramClientMaxWindow, p.clientMaxWindowBits)
		}
	}
	return p, b.String()
}

// offer returns the Sec-WebSocket-Extensions value a client sends, "" when
// compression is disabled. It always offers client_max_window_bits
// (we can compress within any window the server asks for) and asks for no
// context takeover in both directions in CompressionNoContextTakeover.
func (o *CompressionOptions) offer() string {
	if o.Mode == CompressionDisabled {
		return ""
	}
	var b strings.Builder
	b.WriteString(extDeflate)
	if o.Mode == CompressionNoContextTakeover {
		b.WriteString("; " + paramServerNoContext + "; " + paramClientNoContext)
	}
	if bits := windowBits(o.ServerMaxWindowBits); bits < maxWindowBits {
		fmt.Fprintf(&b, "; %s=%d", paramServerMaxWindow, bits)
	}
	b.WriteString("; " + paramClientMaxWindow)
	if bits := windowBits(o.ClientMaxWindowBits); bits < maxWindowBits {
		fmt.Fprintf(&b, "=%d", bits)
	}
	return b.String()
}

// acceptResponse validates the server's Sec-WebSocket-Extensions against
// what offer sent (unknown or duplicate parameters, values out of range or
// above our offer, requests of ours not echoed: all errors wrapping
// errDeflateResponse) and returns the negotiated parameters; "" means the
// server declined (nil, nil).
func (o *CompressionOptions) acceptResponse(response string) (*deflateParams, error) {
	exts, err := parseExtensions([]string{response})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDeflateResponse, err)
	}
	if len(exts) == 0 {
		return nil, nil
	}
	bad := func(format string, args ...any) (*deflateParams, error) {
		return nil, fmt.Errorf("%w: %s", errDeflateResponse, fmt.Sprintf(format, args...))
	}
	if o.Mode == CompressionDisabled {
		return bad("compression was not offered")
	}
	if len(exts) > 1 {
		return bad("%d extensions accepted, one was offered", len(exts))
	}
	e := exts[0]
	if !strings.EqualFold(e.name, extDeflate) {
		return bad("extension %q was not offered", e.name)
	}
	ourServerBits := windowBits(o.ServerMaxWindowBits)
	ourClientBits := windowBits(o.ClientMaxWindowBits)
	p := &deflateParams{
		serverMaxWindowBits: maxWindowBits,
		clientMaxWindowBits: ourClientBits,
		// Not keeping context is always our choice as a sender.
		clientNoContextTakeover: o.Mode == CompressionNoContextTakeover,
	}
	var seen [4]bool
	for _, prm := range e.params {
		i := deflateParamIndex(prm.name)
		if i < 0 {
			return bad("unknown parameter %q", prm.name)
		}
		if seen[i] {
			return bad("duplicate parameter %q", prm.name)
		}
		seen[i] = true
		if i <= 1 {
			if prm.hasValue {
				return bad("parameter %q with a value", prm.name)
			}
			if i == 0 {
				p.serverNoContextTakeover = true
			} else {
				p.clientNoContextTakeover = true
			}
			continue
		}
		bits, ok := parseWindowBits(prm.value)
		if !prm.hasValue || !ok {
			return bad("parameter %q needs a window size of 8 to 15, got %q", prm.name, prm.value)
		}
		if i == 2 {
			if bits > ourServerBits {
				return bad("%s=%d, above the %d we offered", paramServerMaxWindow, bits, ourServerBits)
			}
			p.serverMaxWindowBits = bits
		} else {
			if bits > ourClientBits {
				return bad("%s=%d, above the %d we offered", paramClientMaxWindow, bits, ourClientBits)
			}
			p.clientMaxWindowBits = bits
		}
	}
	// A server accepts these requests of ours by echoing them.
	if o.Mode == CompressionNoContextTakeover && !p.serverNoContextTakeover {
		return bad("%s was requested but not accepted", paramServerNoContext)
	}
	if ourServerBits < maxWindowBits && !seen[2] {
		return bad("%s=%d was requested but not accepted", paramServerMaxWindow, ourServerBits)
	}
	return p, nil
}
