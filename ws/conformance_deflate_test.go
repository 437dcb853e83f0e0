package ws_test

// permessage-deflate (RFC 7692): parameter negotiation for both roles,
// interoperability with compress/flate, and the framing rules of section 6.

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/duplexhq/duplex/ws"
)

// windowChoices are the window bits tried for each parameter (0: absent).
var windowChoices = []int{0, 8, 9, 12, 15}

// checkResponse applies RFC 7692 section 7.1 to a server's answer resp to
// offer.
func checkResponse(offer, resp pmdParams) error {
	if offer.serverNoCtx && !resp.serverNoCtx {
		return errors.New("offer has server_no_context_takeover but the response does not (7.1.1.1)")
	}
	if offer.serverBits != 0 && (resp.serverBits == 0 || resp.serverBits > offer.serverBits) {
		return fmt.Errorf("offer server_max_window_bits=%d answered with %d (7.1.2.1)", offer.serverBits, resp.serverBits)
	}
	if resp.clientBits != 0 {
		if offer.clientBits == 0 && !offer.clientBitsNoValue {
			return errors.New("client_max_window_bits in the response but not in the offer (7.1.2.2)")
		}
		if offer.clientBits != 0 && resp.clientBits > offer.clientBits {
			return fmt.Errorf("offer client_max_window_bits=%d answered with %d (7.1.2.2)", offer.clientBits, resp.clientBits)
		}
	}
	return nil
}

// seriesText returns message i of a series: compressible text that repeats
// across messages, so context takeover produces references to earlier
// messages.
func seriesText(i, n int) []byte {
	var b strings.Builder
	for j := 0; b.Len() < n; j++ {
		fmt.Fprintf(&b, "message %d line %d: the quick brown fox jumps over the lazy dog. ", i, j%7)
	}
	return []byte(b.String()[:n])
}

// roundTripSeries echoes a series of messages of varied sizes in both
// directions, compressed where the negotiated window allows.
func (pr *pair) roundTripSeries() {
	pr.t.Helper()
	for i, n := range []int{0, 40, 200, 200, 3000, 40000, 300} {
		pr.echoes(opText, seriesText(i%3, n), sendOpts{})
		if n == 200 || n == 3000 {
			pr.echoes(opBinary, seriesText(i%2, n), sendOpts{fragments: 3})
		}
	}
}

func TestConformanceDeflateServerNegotiation(t *testing.T) {
	// Probe with a plain offer first, so that a server that never accepts
	// fails once rather than in each of the 120 offers below.
	harness{side: ourServer, mode: modes[1]}.start(t, config{}).closeNormally()
	for _, snct := range []bool{false, true} {
		for _, cnct := range []bool{false, true} {
			for _, sb := range windowChoices {
				for _, cb := range append([]int{-1}, windowChoices...) {
					offer := pmdParams{serverNoCtx: snct, clientNoCtx: cnct, serverBits: sb, clientBits: max(cb, 0), clientBitsNoValue: cb == -1}
					t.Run(offer.String(), func(t *testing.T) {
						s := offer.String()
						pr := harness{side: ourServer, mode: modes[1]}.start(t, config{offer: &s})
						if err := checkResponse(offer, *pr.negotiated); err != nil {
							t.Fatalf("offer %q answered %q: %v", s, pr.negotiated, err)
						}
						pr.roundTripSeries()
						pr.closeNormally()
					})
				}
			}
		}
	}
}

// TestConformanceDeflateServerBounds: the server's window options bound its
// answer.
func TestConformanceDeflateServerBounds(t *testing.T) {
	for _, offer := range []pmdParams{
		{},
		{clientBitsNoValue: true},
		{serverBits: 12, clientBits: 12},
		{serverBits: 9, clientBits: 9},
		{serverBits: 15, clientBitsNoValue: true},
	} {
		t.Run(offer.String(), func(t *testing.T) {
			s := offer.String()
			comp := ws.CompressionOptions{Mode: ws.CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 10}
			pr := harness{side: ourServer, mode: modes[1]}.start(t, config{offer: &s, compression: &comp})
			neg := *pr.negotiated
			if err := checkResponse(offer, neg); err != nil {
				t.Fatalf("answered %q: %v", neg, err)
			}
			if neg.serverBits > 10 {
				t.Errorf("server_max_window_bits=%d over the server's bound 10", neg.serverBits)
			}
			if offer.serverBits != 0 && neg.serverBits > min(offer.serverBits, 10) {
				t.Errorf("server_max_window_bits=%d, want <= %d", neg.serverBits, min(offer.serverBits, 10))
			}
			if (offer.clientBitsNoValue || offer.clientBits != 0) && (neg.clientBits == 0 || neg.clientBits > 10) {
				t.Errorf("client offered client_max_window_bits; answer %d, want 8..10", neg.clientBits)
			}
			pr.roundTripSeries()
			pr.closeNormally()
		})
	}
}

