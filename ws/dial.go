package ws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
)

// maxErrorBodyBytes is how much of a failed handshake response's body Dial
// keeps for the caller: enough for an error message, bounded because the
// body comes from a server that is not speaking WebSocket.
const maxErrorBodyBytes = 4 << 10

// Dial opens a WebSocket connection to urlStr (ws:// or wss://; http:// and
// https:// are taken as synonyms), through an HTTP CONNECT proxy when
// opts.Proxy (by default the environment) says so.
//
// The handshake is bounded by ctx, or by opts.HandshakeTimeout when ctx has
// no deadline; ctx does not affect the Conn once Dial has returned.
//
// When the server answered but refused or botched the handshake, the error
// wraps ErrBadHandshake and the *http.Response is returned too, with up to
// 4 KiB of its body readable from resp.Body (the connection itself is already
// closed). Redirects are not followed: a 3xx is such a failure, with its
// Location in resp.Header. On success resp holds the 101 response's headers.
func Dial(ctx context.Context, urlStr string, opts *DialOptions) (*Conn, *http.Response, error) {
	nc, br, cfg, resp, err := clientHandshake(ctx, urlStr, opts)
	if err != nil {
		return nil, resp, err
	}
	return newConn(nc, br, cfg), resp, nil
}

// clientHandshake is Dial up to (not including) building the Conn. On error
// it has closed the connection.
func clientHandshake(ctx context.Context, urlStr string, opts *DialOptions) (net.Conn, *bufio.Reader, connConfig, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := parseWebSocketURL(urlStr)
	if err != nil {
		return nil, nil, connConfig{}, nil, err
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, connConfig{}, nil, fmt.Errorf("ws: generating Sec-WebSocket-Key: %w", err)
	}
	offer := opts.Compression.offer()
	req, err := newHandshakeRequest(u, key, offer, opts)
	if err != nil {
		return nil, nil, connConfig{}, nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := opts.HandshakeTimeout
		if timeout <= 0 {
			timeout = DefaultDialTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	// Errors name only scheme and host: paths and queries often carry
	// credentials (browsers cannot send Authorization to a WebSocket).
	target := u.Scheme + "://" + u.Host
	nc, err := dialServer(ctx, u, opts)
	if err != nil {
		return nil, nil, connConfig{}, nil, fmt.Errorf("ws: dial %s: %w", target, err)
	}
	stop := watchConn(ctx, nc, 0)
	br, resp, err := exchange(nc, req, maxResponseHead(opts))
	var deflate *deflateParams
	if err == nil {
		err = verifyResponse(resp, key, opts.Subprotocols, offer)
	}
	if err == nil {
		deflate, err = acceptExtensions(resp, offer, &opts.Compression)
	}
	var bad *handshakeError
	if errors.As(err, &bad) && resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		// Keep a little of the body: it usually says why.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	if err = stop(err); err != nil {
		if br != nil {
			// resp.Body no longer reads from br (see above).
			br.Reset(nil)
			headReaders.Put(br)
		}
		nc.Close()
		if !errors.As(err, &bad) {
			err = fmt.Errorf("ws: handshake with %s: %w", target, err)
		}
		return nil, nil, connConfig{}, resp, err
	}
	cfg := connConfig{
		role:         roleClient,
		subprotocol:  resp.Header.Get(hdrProtocol),
		deflate:      deflate,
		compression:  opts.Compression,
		readLimit:    opts.ReadLimit,
		pingInterval: opts.PingInterval,
		pongTimeout:  opts.PongTimeout,
	}
	// Unless the server sent bytes past the 101, the buffer is recycled
	// rather than pinned by an idle Conn.
	return nc, putHeadReader(br), cfg, resp, nil
}

// parseWebSocketURL parses and checks a ws:// or wss:// URL, normalising
// http(s) to ws(s).
func parseWebSocketURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("ws: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("ws: bad URL %q: scheme must be ws or wss", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("ws: bad URL %q: no host", u.Redacted())
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		// RFC 6455 section 3: fragments must not be used on WebSocket URIs.
		return nil, fmt.Errorf("ws: bad URL %q: fragment not allowed", u.Redacted())
	}
	return u, nil
}

// dialHeaders are the request headers Dial owns.
var dialHeaders = map[string]bool{
	hdrUpgrade: true, hdrConnection: true, hdrKey: true, hdrVersion: true,
	hdrProtocol: true, hdrExtensions: true, hdrAccept: true,
}

