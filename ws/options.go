package ws

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Handshake defaults.
const (
	// DefaultHandshakeTimeout bounds the server side of the handshake in
	// AcceptConn (reading the request head and writing the response).
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultDialTimeout bounds Dial (TCP, proxy, TLS and HTTP exchange)
	// when its context has no deadline.
	DefaultDialTimeout = 30 * time.Second
	// DefaultMaxHeaderBytes bounds the request head AcceptConn reads.
	DefaultMaxHeaderBytes = 8 << 10
	// DefaultMaxResponseHeaderBytes bounds the response head (from the
	// server, or from a proxy) Dial reads.
	DefaultMaxResponseHeaderBytes = 64 << 10
)

// AcceptOptions configures the server side of the handshake.
// The zero value (or nil) is a strict, same-origin server with no
// subprotocol and no compression.
type AcceptOptions struct {
	// Subprotocols lists the subprotocols the server speaks, in its order of
	// preference. The first of them the client offered is selected; when
	// the client offered none of them the connection proceeds without a
	// subprotocol (check Conn.Subprotocol if one is required).
	Subprotocols []string

	// OriginPatterns are patterns (path.Match syntax, matched
	// case-insensitively) for the Origin values accepted in addition to the
	// request's own host. A pattern without a scheme matches the Origin's
	// host[:port], e.g. "*.example.com" or "localhost:*" (note that
	// "*.example.com" does not match "example.com" itself); a pattern with a
	// scheme matches scheme and host, e.g. "https://*.example.com".
	//
	// A request without Origin is not from a browser and is always
	// accepted; other refused Origins get 403 unless
	// InsecureSkipVerifyOrigin is set, which disables the check and so
	// exposes cookie-authenticated endpoints to cross-site WebSocket
	// hijacking.
	OriginPatterns           []string
	InsecureSkipVerifyOrigin bool

	// Compression configures permessage-deflate. Its memory cost per
	// connection is described on CompressionMode.
	Compression CompressionOptions

	// HandshakeTimeout bounds reading the request and writing the response
	// in AcceptConn (default DefaultHandshakeTimeout), and writing the
	// response in Accept (the http.Server's timeouts cover the request).
	HandshakeTimeout time.Duration
	// MaxHeaderBytes bounds the request head AcceptConn reads (default
	// DefaultMaxHeaderBytes); larger heads get 431. It is also the most a
	// connection can make AcceptConn buffer before it has been
	// authenticated in any way. Accept relies on http.Server.MaxHeaderBytes.
	MaxHeaderBytes int

	// ReadLimit overrides DefaultReadLimit. The Conn's read buffers grow
	// with the largest message actually read, up to this limit.
	ReadLimit int64

	// PingInterval, when > 0, sends a ping this often while the connection
	// is read; a pong must arrive within PongTimeout (default PingInterval)
	// or the connection is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
}

// DialOptions configures the client side of the handshake.
type DialOptions struct {
	// Header holds extra request headers (e.g. Authorization, Origin,
	// Cookie). A Host entry overrides the Host sent. The headers that make
	// up the handshake itself (Upgrade, Connection and Sec-WebSocket-*) are
	// set by Dial and must not appear here.
	Header http.Header
	// Subprotocols are offered in this order. The server's choice must be
	// one of them (or none).
	Subprotocols []string
	// Compression configures the permessage-deflate offer.
	Compression CompressionOptions

	// NetDialContext dials TCP, to the server or to the proxy; default
	// net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss:// (and for https:// proxies). ServerName
	// defaults to the URL's host name; ALPN is cleared, since a WebSocket
	// handshake needs HTTP/1.1.
	TLSConfig *tls.Config
	// Proxy returns the HTTP CONNECT proxy for a request; default
	// http.ProxyFromEnvironment (which reads HTTP_PROXY, HTTPS_PROXY and
	// NO_PROXY once per process and never proxies loopback addresses).
	// The request it is given has the URL's scheme mapped to http or https
	// so that environment rules written for HTTP apply. Return nil for a
	// direct connection. Userinfo in the proxy URL becomes a Basic
	// Proxy-Authorization; http:// and https:// proxies are supported.
	Proxy func(*http.Request) (*url.URL, error)

	// HandshakeTimeout bounds the whole handshake when ctx has no deadline;
	// default DefaultDialTimeout.
	HandshakeTimeout time.Duration
	// MaxResponseHeaderBytes bounds the response heads (from the proxy and
	// from the server) Dial reads; default DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int

	// ReadLimit, PingInterval and PongTimeout are as in AcceptOptions.
	ReadLimit    int64
	PingInterval time.Duration
	PongTimeout  time.Duration
}
