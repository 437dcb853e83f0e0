package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Accept completes the server side of the opening handshake (RFC 6455
// section 4.2) for r and takes over the connection from the http.Server.
//
// Every requirement of the RFC is checked. A request that fails one gets an
// HTTP error written to w with a short reason in the body (400 for a
// malformed request, 405 for a method other than GET, 426 with
// "Sec-WebSocket-Version: 13" for another protocol version, 403 for a refused
// Origin) and Accept returns an error wrapping ErrBadHandshake or
// ErrOriginRefused; the handler must then just return.
//
// Headers the handler set on w.Header() before calling Accept (cookies, for
// instance) are sent with the 101 response.
//
// Accept needs an HTTP/1.x connection that can be hijacked (it finds the
// http.Hijacker through wrapping ResponseWriters that have an Unwrap method,
// as http.ResponseController does). The returned Conn no longer depends on
// the handler: it may be handed to another goroutine and the handler may
// return.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	nc, br, cfg, err := serverHandshake(w, r, opts)
	if err != nil {
		return nil, err
	}
	return newConn(nc, br, cfg), nil
}

// serverHandshake is Accept up to (not including) building the Conn.
func serverHandshake(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (net.Conn, *bufio.Reader, connConfig, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	res, err := negotiate(r, opts)
	if err != nil {
		writeHTTPError(w, err)
		return nil, nil, connConfig{}, err
	}

	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Nothing was written yet, so w still works (HTTP/2, or a wrapper
		// hiding the Hijacker).
		http.Error(w, "websocket: cannot take over this connection", http.StatusInternalServerError)
		return nil, nil, connConfig{}, fmt.Errorf("ws: hijacking the connection: %w", err)
	}
	// Hijack cleared the server's deadlines; the handshake timeout covers
	// writing the response.
	stop := watchConn(r.Context(), nc, handshakeTimeout(opts))
	_, err = nc.Write(res.appendResponse(nil, w.Header()))
	if err = stop(err); err != nil {
		nc.Close()
		return nil, nil, connConfig{}, fmt.Errorf("ws: writing the handshake response: %w", err)
	}
	// The server's buffered reader is kept only if the client already sent
	// frames: an idle connection must not pin its 4 KiB (nor the writer's).
	var br *bufio.Reader
	if brw.Reader.Buffered() > 0 {
		br = brw.Reader
	}
	return nc, br, res.config(opts), nil
}

// AcceptConn completes the server side of the opening handshake on nc, a
// connection from which nothing has been read yet (a net.Listener's Accept,
// possibly wrapped in TLS), for servers that do not use net/http.
//
// It reads and parses the request head itself, within
// opts.HandshakeTimeout (and ctx) and opts.MaxHeaderBytes (431 beyond it).
// A request that fails a check gets the same HTTP error response as with
// Accept; nc is then closed (after lingering up to half a second so that a
// client still sending can read the answer) and the error returned. A client
// that sends nothing, too little or too slowly is closed without an answer.
// The parsed request is
// returned whenever there was one, for logging and for its URL, headers and
// RemoteAddr; its context is ctx.
//
// ctx bounds only the handshake: cancelling it afterwards does not affect
// the Conn.
func AcceptConn(ctx context.Context, nc net.Conn, opts *AcceptOptions) (*Conn, *http.Request, error) {
	br, cfg, req, err := acceptConn(ctx, nc, opts)
	if err != nil {
		return nil, req, err
	}
	return newConn(nc, br, cfg), req, nil
}

// acceptConn is AcceptConn up to (not including) building the Conn. On error
// it has closed nc.
func acceptConn(ctx context.Context, nc net.Conn, opts *AcceptOptions) (*bufio.Reader, connConfig, *http.Request, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	maxHead := opts.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = DefaultMaxHeaderBytes
	}
	stop := watchConn(ctx, nc, handshakeTimeout(opts))
	// The limit counts raw bytes, so frames the client pipelined behind a
	// head that fits are read but never make a fitting head fail.
	lr := &headLimitReader{r: nc, n: int64(maxHead)}
	br := getHeadReader(lr)
	req, err := http.ReadRequest(br)
	if err != nil {
		br.Reset(nil)
		headReaders.Put(br)
		switch {
		case errors.Is(err, errHeadTooLarge) || lr.n == 0:
			// The parser may report a truncated head as malformed.
			err = badHandshake(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetError(err):
			// The client went away or was too slow: nobody to answer.
			nc.Close()
			return nil, connConfig{}, nil, fmt.Errorf("ws: reading the handshake request: %w", stop(err))
		default:
			herr := badHandshake(http.StatusBadRequest, "malformed HTTP request")
			herr.cause = err
			err = herr
		}
		refuse(nc, err)
		stop(nil)
		return nil, connConfig{}, nil, err
	}
	lr.n = -1
	// A handshake has no body (negotiate refuses one), and the request must
	// not reference br, which is recycled.
	req.Body = http.NoBody
	req.RemoteAddr = nc.RemoteAddr().String()
	if tc, ok := nc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		req.TLS = &cs
	}
	req = req.WithContext(ctx)

	res, err := negotiate(req, opts)
	if err != nil {
		putHeadReader(br)
		refuse(nc, err)
		stop(nil)
		return nil, connConfig{}, req, err
	}
	_, err = nc.Write(res.appendResponse(nil, nil))
	if err = stop(err); err != nil {
		putHeadReader(br)
		nc.Close()
		return nil, connConfig{}, req, fmt.Errorf("ws: writing the handshake response: %w", err)
	}
	return putHeadReader(br), res.config(opts), req, nil
}