// TestConformanceDeflateServerDeclines: offers RFC 7692 says a server must
// decline (section 7.1: unknown or duplicate parameters, invalid values)
// get no extension, but the handshake itself succeeds; with several offers
// the first acceptable one is taken.
func TestConformanceDeflateServerDeclines(t *testing.T) {
	for _, tc := range []struct {
		offer  string
		accept bool
	}{
		{"permessage-deflate; foo", false},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", false},
		{"permessage-deflate; server_max_window_bits=7", false},
		{"permessage-deflate; server_max_window_bits=16", false},
		{"permessage-deflate; server_max_window_bits", false},
		{"permessage-deflate; server_max_window_bits=abc", false},
		{"permessage-deflate; client_max_window_bits=7", false},
		{"permessage-deflate; client_max_window_bits=16", false},
		{"permessage-deflate; client_no_context_takeover=1", false},
		{"x-webkit-deflate-frame", false},
		{"permessage-deflate; foo, permessage-deflate; client_no_context_takeover", true},
		{"x-unknown, permessage-deflate", true},
	} {
		t.Run(tc.offer, func(t *testing.T) {
			offer := tc.offer
			pr := harness{side: ourServer, mode: modes[1]}.start(t, config{offer: &offer, noCheckHandshake: true})
			if got := pr.negotiated != nil; got != tc.accept {
				t.Fatalf("offer %q: accepted=%v (response %q), want %v", tc.offer, got, pr.header.Values("Sec-WebSocket-Extensions"), tc.accept)
			}
			if tc.accept {
				if !pr.negotiated.clientNoCtx && strings.Contains(tc.offer, "client_no_context") {
					// Allowed (7.1.1.2 lets the server ignore the hint).
					t.Logf("server ignored client_no_context_takeover")
				}
				pr.roundTripSeries()
			}
			pr.closeNormally()
		})
	}
}

// clientConfigs are our client's compression options tried against every
// server response.
var clientConfigs = []ws.CompressionOptions{
	{Mode: ws.CompressionContextTakeover},
	{Mode: ws.CompressionNoContextTakeover},
	{Mode: ws.CompressionContextTakeover, ServerMaxWindowBits: 10, ClientMaxWindowBits: 10},
	{Mode: ws.CompressionContextTakeover, ServerMaxWindowBits: 8, ClientMaxWindowBits: 9},
}

// TestConformanceDeflateClientNegotiation answers our client's offer with
// every combination of parameters: answers RFC 7692 allows for that offer
// must be accepted and obeyed, the others must fail Dial.
func TestConformanceDeflateClientNegotiation(t *testing.T) {
	for _, copts := range clientConfigs {
		t.Run(fmt.Sprintf("mode%d_s%d_c%d", copts.Mode, copts.ServerMaxWindowBits, copts.ClientMaxWindowBits), func(t *testing.T) {
			// Probe once, so that a client that does not offer fails here
			// rather than in each of the 100 answers below.
			offered := false
			probe := func(_ testing.TB, offers []extension) string {
				offered = len(offers) > 0
				return ""
			}
			h := harness{side: ourClient, mode: mode{name: "custom", comp: copts.Mode}}
			if _, err := h.tryStartClient(t, config{respond: probe, compression: &copts, noCheckHandshake: true}); err != nil || !offered {
				t.Fatalf("our client with %+v: offered permessage-deflate: %v; Dial with no extension answered: %v", copts, offered, err)
			}
			for _, snct := range []bool{false, true} {
				for _, cnct := range []bool{false, true} {
					for _, sb := range windowChoices {
						for _, cb := range windowChoices {
							resp := pmdParams{serverNoCtx: snct, clientNoCtx: cnct, serverBits: sb, clientBits: cb}
							t.Run(resp.String(), func(t *testing.T) {
								clientNegotiationCase(t, copts, resp)
							})
						}
					}
				}
			}
		})
	}
}

func clientNegotiationCase(t *testing.T, copts ws.CompressionOptions, resp pmdParams) {
	var offerErr, legalErr error
	var offer pmdParams
	respond := func(t testing.TB, offers []extension) string {
		if len(offers) == 0 {
			offerErr = errors.New("no permessage-deflate offer")
			return ""
		}
		offer, offerErr = parsePMD(offers[0], false)
		if offerErr == nil {
			legalErr = checkResponse(offer, resp)
		}
		return resp.String()
	}
	h := harness{side: ourClient, mode: mode{name: "custom", comp: copts.Mode}}
	pr, err := h.tryStartClient(t, config{respond: respond, compression: &copts, noCheckHandshake: true})
	if offerErr != nil {
		t.Fatalf("our client's offer: %v", offerErr)
	}
	if err != nil {
		if legalErr == nil {
			t.Fatalf("Dial refused %q, a legal answer to its offer %q: %v", resp, offer, err)
		}
		if !errors.Is(err, ws.ErrBadHandshake) {
			t.Errorf("Dial refused illegal answer %q with %v, want ErrBadHandshake", resp, err)
		}
		return
	}
	if legalErr != nil {
		t.Fatalf("Dial accepted %q in answer to its offer %q: %v", resp, offer, legalErr)
	}
	// The options say what the client puts in its offer.
	if b := copts.ServerMaxWindowBits; b != 0 && b != 15 && offer.serverBits != b {
		t.Errorf("ServerMaxWindowBits %d, offer %q", b, offer)
	}
	if b := copts.ClientMaxWindowBits; b != 0 && b != 15 && (offer.clientBits == 0 || offer.clientBits > b) {
		t.Errorf("ClientMaxWindowBits %d, offer %q", b, offer)
	}
	if !pr.conn.Compressed() {
		t.Fatalf("Compressed() = false after negotiating %q", resp)
	}
	pr.roundTripSeries()
	pr.closeNormally()
}

