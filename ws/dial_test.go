package ws

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fakeServer answers each connection's request with respond(req), written
// raw, and records the requests it got.
type fakeServer struct {
	addr     string
	requests chan *http.Request
}

func newFakeServer(t *testing.T, respond func(req *http.Request) string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{addr: ln.Addr().String(), requests: make(chan *http.Request, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(nc))
			if err == nil {
				select {
				case fs.requests <- req:
				default:
				}
				io.WriteString(nc, respond(req))
			}
			// Hold the connection until the client is done with it.
			io.Copy(io.Discard, nc)
			nc.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return fs
}

// goodResponse is a valid 101 for req, with extra header lines.
func goodResponse(req *http.Request, extra string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		computeAccept(req.Header.Get("Sec-WebSocket-Key")) + "\r\n" + extra + "\r\n"
}

// direct disables proxies so that tests do not depend on the environment.
func direct(*http.Request) (*url.URL, error) { return nil, nil }

func TestDialRequest(t *testing.T) {
	fs := newFakeServer(t, func(req *http.Request) string {
		return goodResponse(req, "Sec-WebSocket-Protocol: b\r\n")
	})
	opts := &DialOptions{
		Proxy:        direct,
		Subprotocols: []string{"a", "b"},
		Header:       http.Header{"Origin": {"http://app.example"}, "x-custom": {"1", "2"}},
		ReadLimit:    99,
	}
	nc, br, cfg, resp, err := clientHandshake(context.Background(), "ws://user:pw@"+fs.addr+"/path?q=1", opts)
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer nc.Close()
	req := <-fs.requests
	checks := []struct{ got, want string }{
		{req.Method, "GET"},
		{req.Proto, "HTTP/1.1"},
		{req.RequestURI, "/path?q=1"},
		{req.Host, fs.addr},
		{req.Header.Get("Upgrade"), "websocket"},
		{req.Header.Get("Connection"), "Upgrade"},
		{req.Header.Get("Sec-WebSocket-Version"), "13"},
		{req.Header.Get("Sec-WebSocket-Protocol"), "a, b"},
		{req.Header.Get("Origin"), "http://app.example"},
		{strings.Join(req.Header.Values("X-Custom"), ","), "1,2"},
		{req.Header.Get("Authorization"), "Basic dXNlcjpwdw=="},
		{fmt.Sprint(req.Header["Sec-Websocket-Extensions"]), "[]"},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: request has %q, want %q", i, c.got, c.want)
		}
	}
	if !validKey(req.Header.Get("Sec-WebSocket-Key")) {
		t.Errorf("bad key %q", req.Header.Get("Sec-WebSocket-Key"))
	}
	if resp.StatusCode != 101 || resp.Body != http.NoBody {
		t.Errorf("resp = %d with body %v", resp.StatusCode, resp.Body)
	}
	if cfg.role != roleClient || cfg.subprotocol != "b" || cfg.readLimit != 99 || cfg.deflate != nil {
		t.Errorf("cfg = %+v", cfg)
	}
	if br != nil {
		t.Errorf("idle client kept its bufio.Reader")
	}
}

func TestDialHostOverrideAndDefaultPort(t *testing.T) {
	fs := newFakeServer(t, func(req *http.Request) string { return goodResponse(req, "") })
	_, port, _ := net.SplitHostPort(fs.addr)
	dialed := make(chan string, 1)
	opts := &DialOptions{
		Proxy: direct,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed <- addr
			var d net.Dialer
			return d.DialContext(ctx, network, fs.addr)
		},
	}
	nc, _, _, _, err := clientHandshake(context.Background(), "ws://example.test", opts)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if got := <-dialed; got != "example.test:80" {
		t.Errorf("dialed %q, want example.test:80", got)
	}
	if req := <-fs.requests; req.Host != "example.test" || req.RequestURI != "/" {
		t.Errorf("Host %q, RequestURI %q; want example.test, /", req.Host, req.RequestURI)
	}
	opts.Header = http.Header{"Host": {"virtual.example"}}
	nc, _, _, _, err = clientHandshake(context.Background(), "ws://127.0.0.1:"+port, opts)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	<-dialed
	if req := <-fs.requests; req.Host != "virtual.example" {
		t.Errorf("Host %q, want the override virtual.example", req.Host)
	}
}

