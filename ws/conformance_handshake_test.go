package ws_test

// The opening handshake (RFC 6455 section 4): what Accept answers to good
// and bad requests, and what Dial refuses in a server's answer.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// rfcKey and rfcAccept are the example of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func TestConformanceAcceptKeyVector(t *testing.T) {
	if got := acceptFor(rfcKey); got != rfcAccept {
		t.Fatalf("test helper acceptFor(%q) = %q, want %q", rfcKey, got, rfcAccept)
	}
}

// rawRequest is a handshake request line and headers, written verbatim.
type rawRequest struct {
	method, proto string
	headers       [][2]string
}

func goodRequest() rawRequest {
	return rawRequest{method: "GET", proto: "HTTP/1.1", headers: [][2]string{
		{"Host", "HOST"},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", rfcKey},
		{"Sec-WebSocket-Version", "13"},
	}}
}

// with returns r with header name set to value ("" deletes it).
func (r rawRequest) with(name, value string) rawRequest {
	var hs [][2]string
	done := false
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			if value != "" && !done {
				hs = append(hs, [2]string{h[0], value})
			}
			done = true
			continue
		}
		hs = append(hs, h)
	}
	if !done && value != "" {
		hs = append(hs, [2]string{name, value})
	}
	r.headers = hs
	return r
}

// also appends a second header line.
func (r rawRequest) also(name, value string) rawRequest {
	r.headers = append(slices.Clone(r.headers), [2]string{name, value})
	return r
}

// send writes r to addr (HOST in values becomes addr) and reads the
// response head.
func (r rawRequest) send(t *testing.T, addr string) *http.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(ioTimeout))
	var b strings.Builder
	fmt.Fprintf(&b, "%s / %s\r\n", r.method, r.proto)
	for _, h := range r.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], strings.ReplaceAll(h[1], "HOST", addr))
	}
	b.WriteString("\r\n")
	if _, err := nc.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), &http.Request{Method: r.method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp
}

