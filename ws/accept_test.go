package ws

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strings"
	"testing"
	"time"
)

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// newUpgradeRequest returns a valid handshake request for Accept.
func newUpgradeRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/ws", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Key", testKey)
	r.Header.Set("Sec-WebSocket-Version", "13")
	return r
}

func TestAcceptRejects(t *testing.T) {
	tests := []struct {
		name   string
		opts   *AcceptOptions
		mutate func(r *http.Request)
		status int
		reason string
		kind   error // nil: neither handshake sentinel (server-side failure)
		header [2]string
	}{
		{"POST", nil, func(r *http.Request) { r.Method = http.MethodPost }, 405, "method must be GET", ErrBadHandshake, [2]string{"Allow", "GET"}},
		{"CONNECT", nil, func(r *http.Request) { r.Method = http.MethodConnect }, 405, "method must be GET", ErrBadHandshake, [2]string{}},
		{"HTTP/1.0", nil, func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, 400, "HTTP/1.1 or later required", ErrBadHandshake, [2]string{}},
		{"no Host", nil, func(r *http.Request) { r.Host = "" }, 400, "missing Host", ErrBadHandshake, [2]string{}},
		{"no Upgrade", nil, func(r *http.Request) { r.Header.Del("Upgrade") }, 400, `missing "Upgrade: websocket"`, ErrBadHandshake, [2]string{}},
		{"Upgrade h2c", nil, func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, 400, `missing "Upgrade: websocket"`, ErrBadHandshake, [2]string{}},
		{"no Connection", nil, func(r *http.Request) { r.Header.Del("Connection") }, 400, `missing "Connection: Upgrade"`, ErrBadHandshake, [2]string{}},
		{"Connection keep-alive", nil, func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, 400, `missing "Connection: Upgrade"`, ErrBadHandshake, [2]string{}},
		{"no version", nil, func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, 426, "unsupported Sec-WebSocket-Version (want 13)", ErrBadHandshake, [2]string{"Sec-WebSocket-Version", "13"}},
		{"version 8", nil, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, 426, "unsupported Sec-WebSocket-Version (want 13)", ErrBadHandshake, [2]string{"Sec-WebSocket-Version", "13"}},
		{"two versions", nil, func(r *http.Request) { r.Header.Add("Sec-WebSocket-Version", "8") }, 426, "unsupported Sec-WebSocket-Version (want 13)", ErrBadHandshake, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no key", nil, func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes", ErrBadHandshake, [2]string{}},
		{"short key", nil, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "c2hvcnQ=") }, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes", ErrBadHandshake, [2]string{}},
		{"key not base64", nil, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==") }, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes", ErrBadHandshake, [2]string{}},
		{"two keys", nil, func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", testKey) }, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes", ErrBadHandshake, [2]string{}},
		{"body", nil, func(r *http.Request) { r.ContentLength = 5; r.Body = io.NopCloser(strings.NewReader("hello")) }, 400, "handshake request must not have a body", ErrBadHandshake, [2]string{}},
		{"chunked body", nil, func(r *http.Request) { r.ContentLength = -1; r.TransferEncoding = []string{"chunked"} }, 400, "handshake request must not have a body", ErrBadHandshake, [2]string{}},
		{"cross origin", nil, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 403, `origin "https://evil.example" not allowed`, ErrOriginRefused, [2]string{}},
		{"bad origin pattern", &AcceptOptions{OriginPatterns: []string{"[a-"}}, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 500, "internal error", nil, [2]string{}},
		// Valid handshakes fail at the hijack: a recorder cannot be hijacked.
		{"cannot hijack", nil, func(r *http.Request) {}, 500, "websocket: cannot take over this connection", nil, [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newUpgradeRequest()
			tt.mutate(r)
			w := httptest.NewRecorder()
			c, err := Accept(w, r, tt.opts)
			if c != nil || err == nil {
				t.Fatalf("Accept = %v, %v; want an error", c, err)
			}
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.reason {
				t.Errorf("body = %q, want %q", got, tt.reason)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v does not wrap %v", err, tt.kind)
			}
			if tt.kind == nil && (errors.Is(err, ErrBadHandshake) || errors.Is(err, ErrOriginRefused)) {
				t.Errorf("server-side failure %v blames the client", err)
			}
			if tt.header[0] != "" && w.Header().Get(tt.header[0]) != tt.header[1] {
				t.Errorf("header %s = %q, want %q", tt.header[0], w.Header().Get(tt.header[0]), tt.header[1])
			}
		})
	}
}

