package ws

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
)

func TestParseExtensions(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []extension
		bad    bool
	}{
		{name: "none", values: nil},
		{name: "blank", values: []string{"  ", ""}},
		{name: "plain", values: []string{"permessage-deflate"},
			want: []extension{{name: "permessage-deflate"}}},
		{name: "params with and without values", values: []string{"permessage-deflate; client_max_window_bits; server_max_window_bits=10"},
			want: []extension{{name: "permessage-deflate", params: []extensionParam{
				{name: "client_max_window_bits"}, {name: "server_max_window_bits", value: "10", hasValue: true}}}}},
		{name: "comma list and several headers", values: []string{"foo, bar;x=1", "baz"},
			want: []extension{{name: "foo"}, {name: "bar", params: []extensionParam{{name: "x", value: "1", hasValue: true}}}, {name: "baz"}}},
		{name: "whitespace and empty elements", values: []string{" ,\tfoo \t; a = 1 ;b,, bar ,"},
			want: []extension{{name: "foo", params: []extensionParam{{name: "a", value: "1", hasValue: true}, {name: "b"}}}, {name: "bar"}}},
		{name: "quoted value", values: []string{`x; a="10"; b="a\-b"`},
			want: []extension{{name: "x", params: []extensionParam{{name: "a", value: "10", hasValue: true}, {name: "b", value: "a-b", hasValue: true}}}}},
		{name: "param without extension", values: []string{"; a"}, bad: true},
		{name: "empty param name", values: []string{"x; =1"}, bad: true},
		{name: "trailing semicolon", values: []string{"x;"}, bad: true},
		{name: "equals without value", values: []string{"x; a="}, bad: true},
		{name: "equals then separator", values: []string{"x; a=;b"}, bad: true},
		{name: "space inside name", values: []string{"x y"}, bad: true},
		{name: "separator in token", values: []string{"x; a=1/2"}, bad: true},
		{name: "unterminated quote", values: []string{`x; a="10`}, bad: true},
		{name: "quote ends in escape", values: []string{`x; a="10\`}, bad: true},
		{name: "quoted non-token", values: []string{`x; a="1 0"`}, bad: true},
		{name: "empty quoted", values: []string{`x; a=""`}, bad: true},
		{name: "control char in quote", values: []string{"x; a=\"1\x010\""}, bad: true},
		{name: "junk after quote", values: []string{`x; a="10"z`}, bad: true},
		{name: "non-ASCII", values: []string{"pérmessage"}, bad: true},
		{name: "bad second header", values: []string{"x", "y;;"}, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseExtensions(tc.values)
			if tc.bad {
				if !errors.Is(err, errBadExtensions) {
					t.Fatalf("got %v, %v; want errBadExtensions", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestServerNegotiate(t *testing.T) {
	ct := CompressionOptions{Mode: CompressionContextTakeover}
	noct := CompressionOptions{Mode: CompressionNoContextTakeover}
	params := func(snct, cnct bool, sbits, cbits int) *deflateParams {
		return &deflateParams{serverNoContextTakeover: snct, clientNoContextTakeover: cnct, serverMaxWindowBits: sbits, clientMaxWindowBits: cbits}
	}
	tests := []struct {
		name   string
		opts   CompressionOptions
		offers []string
		want   *deflateParams
		resp   string
		bad    bool
	}{
		{name: "no offer", opts: ct},
		{name: "disabled", opts: CompressionOptions{}, offers: []string{"permessage-deflate"}},
		{name: "disabled, malformed header still refused", opts: CompressionOptions{}, offers: []string{"permessage-deflate;"}, bad: true},
		{name: "plain", opts: ct, offers: []string{"permessage-deflate"},
			want: params(false, false, 15, 15), resp: "permessage-deflate"},
		{name: "name is case-insensitive", opts: ct, offers: []string{"Permessage-Deflate"},
			want: params(false, false, 15, 15), resp: "permessage-deflate"},
		{name: "browser offer", opts: ct, offers: []string{"permessage-deflate; client_max_window_bits"},
			want: params(false, false, 15, 15), resp: "permessage-deflate"},
		{name: "server mode no context takeover", opts: noct, offers: []string{"permessage-deflate; client_max_window_bits"},
			want: params(true, true, 15, 15), resp: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{name: "client asks server_no_context_takeover", opts: ct, offers: []string{"permessage-deflate; server_no_context_takeover"},
			want: params(true, false, 15, 15), resp: "permessage-deflate; server_no_context_takeover"},
		{name: "client announces client_no_context_takeover", opts: ct, offers: []string{"permessage-deflate; client_no_context_takeover"},
			want: params(false, true, 15, 15), resp: "permessage-deflate; client_no_context_takeover"},
		{name: "client bounds server window", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits=10"},
			want: params(false, false, 10, 15), resp: "permessage-deflate; server_max_window_bits=10"},
		{name: "server bound below client's", opts: CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 9},
			offers: []string{"permessage-deflate; server_max_window_bits=12"},
			want:   params(false, false, 9, 15), resp: "permessage-deflate; server_max_window_bits=9"},
		{name: "server bound used silently when not offered", opts: CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 11},
			offers: []string{"permessage-deflate"},
			want:   params(false, false, 11, 15), resp: "permessage-deflate"},
		{name: "window 8", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"},
			want: params(false, false, 8, 8), resp: "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"},
		{name: "client window announced", opts: ct, offers: []string{"permessage-deflate; client_max_window_bits=12"},
			want: params(false, false, 15, 12), resp: "permessage-deflate; client_max_window_bits=12"},
		{name: "server bounds client window", opts: CompressionOptions{Mode: CompressionContextTakeover, ClientMaxWindowBits: 10},
			offers: []string{"permessage-deflate; client_max_window_bits"},
			want:   params(false, false, 15, 10), resp: "permessage-deflate; client_max_window_bits=10"},
		{name: "client's own bound is lower", opts: CompressionOptions{Mode: CompressionContextTakeover, ClientMaxWindowBits: 13},
			offers: []string{"permessage-deflate; client_max_window_bits=9"},
			want:   params(false, false, 15, 9), resp: "permessage-deflate; client_max_window_bits=9"},
		{name: "client window cannot be bounded without its offer", opts: CompressionOptions{Mode: CompressionContextTakeover, ClientMaxWindowBits: 10},
			offers: []string{"permessage-deflate"},
			want:   params(false, false, 15, 15), resp: "permessage-deflate"},
		{name: "all four", opts: ct,
			offers: []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=13"},
			want:   params(true, true, 11, 13), resp: "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=13"},
		{name: "quoted values", opts: ct, offers: []string{`permessage-deflate; server_max_window_bits="10"; client_max_window_bits="12"`},
			want: params(false, false, 10, 12), resp: "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"},
		{name: "other extensions skipped", opts: ct, offers: []string{"x-webkit-deflate-frame", "foo; bar=1, permessage-deflate"},
			want: params(false, false, 15, 15), resp: "permessage-deflate"},
		{name: "first acceptable offer wins", opts: ct,
			offers: []string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"},
			want:   params(false, false, 10, 15), resp: "permessage-deflate; server_max_window_bits=10"},

		// Declined offers: the next one is tried, or nothing is negotiated.
		{name: "server_max_window_bits=7 declined", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits=7"}},
		{name: "server_max_window_bits=16 declined", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits=16"}},
		{name: "server_max_window_bits=abc declined", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits=abc"}},
		{name: "leading zero declined", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits=010"}},
		{name: "sign declined", opts: ct, offers: []string{"permessage-deflate; client_max_window_bits=+9"}},
		{name: "server_max_window_bits without value declined", opts: ct, offers: []string{"permessage-deflate; server_max_window_bits"}},
		{name: "client_max_window_bits=7 declined", opts: ct, offers: []string{"permessage-deflate; client_max_window_bits=7"}},
		{name: "no_context_takeover with value declined", opts: ct, offers: []string{"permessage-deflate; server_no_context_takeover=1"}},
		{name: "client_no_context_takeover with value declined", opts: ct, offers: []string{`permessage-deflate; client_no_context_takeover="x"`}},
		{name: "unknown parameter declined", opts: ct, offers: []string{"permessage-deflate; mem_level=8"}},
		{name: "duplicate parameter declined", opts: ct, offers: []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}},
		{name: "duplicate window declined", opts: ct, offers: []string{"permessage-deflate; client_max_window_bits=10; client_max_window_bits"}},
		{name: "fallback after invalid offer", opts: ct,
			offers: []string{"permessage-deflate; server_max_window_bits=16", "permessage-deflate; client_max_window_bits"},
			want:   params(false, false, 15, 15), resp: "permessage-deflate"},
		{name: "fallback after unknown parameter", opts: noct,
			offers: []string{"permessage-deflate; foo, permessage-deflate; server_max_window_bits=12"},
			want:   params(true, true, 12, 15), resp: "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"},

		// Malformed syntax fails the handshake.
		{name: "malformed list", opts: ct, offers: []string{"permessage-deflate; ; x"}, bad: true},
		{name: "malformed second header", opts: ct, offers: []string{"permessage-deflate", `permessage-deflate; a="`}, bad: true},
		{name: "malformed after acceptable offer", opts: ct, offers: []string{"permessage-deflate, =x"}, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, o := range tc.offers {
				h.Add("Sec-WebSocket-Extensions", o)
			}
			p, resp, err := tc.opts.negotiateServer(h)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %+v %q, want an error", p, resp)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp != tc.resp || !reflect.DeepEqual(p, tc.want) {
				t.Fatalf("got %+v %q\nwant %+v %q", p, resp, tc.want, tc.resp)
			}
			if p == nil {
				return
			}
			// Our response must be acceptable to our own client
			// offering the same thing, with the same outcome.
			if p2, err := parseResponseAsClient(tc.offers, resp); err != nil {
				t.Fatalf("response rejected by the client side: %v", err)
			} else if p2 != nil && !reflect.DeepEqual(p, p2) {
				t.Fatalf("client side read %+v, server decided %+v", p2, p)
			}
		})
	}
}