func TestDialBadResponses(t *testing.T) {
	bigBody := strings.Repeat("b", 10000)
	tests := []struct {
		name    string
		opts    DialOptions
		respond func(req *http.Request) string
		status  int    // expected resp.StatusCode, 0 for no response
		body    string // expected resp body
		errText string
	}{
		{"refused", DialOptions{}, func(*http.Request) string {
			return "HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\ngo away"
		}, 403, "go away", `server answered "403 Forbidden", want 101`},
		{"big error body", DialOptions{}, func(*http.Request) string {
			return fmt.Sprintf("HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s", len(bigBody), bigBody)
		}, 500, bigBody[:maxErrorBodyBytes], "want 101"},
		{"200", DialOptions{}, func(*http.Request) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
		}, 200, "hi", "want 101"},
		{"wrong accept", DialOptions{}, func(*http.Request) string {
			return goodResponse(&http.Request{Header: http.Header{"Sec-Websocket-Key": {testKey}}}, "")
		}, 101, "", "wrong Sec-WebSocket-Accept"},
		{"two accepts", DialOptions{}, func(req *http.Request) string {
			return goodResponse(req, "Sec-WebSocket-Accept: "+computeAccept(req.Header.Get("Sec-WebSocket-Key"))+"\r\n")
		}, 101, "", "wrong Sec-WebSocket-Accept"},
		{"missing upgrade", DialOptions{}, func(req *http.Request) string {
			return strings.Replace(goodResponse(req, ""), "Upgrade: websocket\r\n", "", 1)
		}, 101, "", `lacks "Upgrade: websocket"`},
		{"missing connection", DialOptions{}, func(req *http.Request) string {
			return strings.Replace(goodResponse(req, ""), "Connection: Upgrade\r\n", "", 1)
		}, 101, "", `lacks "Connection: Upgrade"`},
		{"unoffered subprotocol", DialOptions{Subprotocols: []string{"a"}}, func(req *http.Request) string {
			return goodResponse(req, "Sec-WebSocket-Protocol: b\r\n")
		}, 101, "", `subprotocol "b", which was not offered`},
		{"subprotocol when none offered", DialOptions{}, func(req *http.Request) string {
			return goodResponse(req, "Sec-WebSocket-Protocol: a\r\n")
		}, 101, "", `subprotocol "a", which was not offered`},
		{"two subprotocols", DialOptions{Subprotocols: []string{"a", "b"}}, func(req *http.Request) string {
			return goodResponse(req, "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n")
		}, 101, "", `subprotocol "a, b", which was not offered`},
		{"unoffered extension", DialOptions{}, func(req *http.Request) string {
			return goodResponse(req, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
		}, 101, "", `extension "permessage-deflate", which was not offered`},
		{"oversized head", DialOptions{MaxResponseHeaderBytes: 512}, func(req *http.Request) string {
			return goodResponse(req, "X-Big: "+strings.Repeat("x", 1000)+"\r\n")
		}, 0, "", "response head larger than 512 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, tt.respond)
			opts := tt.opts
			opts.Proxy = direct
			c, resp, err := Dial(context.Background(), "ws://"+fs.addr+"/", &opts)
			if c != nil || !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("Dial = %v, %v; want ErrBadHandshake", c, err)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not say %q", err, tt.errText)
			}
			if tt.status == 0 {
				if resp != nil {
					t.Errorf("resp = %v, want nil", resp.Status)
				}
				return
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("resp = %v, want status %d", resp, tt.status)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != tt.body {
				t.Errorf("body = %d bytes (%v), want %d bytes", len(body), err, len(tt.body))
			}
		})
	}
}