func TestAcceptOriginPolicy(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		origins  []string
		patterns []string
		skip     bool
		want     error // nil: allowed
	}{
		{"no Origin (not a browser)", "example.com", nil, nil, false, nil},
		{"same host", "example.com", []string{"http://example.com"}, nil, false, nil},
		{"same host, other scheme", "example.com", []string{"https://example.com"}, nil, false, nil},
		{"same host, case", "Example.COM", []string{"https://EXAMPLE.com"}, nil, false, nil},
		{"same host, default port in Host", "example.com:443", []string{"https://example.com"}, nil, false, nil},
		{"same host and port", "example.com:8080", []string{"http://example.com:8080"}, nil, false, nil},
		{"other port", "example.com", []string{"http://example.com:8080"}, nil, false, ErrOriginRefused},
		{"wrong default port", "example.com:443", []string{"http://example.com"}, nil, false, ErrOriginRefused},
		{"other host", "example.com", []string{"https://evil.example"}, nil, false, ErrOriginRefused},
		{"suffix trick", "example.com", []string{"https://example.com.evil.example"}, nil, false, ErrOriginRefused},
		{"null", "example.com", []string{"null"}, nil, false, ErrOriginRefused},
		{"not a URL", "example.com", []string{"example.com"}, nil, false, ErrOriginRefused},
		{"two Origins", "example.com", []string{"http://example.com", "http://example.com"}, nil, false, ErrOriginRefused},
		{"pattern", "api.example.com", []string{"https://chat.example.com"}, []string{"*.example.com"}, false, nil},
		{"pattern case-insensitive", "api.example.com", []string{"https://Chat.Example.COM"}, []string{"*.EXAMPLE.com"}, false, nil},
		{"pattern needs a subdomain", "api.example.com", []string{"https://example.com"}, []string{"*.example.com"}, false, ErrOriginRefused},
		{"pattern does not cover port", "api.example.com", []string{"https://chat.example.com:8443"}, []string{"*.example.com"}, false, ErrOriginRefused},
		{"pattern with port", "api.example.com", []string{"http://localhost:3000"}, []string{"localhost:*"}, false, nil},
		{"pattern with scheme", "api.example.com", []string{"https://chat.example.com"}, []string{"https://*.example.com"}, false, nil},
		{"pattern with scheme, other scheme", "api.example.com", []string{"http://chat.example.com"}, []string{"https://*.example.com"}, false, ErrOriginRefused},
		{"second pattern", "api.example.com", []string{"https://b.test"}, []string{"a.test", "b.test"}, false, nil},
		{"skip verify", "example.com", []string{"https://evil.example"}, nil, true, nil},
		{"skip verify, null", "example.com", []string{"null"}, nil, true, nil},
		{"bad pattern", "example.com", []string{"https://evil.example"}, []string{"[x-"}, false, path.ErrBadPattern},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newUpgradeRequest()
			r.Host = tt.host
			if tt.origins != nil {
				r.Header["Origin"] = tt.origins
			}
			err := checkOrigin(r, &AcceptOptions{OriginPatterns: tt.patterns, InsecureSkipVerifyOrigin: tt.skip})
			if tt.want == nil && err != nil {
				t.Fatalf("checkOrigin = %v, want allowed", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("checkOrigin = %v, want %v", err, tt.want)
			}
			var herr *handshakeError
			if errors.Is(tt.want, ErrOriginRefused) && (!errors.As(err, &herr) || herr.status != http.StatusForbidden) {
				t.Fatalf("refusal %v is not a 403", err)
			}
		})
	}
}