// parseResponseAsClient checks a server response the way acceptResponse
// does, for offers that our client could have sent (single offers made of
// the four parameters); it returns nil, nil for other offers.
func parseResponseAsClient(offers []string, resp string) (*deflateParams, error) {
	if len(offers) != 1 {
		return nil, nil
	}
	exts, err := parseExtensions(offers)
	if err != nil || len(exts) != 1 {
		return nil, nil
	}
	offer, ok := parseDeflateOffer(exts[0].params)
	if !ok || offer.serverNoContext != offer.clientNoContext || !offer.clientWindowOK {
		return nil, nil
	}
	o := CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: offer.serverMaxWindow, ClientMaxWindowBits: offer.clientMaxWindow}
	if offer.serverNoContext {
		o.Mode = CompressionNoContextTakeover
	}
	if o.offer() != offers[0] {
		return nil, nil // not an offer our client makes
	}
	return o.acceptResponse(resp)
}

func TestClientOffer(t *testing.T) {
	tests := []struct {
		opts CompressionOptions
		want string
	}{
		{CompressionOptions{}, ""},
		{CompressionOptions{Mode: CompressionContextTakeover}, "permessage-deflate; client_max_window_bits"},
		{CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 15, ClientMaxWindowBits: 99}, "permessage-deflate; client_max_window_bits"},
		{CompressionOptions{Mode: CompressionNoContextTakeover}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
		{CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 8},
			"permessage-deflate; server_max_window_bits=10; client_max_window_bits=8"},
	}
	for _, tc := range tests {
		if got := tc.opts.offer(); got != tc.want {
			t.Errorf("%+v: offer %q, want %q", tc.opts, got, tc.want)
		}
		// Our own server accepts our offer.
		if tc.want != "" {
			h := http.Header{"Sec-Websocket-Extensions": {tc.want}}
			srv := CompressionOptions{Mode: CompressionContextTakeover}
			sp, resp, err := srv.negotiateServer(h)
			if err != nil || sp == nil {
				t.Errorf("%q: our server declined our offer: %v", tc.want, err)
				continue
			}
			cp, err := tc.opts.acceptResponse(resp)
			if err != nil || !reflect.DeepEqual(cp, sp) {
				t.Errorf("%q -> %q: client read %+v, %v; server decided %+v", tc.want, resp, cp, err, sp)
			}
		}
	}
}