func TestDialNetworkFailures(t *testing.T) {
	t.Run("closed without response", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			nc, err := ln.Accept()
			if err == nil {
				bufio.NewReader(nc).ReadString('\n')
				nc.Close()
			}
		}()
		_, resp, err := Dial(context.Background(), "ws://"+ln.Addr().String(), &DialOptions{Proxy: direct})
		if err == nil || errors.Is(err, ErrBadHandshake) || resp != nil {
			t.Fatalf("Dial = %v, %v; want a network error and no response", resp, err)
		}
	})
	t.Run("handshake timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			if nc, err := ln.Accept(); err == nil {
				accepted <- nc // never answers
			}
		}()
		_, _, err = Dial(context.Background(), "ws://"+ln.Addr().String(), &DialOptions{Proxy: direct, HandshakeTimeout: 100 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial = %v, want context.DeadlineExceeded", err)
		}
		(<-accepted).Close()
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, _, err = Dial(context.Background(), "ws://"+addr, &DialOptions{Proxy: direct})
		if err == nil || !strings.Contains(err.Error(), "ws: dial ws://"+addr) {
			t.Fatalf("Dial = %v, want a dial error naming the URL", err)
		}
	})
}

func TestDialInvalidArguments(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		opts    *DialOptions
		errText string
	}{
		{"scheme", "ftp://example.test/", nil, "scheme must be ws or wss"},
		{"no scheme", "example.test/ws", nil, "scheme must be ws or wss"},
		{"no host", "ws:///path", nil, "no host"},
		{"fragment", "ws://example.test/#frag", nil, "fragment not allowed"},
		{"empty fragment", "ws://example.test/#", nil, "fragment not allowed"},
		{"unparsable", "ws://[::1", nil, "bad URL"},
		{"own header", "ws://example.test/", &DialOptions{Header: http.Header{"sec-websocket-key": {"x"}}}, "must not set Sec-Websocket-Key"},
		{"own header Connection", "ws://example.test/", &DialOptions{Header: http.Header{"Connection": {"close"}}}, "must not set Connection"},
		{"bad subprotocol", "ws://example.test/", &DialOptions{Subprotocols: []string{"a b"}}, `"a b" is not a valid subprotocol name`},
		{"bad proxy scheme", "ws://example.test/", &DialOptions{Proxy: http.ProxyURL(&url.URL{Scheme: "socks5", Host: "127.0.0.1:1"})}, `unsupported scheme "socks5"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := Dial(context.Background(), tt.url, tt.opts)
			if c != nil || resp != nil || err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("Dial = %v, %v, %v; want an error saying %q", c, resp, err, tt.errText)
			}
		})
	}
}

// TestDialAcceptRoundTrip runs the client handshake against the server
// handshake (up to newConn) and checks both agree, and that bytes flow.
func TestDialAcceptRoundTrip(t *testing.T) {
	srv, results := handshakeServer(t, &AcceptOptions{Subprotocols: []string{"v2", "v1"}}, nil)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	nc, br, cfg, resp, err := clientHandshake(context.Background(), u,
		&DialOptions{Proxy: direct, Subprotocols: []string{"v1", "v2"}, Header: http.Header{"Origin": {srv.URL}}})
	if err != nil {
		t.Fatalf("clientHandshake: %v", err)
	}
	defer nc.Close()
	res := recvResult(t, results)
	if res.err != nil {
		t.Fatalf("serverHandshake: %v", res.err)
	}
	if cfg.subprotocol != "v2" || res.cfg.subprotocol != "v2" || resp.Header.Get("Sec-WebSocket-Protocol") != "v2" {
		t.Errorf("subprotocols: client %q, server %q", cfg.subprotocol, res.cfg.subprotocol)
	}
	if br != nil || res.br != nil {
		t.Errorf("idle connections kept bufio.Readers")
	}
	checkPipe(t, nc, res.nc)
}

// checkPipe checks that bytes flow both ways between two connected ends.
func checkPipe(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, p := range [][2]net.Conn{{a, b}, {b, a}} {
		p[1].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(p[0], "ping"); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(p[1], got); err != nil || string(got) != "ping" {
			t.Fatalf("read %q, %v; want ping", got, err)
		}
	}
}
