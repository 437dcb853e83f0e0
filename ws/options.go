package ws

// CONTRACT STUB written by the lead; the owner of the handshake layer fills
// in behaviour (and may add fields) and removes this comment.

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"
)

// AcceptOptions configures the server side of the handshake.
// The zero value (or nil) is a strict, same-origin server with no
// subprotocol and no compression.
type AcceptOptions struct {
	// Subprotocols lists the subprotocols the server speaks, in its order of
	// preference. The first one the client offered is selected.
	Subprotocols []string

	// OriginPatterns are host patterns (path.Match syntax, e.g.
	// "*.example.com") whose Origin is accepted in addition to the request's
	// own host. InsecureSkipVerifyOrigin disables the check (refused Origins
	// get 403 otherwise).
	OriginPatterns           []string
	InsecureSkipVerifyOrigin bool

	// Compression configures permessage-deflate.
	Compression CompressionOptions

	// HandshakeTimeout bounds reading the request in AcceptConn; default 10s.
	HandshakeTimeout time.Duration
	// MaxHeaderBytes bounds the request head in AcceptConn; default 8 KiB.
	MaxHeaderBytes int

	// ReadLimit overrides DefaultReadLimit.
	ReadLimit int64

	// PingInterval, when > 0, sends a ping this often while the connection
	// is read; a pong must arrive within PongTimeout (default PingInterval)
	// or the connection is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
}

// DialOptions configures the client side of the handshake.
type DialOptions struct {
	// Header holds extra request headers (e.g. Authorization, Origin).
	Header http.Header
	// Subprotocols are offered in this order.
	Subprotocols []string
	// Compression configures the permessage-deflate offer.
	Compression CompressionOptions

	// NetDialContext dials TCP; default net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss://.
	TLSConfig *tls.Config
	// Proxy returns the HTTP CONNECT proxy for a request; default
	// http.ProxyFromEnvironment. Return nil for a direct connection.
	Proxy func(*http.Request) (*url.URL, error)

	// HandshakeTimeout bounds the whole handshake when ctx has no deadline;
	// default 30s.
	HandshakeTimeout time.Duration

	ReadLimit    int64
	PingInterval time.Duration
	PongTimeout  time.Duration
}
