package ws

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzNegotiate feeds arbitrary Sec-WebSocket-Extensions values to both
// sides of the negotiation. Neither may panic; a server response must be
// well-formed, one permessage-deflate element with parameters in range; a
// client must accept only responses within its offer.
func FuzzNegotiate(f *testing.F) {
	f.Add("permessage-deflate; client_max_window_bits", uint8(0), uint8(0), uint8(0))
	f.Add(`permessage-deflate; server_max_window_bits="10", permessage-deflate`, uint8(1), uint8(9), uint8(12))
	f.Add("x, permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=8", uint8(2), uint8(15), uint8(8))
	f.Add("permessage-deflate;;", uint8(1), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, header string, mode, sbits, cbits uint8) {
		o := CompressionOptions{Mode: CompressionMode(mode % 3), ServerMaxWindowBits: int(sbits), ClientMaxWindowBits: int(cbits)}
		h := http.Header{"Sec-Websocket-Extensions": strings.Split(header, "\n")}
		p, resp, err := o.negotiateServer(h)
		if err != nil && (p != nil || resp != "") {
			t.Fatalf("error %v with a result", err)
		}
		if (p == nil) != (resp == "") {
			t.Fatalf("params %+v with response %q", p, resp)
		}
		if p != nil {
			exts, err := parseExtensions([]string{resp})
			if err != nil || len(exts) != 1 || exts[0].name != extDeflate {
				t.Fatalf("response %q does not parse: %v", resp, err)
			}
			if _, ok := parseDeflateOffer(exts[0].params); !ok {
				t.Fatalf("response %q has invalid parameters", resp)
			}
			checkParamRange(t, p)
			if o.Mode == CompressionNoContextTakeover && !(p.serverNoContextTakeover && p.clientNoContextTakeover) {
				t.Fatalf("no context takeover mode negotiated %+v", p)
			}
			if p.serverMaxWindowBits > windowBits(o.ServerMaxWindowBits) {
				t.Fatalf("server window %d above our bound", p.serverMaxWindowBits)
			}
		}

		// The same string as a server's response to our offer.
		cp, err := o.acceptResponse(header)
		if err == nil && cp != nil {
			checkParamRange(t, cp)
			if cp.serverMaxWindowBits > windowBits(o.ServerMaxWindowBits) || cp.clientMaxWindowBits > windowBits(o.ClientMaxWindowBits) {
				t.Fatalf("accepted %+v beyond our offer %q", cp, o.offer())
			}
		}
	})
}

func checkParamRange(t *testing.T, p *deflateParams) {
	t.Helper()
	for _, b := range []int{p.serverMaxWindowBits, p.clientMaxWindowBits} {
		if b < minWindowBits || b > maxWindowBits {
			t.Fatalf("window bits %d out of range in %+v", b, p)
		}
	}
}