func TestConformanceAcceptRequests(t *testing.T) {
	g := goodRequest
	for _, tc := range []struct {
		name     string
		req      rawRequest
		opts     ws.AcceptOptions
		status   []int // acceptable statuses, first preferred
		protocol string
		errIs    error
	}{
		{name: "valid", req: g(), status: []int{101}},
		{name: "connectionList", req: g().with("Connection", "keep-alive, Upgrade"), status: []int{101}},
		{name: "tokenCase", req: g().with("Upgrade", "WebSocket").with("Connection", "upgrade"), status: []int{101}},
		{name: "post", req: func() rawRequest { r := g(); r.method = "POST"; return r }(), status: []int{405, 400}, errIs: ws.ErrBadHandshake},
		{name: "http10", req: func() rawRequest { r := g(); r.proto = "HTTP/1.0"; return r }(), status: []int{400, 505, 426}, errIs: ws.ErrBadHandshake},
		{name: "noUpgrade", req: g().with("Upgrade", ""), status: []int{400, 426}, errIs: ws.ErrBadHandshake},
		{name: "upgradeH2C", req: g().with("Upgrade", "h2c"), status: []int{400, 426}, errIs: ws.ErrBadHandshake},
		{name: "noConnection", req: g().with("Connection", ""), status: []int{400, 426}, errIs: ws.ErrBadHandshake},
		{name: "connectionKeepAlive", req: g().with("Connection", "keep-alive"), status: []int{400, 426}, errIs: ws.ErrBadHandshake},
		{name: "noKey", req: g().with("Sec-WebSocket-Key", ""), status: []int{400}, errIs: ws.ErrBadHandshake},
		{name: "shortKey", req: g().with("Sec-WebSocket-Key", "abc"), status: []int{400}, errIs: ws.ErrBadHandshake},
		{name: "key15Bytes", req: g().with("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), status: []int{400}, errIs: ws.ErrBadHandshake},
		{name: "key17Bytes", req: g().with("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="), status: []int{400}, errIs: ws.ErrBadHandshake},
		{name: "keyNotBase64", req: g().with("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!=="), status: []int{400}, errIs: ws.ErrBadHandshake},
		{name: "twoKeys", req: g().also("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="), status: []int{400}, errIs: ws.ErrBadHandshake},
		{name: "noVersion", req: g().with("Sec-WebSocket-Version", ""), status: []int{426, 400}, errIs: ws.ErrBadHandshake},
		{name: "version8", req: g().with("Sec-WebSocket-Version", "8"), status: []int{426}, errIs: ws.ErrBadHandshake},
		{name: "version14", req: g().with("Sec-WebSocket-Version", "14"), status: []int{426}, errIs: ws.ErrBadHandshake},
		{name: "originSameHost", req: g().with("Origin", "http://HOST"), status: []int{101}},
		{name: "originCrossSite", req: g().with("Origin", "http://evil.example"), status: []int{403}, errIs: ws.ErrOriginRefused},
		{name: "originNull", req: g().with("Origin", "null"), status: []int{403}, errIs: ws.ErrOriginRefused},
		{name: "originPattern", req: g().with("Origin", "https://chat.example.com"), opts: ws.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, status: []int{101}},
		{name: "originPatternMiss", req: g().with("Origin", "https://example.org"), opts: ws.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, status: []int{403}, errIs: ws.ErrOriginRefused},
		{name: "originSkipVerify", req: g().with("Origin", "http://evil.example"), opts: ws.AcceptOptions{InsecureSkipVerifyOrigin: true}, status: []int{101}},
		{name: "subprotocolServerOrder", req: g().with("Sec-WebSocket-Protocol", "b, a"), opts: ws.AcceptOptions{Subprotocols: []string{"a", "b"}}, status: []int{101}, protocol: "a"},
		{name: "subprotocolOne", req: g().with("Sec-WebSocket-Protocol", "x, b"), opts: ws.AcceptOptions{Subprotocols: []string{"a", "b"}}, status: []int{101}, protocol: "b"},
		{name: "subprotocolNone", req: g().with("Sec-WebSocket-Protocol", "x"), opts: ws.AcceptOptions{Subprotocols: []string{"a"}}, status: []int{101}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acceptErr := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := ws.Accept(w, r, &tc.opts)
				acceptErr <- err
				if err == nil {
					c.CloseNow()
				}
			}))
			defer srv.Close()
			resp := tc.req.send(t, srv.Listener.Addr().String())
			resp.Body.Close()
			if !slices.Contains(tc.status, resp.StatusCode) {
				t.Fatalf("status %d, want one of %v", resp.StatusCode, tc.status)
			}
			if resp.StatusCode != tc.status[0] {
				t.Logf("status %d allowed, though %d is preferred", resp.StatusCode, tc.status[0])
			}
			var err error
			select {
			case err = <-acceptErr:
			case <-time.After(ioTimeout):
				t.Fatal("Accept did not return")
			}
			switch resp.StatusCode {
			case 101:
				if err != nil {
					t.Fatalf("101 sent but Accept returned %v", err)
				}
				if got := resp.Header.Get("Sec-WebSocket-Accept"); got != rfcAccept {
					t.Errorf("Sec-WebSocket-Accept %q, want %q", got, rfcAccept)
				}
				if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !headerHas(resp.Header, "Connection", "upgrade") {
					t.Errorf("Upgrade %q, Connection %q", resp.Header.Get("Upgrade"), resp.Header.Get("Connection"))
				}
				if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tc.protocol {
					t.Errorf("Sec-WebSocket-Protocol %q, want %q", got, tc.protocol)
				}
				if resp.Header.Get("Sec-WebSocket-Extensions") != "" {
					t.Errorf("extension answered without compression: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
				}
			case 426:
				// RFC 6455 section 4.4: name the versions we speak.
				if v := resp.Header.Get("Sec-WebSocket-Version"); v != "13" {
					t.Errorf("426 with Sec-WebSocket-Version %q, want 13", v)
				}
				fallthrough
			default:
				if !errors.Is(err, tc.errIs) {
					t.Errorf("Accept returned %v, want %v", err, tc.errIs)
				}
			}
		})
	}
}

