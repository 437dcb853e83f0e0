package ws

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectProxy is a real HTTP CONNECT proxy on loopback. It tunnels every
// CONNECT to backend (whatever host was asked for, so tests can use names
// that do not resolve) and records the targets and credentials it saw.
type connectProxy struct {
	url     *url.URL
	backend string
	refuse  string // if set, the status line answered instead of tunnelling

	mu      sync.Mutex
	targets []string
	auths   []string
}

func newConnectProxy(t *testing.T, backend string) *connectProxy {
	return newConnectProxyTLS(t, backend, nil)
}

// newConnectProxyTLS starts an https:// proxy when cfg is not nil.
func newConnectProxyTLS(t *testing.T, backend string, cfg *tls.Config) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{url: &url.URL{Scheme: "http", Host: ln.Addr().String()}, backend: backend}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
		p.url.Scheme = "https"
	}
	var wg sync.WaitGroup
	conns := make(map[net.Conn]bool)
	var mu sync.Mutex
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			track(nc, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer track(nc, false)
				defer nc.Close()
				p.serve(nc, track)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *connectProxy) serve(nc net.Conn, track func(net.Conn, bool)) {
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.Method+" "+req.RequestURI+" Host="+req.Host)
	p.auths = append(p.auths, req.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()
	if p.refuse != "" {
		io.WriteString(nc, p.refuse+"\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if req.Method != http.MethodConnect {
		io.WriteString(nc, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", p.backend)
	if err != nil {
		io.WriteString(nc, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	track(up, true)
	defer track(up, false)
	defer up.Close()
	io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() {
		io.Copy(up, br)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(nc, up)
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	<-done
}

func (p *connectProxy) seen() (targets, auths []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...), append([]string(nil), p.auths...)
}

func TestDialProxy(t *testing.T) {
	srv, results := handshakeServer(t, nil, nil)
	backend := srv.Listener.Addr().String()
	proxy := newConnectProxy(t, backend)
	pu := *proxy.url
	pu.User = url.UserPassword("alice", "s3cret")

	nc, _, _, _, err := clientHandshake(context.Background(), "ws://"+backend+"/ws", &DialOptions{Proxy: http.ProxyURL(&pu)})
	if err != nil {
		t.Fatalf("clientHandshake through proxy: %v", err)
	}
	defer nc.Close()
	res := recvResult(t, results)
	if res.err != nil {
		t.Fatalf("server: %v", res.err)
	}
	checkPipe(t, nc, res.nc)
	targets, auths := proxy.seen()
	if len(targets) != 1 || targets[0] != "CONNECT "+backend+" Host="+backend {
		t.Errorf("proxy saw %q", targets)
	}
	// base64("alice:s3cret")
	if len(auths) != 1 || auths[0] != "Basic YWxpY2U6czNjcmV0" {
		t.Errorf("proxy saw Proxy-Authorization %q", auths)
	}
}

func TestDialProxyRefuses(t *testing.T) {
	proxy := newConnectProxy(t, "127.0.0.1:1")
	proxy.refuse = "HTTP/1.1 407 Proxy Authentication Required"
	_, resp, err := Dial(context.Background(), "ws://backend.test/", &DialOptions{Proxy: http.ProxyURL(proxy.url)})
	if err == nil || !strings.Contains(err.Error(), "407 Proxy Authentication Required") || resp != nil {
		t.Fatalf("Dial = %v, %v; want the proxy's 407 in the error", resp, err)
	}
	if errors.Is(err, ErrBadHandshake) {
		t.Errorf("a proxy refusal is not the server's bad handshake: %v", err)
	}
	if targets, _ := proxy.seen(); len(targets) != 1 || targets[0] != "CONNECT backend.test:80 Host=backend.test:80" {
		t.Errorf("proxy saw %q", targets)
	}
}

// TestDialProxyFromEnvironment checks that Dial uses HTTP_PROXY by default.
// http.ProxyFromEnvironment reads the environment once per process, so the
// dial runs in a child process started with the variables set.
func TestDialProxyFromEnvironment(t *testing.T) {
	if u := os.Getenv("WS_TEST_PROXY_CHILD_URL"); u != "" {
		nc, _, _, _, err := clientHandshake(context.Background(), u, nil)
		if err != nil {
			t.Fatalf("child: clientHandshake: %v", err)
		}
		nc.Close()
		return
	}
	srv, results := handshakeServer(t, nil, nil)
	proxy := newConnectProxy(t, srv.Listener.Addr().String())
	t.Setenv("HTTP_PROXY", proxy.url.String())
	t.Setenv("http_proxy", proxy.url.String())
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	// The proxy resolves the name, not the client: it does not exist.
	t.Setenv("WS_TEST_PROXY_CHILD_URL", "ws://ws-backend.invalid/env")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDialProxyFromEnvironment$", "-test.count=1").CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	res := recvResult(t, results)
	if res.err != nil {
		t.Fatalf("server: %v", res.err)
	}
	if res.req.Host != "ws-backend.invalid" || res.req.URL.Path != "/env" {
		t.Errorf("server got Host %q path %q", res.req.Host, res.req.URL.Path)
	}
	if targets, _ := proxy.seen(); len(targets) != 1 || targets[0] != "CONNECT ws-backend.invalid:80 Host=ws-backend.invalid:80" {
		t.Errorf("proxy saw %q", targets)
	}
}

func TestDialTLS(t *testing.T) {
	results := make(chan serverResult, 4)
	srv := httptest.NewTLSServer(handshakeHandler(nil, nil, results))
	t.Cleanup(func() {
		srv.Close()
		drainResults(results)
	})
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
	u := "wss" + strings.TrimPrefix(srv.URL, "https") + "/secure"

	t.Run("direct", func(t *testing.T) {
		nc, _, _, _, err := clientHandshake(context.Background(), u, &DialOptions{Proxy: direct, TLSConfig: tlsConfig})
		if err != nil {
			t.Fatalf("clientHandshake: %v", err)
		}
		defer nc.Close()
		res := recvResult(t, results)
		if res.err != nil || res.req.TLS == nil {
			t.Fatalf("server: %v, TLS %v", res.err, res.req.TLS)
		}
		if tc, ok := nc.(*tls.Conn); !ok || len(tc.ConnectionState().VerifiedChains) == 0 {
			t.Fatalf("client conn %T is not verified TLS", nc)
		}
		checkPipe(t, nc, res.nc)
	})
	t.Run("through proxy", func(t *testing.T) {
		proxy := newConnectProxy(t, srv.Listener.Addr().String())
		nc, _, _, _, err := clientHandshake(context.Background(), u, &DialOptions{Proxy: http.ProxyURL(proxy.url), TLSConfig: tlsConfig})
		if err != nil {
			t.Fatalf("clientHandshake: %v", err)
		}
		defer nc.Close()
		res := recvResult(t, results)
		if res.err != nil {
			t.Fatalf("server: %v", res.err)
		}
		checkPipe(t, nc, res.nc)
		if targets, _ := proxy.seen(); len(targets) != 1 || !strings.HasPrefix(targets[0], "CONNECT "+srv.Listener.Addr().String()) {
			t.Errorf("proxy saw %q", targets)
		}
	})
	t.Run("through https proxy", func(t *testing.T) {
		// The proxy presents the test server's certificate (valid for
		// 127.0.0.1), so TLSConfig's roots verify both handshakes.
		proxy := newConnectProxyTLS(t, srv.Listener.Addr().String(), srv.TLS)
		nc, _, _, _, err := clientHandshake(context.Background(), u, &DialOptions{Proxy: http.ProxyURL(proxy.url), TLSConfig: tlsConfig})
		if err != nil {
			t.Fatalf("clientHandshake: %v", err)
		}
		defer nc.Close()
		res := recvResult(t, results)
		if res.err != nil {
			t.Fatalf("server: %v", res.err)
		}
		checkPipe(t, nc, res.nc)
		if targets, _ := proxy.seen(); len(targets) != 1 {
			t.Errorf("proxy saw %q", targets)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		_, resp, err := Dial(context.Background(), u, &DialOptions{Proxy: direct})
		var certErr *tls.CertificateVerificationError
		if !errors.As(err, &certErr) || resp != nil {
			t.Fatalf("Dial = %v, %v; want a certificate verification error", resp, err)
		}
	})
}