func TestAcceptSelectSubprotocol(t *testing.T) {
	tests := []struct {
		name    string
		server  []string
		offered []string // header values
		want    string
	}{
		{"server speaks none", nil, []string{"chat"}, ""},
		{"client offers none", []string{"chat"}, nil, ""},
		{"server preference wins", []string{"a", "b"}, []string{"b, a"}, "a"},
		{"server preference wins, other order", []string{"y", "x"}, []string{"x,y"}, "y"},
		{"several headers", []string{"a", "b"}, []string{"c", "b"}, "b"},
		{"no overlap", []string{"a"}, []string{"b, c"}, ""},
		{"case-sensitive", []string{"chat"}, []string{"Chat"}, ""},
		{"spaces and empties", []string{"v2"}, []string{" , v1 ,\tv2 ,"}, "v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.offered != nil {
				h["Sec-Websocket-Protocol"] = tt.offered
			}
			if got := selectSubprotocol(h, tt.server); got != tt.want {
				t.Fatalf("selectSubprotocol = %q, want %q", got, tt.want)
			}
		})
	}
}

// serverResult is what a test server's handshake produced.
type serverResult struct {
	nc  net.Conn
	br  *bufio.Reader
	cfg connConfig
	req *http.Request
	err error
}

func (s serverResult) close() {
	if s.nc != nil {
		s.nc.Close()
	}
}

// handshakeServer starts an httptest server whose handler runs the server
// handshake (up to newConn) and reports the result. The handler may set
// response headers first with setHeader.
func handshakeServer(t *testing.T, opts *AcceptOptions, setHeader http.Header) (*httptest.Server, <-chan serverResult) {
	t.Helper()
	results := make(chan serverResult, 8)
	srv := httptest.NewServer(handshakeHandler(opts, setHeader, results))
	t.Cleanup(func() {
		srv.Close()
		drainResults(results)
	})
	return srv, results
}

func handshakeHandler(opts *AcceptOptions, setHeader http.Header, results chan<- serverResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range setHeader {
			w.Header()[k] = v
		}
		nc, br, cfg, err := serverHandshake(w, r, opts)
		results <- serverResult{nc, br, cfg, r, err}
	})
}

func drainResults(results <-chan serverResult) {
	for {
		select {
		case r := <-results:
			r.close()
		default:
			return
		}
	}
}

func recvResult(t *testing.T, results <-chan serverResult) serverResult {
	t.Helper()
	select {
	case r := <-results:
		t.Cleanup(r.close)
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("server handshake did not finish")
		return serverResult{}
	}
}

// rawExchange dials addr, writes raw, and reads one HTTP response.
func rawExchange(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return nc, br, resp
}

const rawUpgrade = "GET /chat?room=1 HTTP/1.1\r\nHost: %s\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