// TestConformanceDialResponses: RFC 6455 section 4.1 lists what a client
// must check in the server's answer; any failure fails Dial.
func TestConformanceDialResponses(t *testing.T) {
	type answer func(key string) string
	ok := func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n"
	}
	for _, tc := range []struct {
		name   string
		answer answer
		opts   ws.DialOptions
		ok     bool
	}{
		{name: "valid", answer: ok, ok: true},
		{name: "caseInsensitive", answer: func(k string) string {
			return "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: " + acceptFor(k) + "\r\n"
		}, ok: true},
		{name: "status200", answer: func(k string) string {
			return strings.Replace(ok(k), "101 Switching Protocols", "200 OK", 1) + "Content-Length: 0\r\n"
		}},
		{name: "status403", answer: func(string) string { return "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n" }},
		{name: "wrongAccept", answer: func(k string) string { return strings.Replace(ok(k), acceptFor(k), rfcAccept, 1) }},
		{name: "noAccept", answer: func(k string) string {
			return strings.Replace(ok(k), "Sec-WebSocket-Accept: "+acceptFor(k)+"\r\n", "", 1)
		}},
		{name: "noUpgrade", answer: func(k string) string { return strings.Replace(ok(k), "Upgrade: websocket\r\n", "", 1) }},
		{name: "upgradeOther", answer: func(k string) string { return strings.Replace(ok(k), "Upgrade: websocket", "Upgrade: h2c", 1) }},
		{name: "noConnection", answer: func(k string) string { return strings.Replace(ok(k), "Connection: Upgrade\r\n", "", 1) }},
		{name: "protocolNotOffered", answer: func(k string) string { return ok(k) + "Sec-WebSocket-Protocol: chat\r\n" }},
		{name: "protocolOffered", answer: func(k string) string { return ok(k) + "Sec-WebSocket-Protocol: b\r\n" }, opts: ws.DialOptions{Subprotocols: []string{"a", "b"}}, ok: true},
		{name: "protocolOtherThanOffered", answer: func(k string) string { return ok(k) + "Sec-WebSocket-Protocol: c\r\n" }, opts: ws.DialOptions{Subprotocols: []string{"a", "b"}}},
		{name: "extensionNotOffered", answer: func(k string) string { return ok(k) + "Sec-WebSocket-Extensions: x-foo\r\n" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				nc, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(ioTimeout))
				req, err := http.ReadRequest(bufio.NewReader(nc))
				if err != nil {
					served <- err
					return
				}
				_, err = nc.Write([]byte(tc.answer(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"))
				served <- err
				// Hold the connection until our client closes it.
				nc.Read(make([]byte, 1))
			}()
			defer func() {
				select {
				case <-exited:
				case <-time.After(2 * ioTimeout):
					t.Errorf("our client did not close the TCP connection")
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			c, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String()+"/", &tc.opts)
			if c != nil {
				defer c.CloseNow()
			}
			if serr := <-served; serr != nil {
				t.Fatalf("raw server: %v", serr)
			}
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Dial refused a valid answer: %v", err)
			case !tc.ok && err == nil:
				t.Fatalf("Dial accepted an invalid answer")
			case !tc.ok && !errors.Is(err, ws.ErrBadHandshake):
				t.Fatalf("Dial: %v, want ErrBadHandshake", err)
			}
			if tc.ok && tc.opts.Subprotocols != nil && c.Subprotocol() != "b" {
				t.Errorf("Subprotocol() = %q, want b", c.Subprotocol())
			}
		})
	}
}

// TestConformanceAcceptConn runs a server built on AcceptConn (no
// net/http) through a round trip series, a protocol error and a close, in
// every compression mode.
func TestConformanceAcceptConn(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			h := harness{side: ourServer, mode: m}
			pr := h.start(t, config{acceptConn: true})
			pr.roundTripSeries()
			pr.closeNormally()

			pr = h.start(t, config{acceptConn: true})
			pr.peer.writeFrame(frame{fin: true, op: 0x5})
			pr.failsWith(ws.StatusProtocolError, ws.ErrProtocol)
		})
	}
}

// TestConformanceClientRandomness: every Dial sends a fresh
// Sec-WebSocket-Key (RFC 6455 section 4.1: randomly selected for each
// connection) and every frame from our client a fresh masking key (section
// 5.3: unpredictable), so no two of either repeat here.
func TestConformanceClientRandomness(t *testing.T) {
	h := harness{side: ourClient, mode: modes[0]}
	keys := map[string]bool{}
	masks := map[[4]byte]bool{}
	const conns, msgs = 5, 20
	for range conns {
		pr := h.start(t, config{})
		keys[pr.header.Get("Sec-WebSocket-Key")] = true
		for i := range msgs {
			pr.peer.writeFrame(frame{fin: true, op: opBinary, payload: []byte{byte(i)}})
			masks[pr.peer.readFrame().key] = true
		}
		pr.closeNormally()
	}
	if len(keys) != conns {
		t.Errorf("%d connections used %d distinct Sec-WebSocket-Key values", conns, len(keys))
	}
	// 32-bit keys: a repeat among 100 random ones has odds of about 1e-6.
	if len(masks) != conns*msgs {
		t.Errorf("%d frames used %d distinct masking keys", conns*msgs, len(masks))
	}
}