// TestConformanceDeflateClientRejects: answers that are not a valid
// permessage-deflate response fail Dial (RFC 7692 section 5: the client
// must fail the connection).
func TestConformanceDeflateClientRejects(t *testing.T) {
	for _, answer := range []string{
		"permessage-deflate; foo",
		"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
		"permessage-deflate; server_max_window_bits=7",
		"permessage-deflate; server_max_window_bits=16",
		"permessage-deflate; server_max_window_bits",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; client_max_window_bits=x",
		"permessage-deflate; server_no_context_takeover=1",
		"permessage-deflate, permessage-deflate",
		"x-webkit-deflate-frame",
	} {
		t.Run(answer, func(t *testing.T) {
			copts := ws.CompressionOptions{Mode: ws.CompressionContextTakeover}
			respond := func(testing.TB, []extension) string { return answer }
			_, err := harness{side: ourClient, mode: modes[1]}.tryStartClient(t, config{respond: respond, compression: &copts, noCheckHandshake: true})
			if !errors.Is(err, ws.ErrBadHandshake) {
				t.Fatalf("Dial with answer %q: %v, want ErrBadHandshake", answer, err)
			}
		})
	}
	t.Run("notOffered", func(t *testing.T) {
		copts := ws.CompressionOptions{Mode: ws.CompressionDisabled}
		respond := func(testing.TB, []extension) string { return "permessage-deflate" }
		_, err := harness{side: ourClient, mode: modes[0]}.tryStartClient(t, config{respond: respond, compression: &copts, noCheckHandshake: true})
		if !errors.Is(err, ws.ErrBadHandshake) {
			t.Fatalf("Dial without compression accepted permessage-deflate: %v", err)
		}
	})
}

// TestConformanceDeflateInterop sends messages compressed by compress/flate
// in ways a conforming peer may: best compression, stored blocks, empty
// messages, and a final block (BFINAL=1, RFC 7692 section 7.2.3.3).
func TestConformanceDeflateInterop(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		if !h.compressed() {
			t.Skip("needs permessage-deflate")
		}
		for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.BestCompression, flate.HuffmanOnly} {
			t.Run(fmt.Sprint("level", level), func(t *testing.T) {
				pr := h.start(t, config{})
				for i, n := range []int{0, 1, 300, 70000} {
					p := seriesText(i, n)
					var buf bytes.Buffer
					fw, _ := flate.NewWriter(&buf, level)
					fw.Write(p)
					fw.Flush()
					body := bytes.TrimSuffix(buf.Bytes(), deflateTail)
					pr.peer.writeFrame(frame{fin: true, rsv: bitRSV1, op: opText, payload: body})
					if m := pr.peer.readMessage(); !bytes.Equal(m.payload, p) {
						t.Fatalf("level %d, %d bytes: echo differs", level, n)
					}
				}
				pr.closeNormally()
			})
		}
		t.Run("bfinal", func(t *testing.T) {
			pr := h.start(t, config{})
			p := seriesText(0, 500)
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
			fw.Write(p)
			fw.Close()
			pr.peer.writeFrame(frame{fin: true, rsv: bitRSV1, op: opText, payload: buf.Bytes()})
			if m := pr.peer.readMessage(); !bytes.Equal(m.payload, p) {
				t.Fatalf("BFINAL message echo differs")
			}
			pr.closeNormally()
		})
		t.Run("corrupt", func(t *testing.T) {
			pr := h.start(t, config{})
			// Block type 3 is reserved: not a valid deflate stream.
			pr.peer.writeFrame(frame{fin: true, rsv: bitRSV1, op: opBinary, payload: []byte{0x07, 0x00}})
			f := pr.peer.readFrame()
			code, _, _ := parseClose(f.payload)
			if f.op != opClose || (code != 1007 && code != 1002) {
				t.Fatalf("corrupt deflate data answered with %v code %d, want close 1007 or 1002", f, code)
			}
			pr.peer.finishClose(code)
			pr.wantResult(ws.StatusCode(code))
		})
	})
}