func handshakeTimeout(opts *AcceptOptions) time.Duration {
	if opts.HandshakeTimeout > 0 {
		return opts.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// acceptResult is what negotiate decided for a valid request.
type acceptResult struct {
	key         string
	subprotocol string
	extensions  string // Sec-WebSocket-Extensions response value, or ""
	deflate     *deflateParams
}

// negotiate checks r against RFC 6455 section 4.2.1 and the server's policy
// and decides the response. A refused request returns a *handshakeError
// (or, for a server misconfiguration, another error answered with 500).
func negotiate(r *http.Request, opts *AcceptOptions) (acceptResult, error) {
	var res acceptResult
	if r.Method != http.MethodGet {
		return res, badHandshake(http.StatusMethodNotAllowed, "method must be GET")
	}
	if !r.ProtoAtLeast(1, 1) {
		return res, badHandshake(http.StatusBadRequest, "HTTP/1.1 or later required")
	}
	if r.Host == "" {
		return res, badHandshake(http.StatusBadRequest, "missing Host")
	}
	if !tokenListHas(r.Header, hdrUpgrade, "websocket") {
		return res, badHandshake(http.StatusBadRequest, `missing "Upgrade: websocket"`)
	}
	if !tokenListHas(r.Header, hdrConnection, "upgrade") {
		return res, badHandshake(http.StatusBadRequest, `missing "Connection: Upgrade"`)
	}
	// The version is checked before the key so that clients of other
	// versions learn which one we speak (RFC 6455 section 4.4).
	if v := r.Header[hdrVersion]; len(v) != 1 || v[0] != "13" {
		return res, badHandshake(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version (want 13)")
	}
	if k := r.Header[hdrKey]; len(k) != 1 || !validKey(k[0]) {
		return res, badHandshake(http.StatusBadRequest, "Sec-WebSocket-Key must be the base64 of 16 bytes")
	}
	res.key = r.Header[hdrKey][0]
	// Body bytes would be read as frames once the connection is upgraded.
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return res, badHandshake(http.StatusBadRequest, "handshake request must not have a body")
	}
	if err := checkOrigin(r, opts); err != nil {
		return res, err
	}
	res.subprotocol = selectSubprotocol(r.Header, opts.Subprotocols)
	p, ext, err := opts.Compression.negotiateServer(r.Header)
	if err != nil {
		herr := badHandshake(http.StatusBadRequest, "bad Sec-WebSocket-Extensions")
		herr.cause = err
		return res, herr
	}
	if ext != "" {
		res.extensions, res.deflate = ext, p
	}
	return res, nil
}

// checkOrigin applies the Origin policy documented on AcceptOptions.
func checkOrigin(r *http.Request, opts *AcceptOptions) error {
	if opts.InsecureSkipVerifyOrigin {
		return nil
	}
	origins := r.Header[hdrOrigin]
	if len(origins) == 0 {
		return nil
	}
	refused := func(reason string) error {
		return &handshakeError{status: http.StatusForbidden, reason: reason, kind: ErrOriginRefused}
	}
	if len(origins) > 1 {
		return refused("more than one Origin")
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Scheme == "" || u.Host == "" {
		// Includes "null", sent by sandboxed and file:// pages.
		return refused(fmt.Sprintf("origin %q not allowed", origins[0]))
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if trimDefaultPort(scheme, host) == trimDefaultPort(scheme, strings.ToLower(r.Host)) {
		return nil
	}
	for _, pat := range opts.OriginPatterns {
		pat = strings.ToLower(pat)
		target := host
		if strings.Contains(pat, "://") {
			target = scheme + "://" + host
		}
		ok, err := path.Match(pat, target)
		if err != nil {
			return fmt.Errorf("ws: AcceptOptions.OriginPatterns entry %q: %w", pat, err)
		}
		if ok {
			return nil
		}
	}
	return refused(fmt.Sprintf("origin %q not allowed", origins[0]))
}

// trimDefaultPort removes the port from hostport when it is the default for
// scheme, so "https://example.com" matches "Host: example.com:443".
func trimDefaultPort(scheme, hostport string) string {
	switch {
	case (scheme == "http" || scheme == "ws") && strings.HasSuffix(hostport, ":80"):
		return strings.TrimSuffix(hostport, ":80")
	case (scheme == "https" || scheme == "wss") && strings.HasSuffix(hostport, ":443"):
		return strings.TrimSuffix(hostport, ":443")
	}
	return hostport
}

// selectSubprotocol returns the first of the server's subprotocols (in the
// server's order of preference) that the client offered, or "".
func selectSubprotocol(h http.Header, server []string) string {
	if len(server) == 0 {
		return ""
	}
	offered := tokenList(h, hdrProtocol)
	for _, s := range server {
		for _, o := range offered {
			if s == o {
				return s
			}
		}
	}
	return ""
}

// appendResponse appends the 101 response to b. extra holds headers the
// application wants sent as well; the handshake's own headers win.
func (res *acceptResult) appendResponse(b []byte, extra http.Header) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, computeAccept(res.key)...)
	b = append(b, "\r\n"...)
	if res.subprotocol != "" {
		b = append(b, "Sec-WebSocket-Protocol: "...)
		b = append(b, res.subprotocol...)
		b = append(b, "\r\n"...)
	}
	if res.extensions != "" {
		b = append(b, "Sec-WebSocket-Extensions: "...)
		b = append(b, res.extensions...)
		b = append(b, "\r\n"...)
	}
	if len(extra) > 0 {
		var buf bytes.Buffer
		// WriteSubset sorts and strips CR/LF from values.
		extra.WriteSubset(&buf, responseOwnHeaders)
		b = append(b, buf.Bytes()...)
	}
	return append(b, "\r\n"...)
}

// responseOwnHeaders are the headers of a 101 response the application may
// not set.
var responseOwnHeaders = map[string]bool{
	hdrUpgrade: true, hdrConnection: true, hdrAccept: true, hdrProtocol: true,
	hdrExtensions: true, "Content-Length": true, "Transfer-Encoding": true,
}

func (res *acceptResult) config(opts *AcceptOptions) connConfig {
	return connConfig{
		role:         roleServer,
		subprotocol:  res.subprotocol,
		deflate:      res.deflate,
		compression:  opts.Compression,
		readLimit:    opts.ReadLimit,
		pingInterval: opts.PingInterval,
		pongTimeout:  opts.PongTimeout,
	}
}

// errorStatus returns the HTTP status and body for a refused handshake.
func errorStatus(err error) (int, string) {
	var herr *handshakeError
	if errors.As(err, &herr) {
		return herr.status, herr.reason
	}
	return http.StatusInternalServerError, "internal error"
}

// errorHeaders sets the headers that go with a refusal of status.
func errorHeaders(h http.Header, status int) {
	switch status {
	case http.StatusUpgradeRequired:
		h.Set(hdrVersion, "13")
		h.Set(hdrUpgrade, "websocket")
	case http.StatusMethodNotAllowed:
		h.Set("Allow", http.MethodGet)
	}
}

// writeHTTPError answers a refused handshake through net/http.
func writeHTTPError(w http.ResponseWriter, err error) {
	status, reason := errorStatus(err)
	errorHeaders(w.Header(), status)
	http.Error(w, reason, status)
}

// refuse answers a refused handshake on a raw connection and closes it.
func refuse(nc net.Conn, err error) {
	status, reason := errorStatus(err)
	h := http.Header{}
	errorHeaders(h, status)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(reason)+1))
	h.Set("Connection", "close")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h.Write(&buf)
	buf.WriteString("\r\n")
	buf.WriteString(reason)
	buf.WriteString("\n")
	if _, err := nc.Write(buf.Bytes()); err != nil {
		nc.Close()
		return
	}
	lingerClose(nc)
}

// lingerClose closes nc after giving the peer a chance to read what we
// wrote: closing with unread input would reset the connection, and the
// reset can destroy the response before the client reads it (a client that
// sent an oversized head is typically still sending). Reading is bounded in
// time and size.
func lingerClose(nc net.Conn) {
	defer nc.Close()
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, nc, lingerMaxBytes)
}

const (
	lingerTimeout  = 500 * time.Millisecond
	lingerMaxBytes = 256 << 10
)