// newHandshakeRequest builds the opening handshake request (RFC 6455
// section 4.1). It is never sent with Request.Write: writeRequest controls
// the exact bytes.
func newHandshakeRequest(u *url.URL, key, offer string, opts *DialOptions) (*http.Request, error) {
	h := make(http.Header, len(opts.Header)+8)
	host := trimDefaultPort(u.Scheme, u.Host)
	for k, v := range opts.Header {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if dialHeaders[ck] {
			return nil, fmt.Errorf("ws: DialOptions.Header must not set %s: Dial owns it", ck)
		}
		if ck == "Host" {
			if len(v) > 0 {
				host = v[0]
			}
			continue
		}
		h[ck] = append(h[ck], v...)
	}
	for _, p := range opts.Subprotocols {
		if !validSubprotocol(p) {
			return nil, fmt.Errorf("ws: DialOptions.Subprotocols: %q is not a valid subprotocol name", p)
		}
	}
	if u.User != nil && h.Get("Authorization") == "" {
		h.Set("Authorization", "Basic "+basicAuth(u.User))
	}
	h[hdrUpgrade] = []string{"websocket"}
	h[hdrConnection] = []string{"Upgrade"}
	h[hdrKey] = []string{key}
	h[hdrVersion] = []string{"13"}
	if len(opts.Subprotocols) > 0 {
		h[hdrProtocol] = []string{strings.Join(opts.Subprotocols, ", ")}
	}
	if offer != "" {
		h[hdrExtensions] = []string{offer}
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       host,
	}, nil
}

func basicAuth(u *url.Userinfo) string {
	p, _ := u.Password()
	return base64.StdEncoding.EncodeToString([]byte(u.Username() + ":" + p))
}

// exchange writes req in one write and reads the response head, with at
// most maxHead bytes of it.
func exchange(nc net.Conn, req *http.Request, maxHead int) (*bufio.Reader, *http.Response, error) {
	var buf bytes.Buffer
	buf.WriteString("GET ")
	buf.WriteString(req.URL.RequestURI())
	buf.WriteString(" HTTP/1.1\r\nHost: ")
	buf.WriteString(req.Host)
	buf.WriteString("\r\n")
	// Header.Write strips CR/LF from values, so Header cannot inject lines.
	req.Header.Write(&buf)
	buf.WriteString("\r\n")
	if _, err := nc.Write(buf.Bytes()); err != nil {
		return nil, nil, err
	}
	lr := &headLimitReader{r: nc, n: int64(maxHead)}
	br := getHeadReader(lr)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		br.Reset(nil)
		headReaders.Put(br)
		if errors.Is(err, errHeadTooLarge) || lr.n == 0 {
			return nil, nil, badHandshake(0, fmt.Sprintf("response head larger than %d bytes", maxHead))
		}
		return nil, nil, fmt.Errorf("reading the response: %w", err)
	}
	lr.n = -1
	return br, resp, nil
}

func maxResponseHead(opts *DialOptions) int {
	if opts.MaxResponseHeaderBytes > 0 {
		return opts.MaxResponseHeaderBytes
	}
	return DefaultMaxResponseHeaderBytes
}

// verifyResponse checks the server's answer against RFC 6455 section 4.1
// (except extensions, see acceptExtensions).
func verifyResponse(resp *http.Response, key string, offered []string, offer string) error {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return badHandshake(0, fmt.Sprintf("server answered %q, want 101", resp.Status))
	}
	if !tokenListHas(resp.Header, hdrUpgrade, "websocket") {
		return badHandshake(0, `response lacks "Upgrade: websocket"`)
	}
	if !tokenListHas(resp.Header, hdrConnection, "upgrade") {
		return badHandshake(0, `response lacks "Connection: Upgrade"`)
	}
	if a := resp.Header[hdrAccept]; len(a) != 1 || a[0] != computeAccept(key) {
		return badHandshake(0, "wrong Sec-WebSocket-Accept")
	}
	if p := resp.Header[hdrProtocol]; len(p) > 0 {
		if len(p) > 1 || !slices.Contains(offered, p[0]) {
			return badHandshake(0, fmt.Sprintf("server chose subprotocol %q, which was not offered", strings.Join(p, ", ")))
		}
	}
	if ext := resp.Header[hdrExtensions]; len(ext) > 0 && offer == "" {
		return badHandshake(0, fmt.Sprintf("server chose extension %q, which was not offered", strings.Join(ext, ", ")))
	}
	return nil
}

// acceptExtensions validates the server's Sec-WebSocket-Extensions against
// our offer and returns the negotiated deflate parameters (nil when the
// server declined).
func acceptExtensions(resp *http.Response, offer string, co *CompressionOptions) (*deflateParams, error) {
	ext := strings.Join(resp.Header[hdrExtensions], ", ")
	if ext == "" || offer == "" {
		return nil, nil
	}
	p, err := co.acceptResponse(ext)
	if err != nil {
		herr := badHandshake(0, fmt.Sprintf("server's Sec-WebSocket-Extensions %q does not fit our offer", ext))
		herr.cause = err
		return nil, herr
	}
	return p, nil
}
