package ws_test

// Raw permessage-deflate (RFC 7692) for the conformance suite: extension
// header parsing and a compressor/decompressor pair built on compress/flate,
// independent of package ws's implementation (the window check uses
// ws.CheckInflate, which is test code, not the production inflater).

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/duplexhq/duplex/ws"
)

// extension is one element of a Sec-WebSocket-Extensions list.
type extension struct {
	name   string
	params []extParam
}

type extParam struct {
	name     string
	value    string
	hasValue bool
}

func (e extension) String() string {
	var b strings.Builder
	b.WriteString(e.name)
	for _, p := range e.params {
		b.WriteString("; ")
		b.WriteString(p.name)
		if p.hasValue {
			b.WriteString("=")
			b.WriteString(p.value)
		}
	}
	return b.String()
}

// parseExtensions parses the values of Sec-WebSocket-Extensions headers
// (RFC 6455 section 9.1; quoted values are unquoted).
func parseExtensions(values []string) []extension {
	var out []extension
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			parts := strings.Split(item, ";")
			name := strings.TrimSpace(parts[0])
			if name == "" {
				continue
			}
			e := extension{name: name}
			for _, p := range parts[1:] {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				k, v, ok := strings.Cut(p, "=")
				v = strings.Trim(strings.TrimSpace(v), `"`)
				e.params = append(e.params, extParam{name: strings.TrimSpace(k), value: v, hasValue: ok})
			}
			out = append(out, e)
		}
	}
	return out
}

// pmdParams are permessage-deflate parameters; bits of 0 mean absent.
type pmdParams struct {
	serverNoCtx, clientNoCtx bool
	serverBits, clientBits   int
	clientBitsNoValue        bool // offer only: client_max_window_bits without value
}

// String renders p as an extension element.
func (p pmdParams) String() string {
	s := "permessage-deflate"
	if p.serverNoCtx {
		s += "; server_no_context_takeover"
	}
	if p.clientNoCtx {
		s += "; client_no_context_takeover"
	}
	if p.serverBits != 0 {
		s += "; server_max_window_bits=" + strconv.Itoa(p.serverBits)
	}
	switch {
	case p.clientBits != 0:
		s += "; client_max_window_bits=" + strconv.Itoa(p.clientBits)
	case p.clientBitsNoValue:
		s += "; client_max_window_bits"
	}
	return s
}

// parsePMD validates the parameters of a permessage-deflate element by the
// rules of RFC 7692 section 7.1 (no duplicates, no unknown names, window
// bits 8..15 as a plain decimal); response forbids a valueless
// client_max_window_bits.
func parsePMD(e extension, response bool) (pmdParams, error) {
	var p pmdParams
	seen := map[string]bool{}
	for _, q := range e.params {
		if seen[q.name] {
			return p, fmt.Errorf("duplicate parameter %q", q.name)
		}
		seen[q.name] = true
		bits := func() (int, error) {
			if !q.hasValue {
				return 0, fmt.Errorf("%s needs a value", q.name)
			}
			n, err := strconv.Atoi(q.value)
			if err != nil || n < 8 || n > 15 || q.value[0] == '0' || q.value[0] == '+' {
				return 0, fmt.Errorf("%s=%q is not 8..15", q.name, q.value)
			}
			return n, nil
		}
		var err error
		switch q.name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if q.hasValue {
				return p, fmt.Errorf("%s takes no value", q.name)
			}
			if q.name[0] == 's' {
				p.serverNoCtx = true
			} else {
				p.clientNoCtx = true
			}
		case "server_max_window_bits":
			p.serverBits, err = bits()
		case "client_max_window_bits":
			if !q.hasValue && !response {
				p.clientBitsNoValue = true
				continue
			}
			p.clientBits, err = bits()
		default:
			return p, fmt.Errorf("unknown parameter %q", q.name)
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// deflateTail is the empty stored block that ends every compressed message
// and that senders strip (RFC 7692 section 7.2.1).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// rawDeflate is one endpoint's permessage-deflate state: out compresses what
// this endpoint sends, in decompresses what it receives.
type rawDeflate struct {
	outNoCtx bool
	outBits  int // 8..15
	fw       *flate.Writer
	fbuf     bytes.Buffer

	inNoCtx bool
	inBits  int
	hist    []byte // last 2^inBits bytes received, when context is kept
}

// newRawDeflate derives the state of the raw endpoint from the negotiated
// parameters; client says whether that endpoint is the client.
func newRawDeflate(p pmdParams, client bool) *rawDeflate {
	orDefault := func(b int) int {
		if b == 0 {
			return 15
		}
		return b
	}
	d := &rawDeflate{}
	if client {
		d.outNoCtx, d.outBits = p.clientNoCtx, orDefault(p.clientBits)
		d.inNoCtx, d.inBits = p.serverNoCtx, orDefault(p.serverBits)
	} else {
		d.outNoCtx, d.outBits = p.serverNoCtx, orDefault(p.serverBits)
		d.inNoCtx, d.inBits = p.clientNoCtx, orDefault(p.clientBits)
	}
	return d
}

// canCompress reports whether p can be compressed within the negotiated
// window: compress/flate always uses a 32 KiB window, so with a smaller one
// only messages shorter than the window are compressed (each with a fresh
// compressor, so no match can reach further back than the message).
func (d *rawDeflate) canCompress(p []byte) bool {
	return d.outBits == 15 || len(p) < 1<<d.outBits
}

// compress returns the compressed form of p with the trailing 00 00 ff ff
// removed.
func (d *rawDeflate) compress(p []byte) []byte {
	d.fbuf.Reset()
	if d.fw == nil {
		d.fw, _ = flate.NewWriter(&d.fbuf, flate.BestSpeed)
	} else if d.outNoCtx || d.outBits < 15 {
		d.fw.Reset(&d.fbuf)
	}
	d.fw.Write(p)
	d.fw.Flush()
	out := bytes.Clone(d.fbuf.Bytes())
	if !bytes.HasSuffix(out, deflateTail) {
		panic("compress/flate Flush did not end with a sync marker")
	}
	return out[:len(out)-4]
}

// decompress inflates one message's payload. With context takeover the
// dictionary is only the last 2^inBits bytes, so a back-reference beyond the
// negotiated window into earlier messages fails to decode.
func (d *rawDeflate) decompress(p []byte, limit int64) ([]byte, error) {
	var dict []byte
	if !d.inNoCtx {
		dict = d.hist
	}
	// Append the sync tail and a final empty stored block so the reader
	// ends cleanly at the end of the message.
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}))
	r := flate.NewReaderDict(src, dict)
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("inflated message over %d bytes", limit)
	}
	// compress/flate accepts any distance up to 32 KiB: check the window.
	if _, _, err := ws.CheckInflate(dict, p, 1<<d.inBits); err != nil {
		return nil, fmt.Errorf("window check (%d-bit window): %w", d.inBits, err)
	}
	if !d.inNoCtx {
		d.hist = append(d.hist, out...)
		if w := 1 << d.inBits; len(d.hist) > w {
			d.hist = append(d.hist[:0], d.hist[len(d.hist)-w:]...)
		}
	}
	return out, nil
}
