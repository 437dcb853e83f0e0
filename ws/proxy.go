package ws

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// dialServer returns a connection to u's server, ready for the HTTP
// handshake: TCP, possibly tunnelled through an HTTP CONNECT proxy, then TLS
// for wss.
func dialServer(ctx context.Context, u *url.URL, opts *DialOptions) (net.Conn, error) {
	addr := hostPort(u.Host, u.Scheme == "wss")
	dial := opts.NetDialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	proxy, err := proxyFor(u, opts)
	if err != nil {
		return nil, fmt.Errorf("choosing a proxy: %w", err)
	}
	var nc net.Conn
	if proxy == nil {
		nc, err = dial(ctx, "tcp", addr)
	} else {
		nc, err = dialTunnel(ctx, dial, proxy, addr, opts)
	}
	if err != nil {
		return nil, err
	}
	if u.Scheme == "wss" {
		return tlsClient(ctx, nc, opts.TLSConfig, u.Hostname())
	}
	return nc, nil
}

// hostPort adds the scheme's default port to host when it has none.
func hostPort(host string, secure bool) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if secure {
		port = "443"
	}
	// Strip brackets, JoinHostPort puts them back for IPv6.
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// proxyFor asks opts.Proxy (default: the environment) for u's proxy. The
// question is asked about the equivalent http(s) URL, since proxy
// configuration (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) is written for those.
func proxyFor(u *url.URL, opts *DialOptions) (*url.URL, error) {
	fn := opts.Proxy
	if fn == nil {
		fn = http.ProxyFromEnvironment
	}
	hu := *u
	hu.Scheme = "http"
	if u.Scheme == "wss" {
		hu.Scheme = "https"
	}
	return fn(&http.Request{Method: http.MethodGet, URL: &hu, Host: hu.Host, Header: http.Header{}})
}

// tlsClient runs the TLS handshake for serverName over nc, closing nc on
// failure.
func tlsClient(ctx context.Context, nc net.Conn, base *tls.Config, serverName string) (net.Conn, error) {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	// A WebSocket handshake is HTTP/1.1: never let ALPN pick h2.
	cfg.NextProtos = nil
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// dialTunnel connects to proxy and asks it to CONNECT to addr. The proxy,
// not we, resolves addr's host name.
func dialTunnel(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error),
	proxy *url.URL, addr string, opts *DialOptions) (net.Conn, error) {
	var secure bool
	switch proxy.Scheme {
	case "http":
	case "https":
		secure = true
	default:
		return nil, fmt.Errorf("proxy %s: unsupported scheme %q (want http or https)", proxy.Redacted(), proxy.Scheme)
	}
	nc, err := dial(ctx, "tcp", hostPort(proxy.Host, secure))
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	if secure {
		// The target's ServerName must not leak into the proxy handshake.
		var base *tls.Config
		if opts.TLSConfig != nil {
			base = opts.TLSConfig.Clone()
			base.ServerName = ""
		}
		if nc, err = tlsClient(ctx, nc, base, proxy.Hostname()); err != nil {
			return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
		}
	}
	stop := watchConn(ctx, nc, 0)
	if err = stop(connect(nc, proxy, addr, maxResponseHead(opts))); err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Redacted(), err)
	}
	return nc, nil
}

// connect performs the CONNECT exchange (RFC 9110 section 9.3.6) on nc.
func connect(nc net.Conn, proxy *url.URL, addr string, maxHead int) error {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{},
	}
	msg := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if proxy.User != nil {
		msg += "Proxy-Authorization: Basic " + basicAuth(proxy.User) + "\r\n"
	}
	msg += "\r\n"
	if _, err := nc.Write([]byte(msg)); err != nil {
		return err
	}
	lr := &headLimitReader{r: nc, n: int64(maxHead)}
	br := bufio.NewReaderSize(lr, 1024)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("reading the CONNECT response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("CONNECT %s refused: %s", addr, resp.Status)
	}
	if br.Buffered() > 0 {
		// The tunnel carries our bytes first; anything else is a confused
		// proxy, and dropping the bytes would corrupt the stream.
		return fmt.Errorf("proxy sent %d unexpected bytes after its CONNECT response", br.Buffered())
	}
	return nil
}