func TestClientAccept(t *testing.T) {
	ct := CompressionOptions{Mode: CompressionContextTakeover}
	noct := CompressionOptions{Mode: CompressionNoContextTakeover}
	bounded := CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 12}
	params := func(snct, cnct bool, sbits, cbits int) *deflateParams {
		return &deflateParams{serverNoContextTakeover: snct, clientNoContextTakeover: cnct, serverMaxWindowBits: sbits, clientMaxWindowBits: cbits}
	}
	tests := []struct {
		name string
		opts CompressionOptions
		resp string
		want *deflateParams
		bad  bool
	}{
		{name: "declined", opts: ct, resp: ""},
		{name: "declined, blank", opts: ct, resp: " , "},
		{name: "plain", opts: ct, resp: "permessage-deflate", want: params(false, false, 15, 15)},
		{name: "server_no_context_takeover", opts: ct, resp: "permessage-deflate; server_no_context_takeover", want: params(true, false, 15, 15)},
		{name: "client_no_context_takeover", opts: ct, resp: "permessage-deflate; client_no_context_takeover", want: params(false, true, 15, 15)},
		{name: "server window announced", opts: ct, resp: "permessage-deflate; server_max_window_bits=9", want: params(false, false, 9, 15)},
		{name: "client window imposed", opts: ct, resp: "permessage-deflate; client_max_window_bits=8", want: params(false, false, 15, 8)},
		{name: "quoted", opts: ct, resp: `permessage-deflate; client_max_window_bits="10"`, want: params(false, false, 15, 10)},
		{name: "no context mode", opts: noct, resp: "permessage-deflate; server_no_context_takeover; client_no_context_takeover", want: params(true, true, 15, 15)},
		{name: "no context mode, client one implied", opts: noct, resp: "permessage-deflate; server_no_context_takeover", want: params(true, true, 15, 15)},
		{name: "bounded: both echoed", opts: bounded, resp: "permessage-deflate; server_max_window_bits=10", want: params(false, false, 10, 12)},
		{name: "bounded: smaller", opts: bounded, resp: "permessage-deflate; server_max_window_bits=9; client_max_window_bits=11", want: params(false, false, 9, 11)},

		{name: "not offered", opts: CompressionOptions{}, resp: "permessage-deflate", bad: true},
		{name: "other extension", opts: ct, resp: "x-webkit-deflate-frame", bad: true},
		{name: "two extensions", opts: ct, resp: "permessage-deflate, permessage-deflate", bad: true},
		{name: "unknown parameter", opts: ct, resp: "permessage-deflate; mem_level=8", bad: true},
		{name: "duplicate parameter", opts: ct, resp: "permessage-deflate; client_no_context_takeover; client_no_context_takeover", bad: true},
		{name: "duplicate window", opts: ct, resp: "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", bad: true},
		{name: "no_context_takeover with value", opts: ct, resp: "permessage-deflate; server_no_context_takeover=yes", bad: true},
		{name: "window 7", opts: ct, resp: "permessage-deflate; server_max_window_bits=7", bad: true},
		{name: "window 16", opts: ct, resp: "permessage-deflate; client_max_window_bits=16", bad: true},
		{name: "window abc", opts: ct, resp: "permessage-deflate; server_max_window_bits=abc", bad: true},
		{name: "client window without value", opts: ct, resp: "permessage-deflate; client_max_window_bits", bad: true},
		{name: "server window without value", opts: ct, resp: "permessage-deflate; server_max_window_bits", bad: true},
		{name: "server window above our offer", opts: bounded, resp: "permessage-deflate; server_max_window_bits=11", bad: true},
		{name: "server window bound ignored", opts: bounded, resp: "permessage-deflate", bad: true},
		{name: "client window above our offer", opts: bounded, resp: "permessage-deflate; server_max_window_bits=10; client_max_window_bits=13", bad: true},
		{name: "no context takeover refused", opts: noct, resp: "permessage-deflate; client_no_context_takeover", bad: true},
		{name: "malformed", opts: ct, resp: "permessage-deflate; server_max_window_bits=", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.opts.acceptResponse(tc.resp)
			if tc.bad {
				if !errors.Is(err, errDeflateResponse) {
					t.Fatalf("got %+v, %v; want errDeflateResponse", p, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(p, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", p, err, tc.want)
			}
		})
	}
}

// TestNegotiatedEngines runs a negotiation and then messages in both
// directions with the engines each side would build from its parameters.
func TestNegotiatedEngines(t *testing.T) {
	for _, tc := range []struct {
		client, server CompressionOptions
	}{
		{CompressionOptions{Mode: CompressionContextTakeover}, CompressionOptions{Mode: CompressionContextTakeover}},
		{CompressionOptions{Mode: CompressionContextTakeover, ServerMaxWindowBits: 9, ClientMaxWindowBits: 11}, CompressionOptions{Mode: CompressionContextTakeover}},
		{CompressionOptions{Mode: CompressionContextTakeover}, CompressionOptions{Mode: CompressionNoContextTakeover, ClientMaxWindowBits: 8, ServerMaxWindowBits: 10}},
		{CompressionOptions{Mode: CompressionNoContextTakeover, ServerMaxWindowBits: 12}, CompressionOptions{Mode: CompressionContextTakeover, ClientMaxWindowBits: 13}},
	} {
		sp, resp, err := tc.server.negotiateServer(http.Header{"Sec-Websocket-Extensions": {tc.client.offer()}})
		if err != nil || sp == nil {
			t.Fatalf("%+v/%+v: not negotiated: %v", tc.client, tc.server, err)
		}
		cp, err := tc.client.acceptResponse(resp)
		if err != nil {
			t.Fatalf("%q: %v", resp, err)
		}
		msgs := testMessages(7)[:16]
		for _, dir := range []struct {
			send, recv *deflateParams
			sr, rr     role
		}{{sp, cp, roleServer, roleClient}, {cp, sp, roleClient, roleServer}} {
			sbits, sct := dir.send.sendParams(dir.sr)
			rbits, rct := dir.recv.receiveParams(dir.rr)
			if sbits > rbits || sct && !rct {
				t.Fatalf("%q: sender uses %d bits (context %v), receiver expects %d (context %v)", resp, sbits, sct, rbits, rct)
			}
			c := newCompressor(1, sbits, sct)
			d := newDecompressor(rbits, rct)
			var sent []byte
			for i, m := range msgs {
				z := c.compress(nil, m)
				if _, _, err := checkInflate(sent[max(0, len(sent)-(1<<rbits)):], z, 1<<rbits); err != nil {
					t.Fatalf("%q message %d: %v", resp, i, err)
				}
				got, err := d.decompress(nil, z, 1<<30)
				if err != nil || string(got) != string(m) {
					t.Fatalf("%q message %d: %v", resp, i, err)
				}
				if sct {
					sent = append(sent, m...)
				}
			}
		}
	}
}