func TestAcceptResponse(t *testing.T) {
	opts := &AcceptOptions{Subprotocols: []string{"v2", "v1"}, ReadLimit: 1234, PingInterval: time.Minute}
	setHeader := http.Header{
		"Set-Cookie": {"session=abc"},
		// The handshake's own headers cannot be overridden.
		"Connection":           {"close"},
		"Sec-Websocket-Accept": {"forged"},
		"X-Evil":               {"a\r\nInjected: yes"},
	}
	srv, results := handshakeServer(t, opts, setHeader)
	addr := srv.Listener.Addr().String()
	req := strings.Replace(rawUpgrade, "%s", addr, 1) + "Sec-WebSocket-Protocol: v1, v2\r\nOrigin: http://" + addr + "\r\n\r\n"
	_, _, resp := rawExchange(t, addr, req)
	res := recvResult(t, results)
	if res.err != nil {
		t.Fatalf("server handshake: %v", res.err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	want := map[string][]string{
		"Upgrade":                {"websocket"},
		"Connection":             {"Upgrade"},
		"Sec-Websocket-Accept":   {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		"Sec-Websocket-Protocol": {"v2"},
		"Set-Cookie":             {"session=abc"},
		"X-Evil":                 {"a  Injected: yes"},
	}
	for k, v := range want {
		if got := resp.Header[k]; strings.Join(got, "|") != strings.Join(v, "|") {
			t.Errorf("response %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Injected", "Sec-Websocket-Extensions", "Content-Length"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("unexpected response header %s: %q", k, v)
		}
	}
	if res.cfg.role != roleServer || res.cfg.subprotocol != "v2" || res.cfg.readLimit != 1234 ||
		res.cfg.pingInterval != time.Minute || res.cfg.deflate != nil {
		t.Errorf("connConfig = %+v", res.cfg)
	}
	if res.br != nil {
		t.Errorf("server kept a bufio.Reader with %d buffered bytes; want none kept when idle", res.br.Buffered())
	}
}

func TestAcceptKeepsPipelinedBytes(t *testing.T) {
	srv, results := handshakeServer(t, nil, nil)
	addr := srv.Listener.Addr().String()
	// A frame sent in the same segment as the request must reach the Conn.
	frame := "\x81\x85\x01\x02\x03\x04" + string([]byte{'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1})
	rawExchange(t, addr, strings.Replace(rawUpgrade, "%s", addr, 1)+"\r\n"+frame)
	res := recvResult(t, results)
	if res.err != nil {
		t.Fatalf("server handshake: %v", res.err)
	}
	if res.br == nil {
		t.Fatal("bytes sent after the request were dropped")
	}
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(res.br, got); err != nil || string(got) != frame {
		t.Fatalf("buffered bytes = %q, %v; want %q", got, err, frame)
	}
}

// acceptConnServer accepts connections on a loopback listener and runs
// acceptConn on each with opts and ctx.
func acceptConnServer(t *testing.T, ctx context.Context, opts *AcceptOptions) (string, <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan serverResult, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			br, cfg, req, err := acceptConn(ctx, nc, opts)
			if err != nil {
				nc = nil // acceptConn closed it
			}
			results <- serverResult{nc, br, cfg, req, err}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		drainResults(results)
	})
	return ln.Addr().String(), results
}

func TestAcceptConn(t *testing.T) {
	addr, results := acceptConnServer(t, context.Background(), &AcceptOptions{Subprotocols: []string{"chat"}})
	_, _, resp := rawExchange(t, addr, strings.Replace(rawUpgrade, "%s", addr, 1)+"Sec-WebSocket-Protocol: chat\r\nX-Token: t1\r\n\r\n")
	res := recvResult(t, results)
	if res.err != nil {
		t.Fatalf("acceptConn: %v", res.err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		resp.Header.Get("Sec-WebSocket-Protocol") != "chat" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	if res.req.URL.Path != "/chat" || res.req.URL.Query().Get("room") != "1" || res.req.Header.Get("X-Token") != "t1" {
		t.Errorf("request = %v %v", res.req.URL, res.req.Header)
	}
	if res.req.RemoteAddr == "" || res.req.Context() == nil {
		t.Errorf("request lacks RemoteAddr or context")
	}
	if res.cfg.subprotocol != "chat" || res.br != nil {
		t.Errorf("cfg = %+v, br = %v", res.cfg, res.br)
	}
}

func TestAcceptConnRejects(t *testing.T) {
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name   string
		raw    string // %s is the address
		status int
		reason string
		header [2]string
	}{
		{"garbage", "HELLO THERE\r\n\r\n", 400, "malformed HTTP request", [2]string{}},
		{"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "malformed HTTP request", [2]string{}},
		{"bad header line", "GET / HTTP/1.1\r\nHost: %s\r\nno colon here\r\n\r\n", 400, "malformed HTTP request", [2]string{}},
		{"oversized head", rawUpgrade + "X-Big: " + big + "\r\n\r\n", 431, "request header too large", [2]string{}},
		{"endless header line", "GET / HTTP/1.1\r\nX-Big: " + big + big, 431, "request header too large", [2]string{}},
		{"HTTP/1.0", strings.Replace(rawUpgrade, "HTTP/1.1", "HTTP/1.0", 1) + "\r\n", 400, "HTTP/1.1 or later required", [2]string{}},
		{"no Host", strings.Replace(rawUpgrade, "Host: %s\r\n", "", 1) + "\r\n", 400, "missing Host", [2]string{}},
		{"version 7", strings.Replace(rawUpgrade, "Version: 13", "Version: 7", 1) + "\r\n", 426, "unsupported Sec-WebSocket-Version (want 13)", [2]string{"Sec-WebSocket-Version", "13"}},
		{"body", rawUpgrade + "Content-Length: 3\r\n\r\nabc", 400, "handshake request must not have a body", [2]string{}},
		{"cross origin", rawUpgrade + "Origin: https://evil.example\r\n\r\n", 403, `origin "https://evil.example" not allowed`, [2]string{}},
	}
	addr, results := acceptConnServer(t, context.Background(), &AcceptOptions{MaxHeaderBytes: 1024})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, br, resp := rawExchange(t, addr, strings.Replace(tt.raw, "%s", addr, 1))
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			body, _ := io.ReadAll(resp.Body)
			if got := strings.TrimSpace(string(body)); got != tt.reason {
				t.Errorf("body %q, want %q", got, tt.reason)
			}
			if tt.header[0] != "" && resp.Header.Get(tt.header[0]) != tt.header[1] {
				t.Errorf("header %s = %q, want %q", tt.header[0], resp.Header.Get(tt.header[0]), tt.header[1])
			}
			// The server closed the connection after answering.
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := br.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("read after refusal = %d, %v; want EOF", n, err)
			}
			nc.Close() // ends the server's lingering close
			res := recvResult(t, results)
			if !errors.Is(res.err, ErrBadHandshake) && !errors.Is(res.err, ErrOriginRefused) {
				t.Errorf("acceptConn error %v wraps no handshake sentinel", res.err)
			}
		})
	}
}

func TestAcceptConnHeadLimitIsExact(t *testing.T) {
	// A head of exactly MaxHeaderBytes passes even with frames pipelined
	// behind it; one byte more does not.
	const limit = 1024
	addr, results := acceptConnServer(t, context.Background(), &AcceptOptions{MaxHeaderBytes: limit})
	head := func(size int) string {
		h := rawUpgrade + "X-Pad: \r\n\r\n"
		return strings.Replace(h, "X-Pad: ", "X-Pad: "+strings.Repeat("p", size-len(h)), 1)
	}
	hostLen := len(addr) - 2 // "%s" is replaced by addr
	frames := strings.Repeat("\x82\x80\x00\x00\x00\x00", 500)

	_, _, resp := rawExchange(t, addr, strings.Replace(head(limit-hostLen), "%s", addr, 1)+frames)
	res := recvResult(t, results)
	if res.err != nil || resp.StatusCode != 101 {
		t.Fatalf("head of exactly the limit: status %d, err %v", resp.StatusCode, res.err)
	}
	// Whatever the server read past the head must be handed on in br.
	var rest io.Reader = res.nc
	if res.br != nil {
		rest = io.MultiReader(res.br, res.nc)
	}
	res.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(io.LimitReader(rest, int64(len(frames))))
	if err != nil || string(got) != frames {
		t.Fatalf("read %d pipelined bytes (%v), want %d", len(got), err, len(frames))
	}

	_, _, resp = rawExchange(t, addr, strings.Replace(head(limit+1-hostLen), "%s", addr, 1))
	res = recvResult(t, results)
	if resp.StatusCode != 431 || !errors.Is(res.err, ErrBadHandshake) {
		t.Fatalf("head one byte over the limit: status %d, err %v", resp.StatusCode, res.err)
	}
}

func TestAcceptConnSlowClient(t *testing.T) {
	addr, results := acceptConnServer(t, context.Background(), &AcceptOptions{HandshakeTimeout: 100 * time.Millisecond})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n") // and then nothing
	res := recvResult(t, results)
	if !errors.Is(res.err, os.ErrDeadlineExceeded) {
		t.Fatalf("acceptConn = %v, want a deadline error", res.err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read %d, %v; want EOF (closed without response)", n, err)
	}
}

func TestAcceptConnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, results := acceptConnServer(t, ctx, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\n")
	time.AfterFunc(50*time.Millisecond, cancel)
	res := recvResult(t, results)
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("acceptConn = %v, want context.Canceled", res.err)
	}
}

func TestAcceptConnClientGone(t *testing.T) {
	addr, results := acceptConnServer(t, context.Background(), nil)
	for _, raw := range []string{"", "GET / HTTP/1.1\r\nHost: x\r\n"} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, raw)
		nc.Close()
		res := recvResult(t, results)
		if res.err == nil || errors.Is(res.err, ErrBadHandshake) {
			t.Fatalf("acceptConn after the client left with %q = %v; want a network error", raw, res.err)
		}
	}
}
