package ws

// CONTRACT STUB written by the lead to fix the shared surface; the owner of
// the frame/conn layer replaces the bodies (and this comment).

import (
	"bufio"
	"context"
	"io"
	"net"
	"time"
)

// role says which side of the connection we are; it decides masking.
type role uint8

const (
	roleServer role = iota
	roleClient
)

// connConfig is everything the handshake decided, handed to newConn.
type connConfig struct {
	role        role
	subprotocol string
	// deflate is nil when permessage-deflate was not negotiated.
	deflate *deflateParams
	// compression carries level and threshold from the options (used only
	// when deflate != nil).
	compression  CompressionOptions
	readLimit    int64 // <= 0 means DefaultReadLimit
	pingInterval time.Duration
	pongTimeout  time.Duration
}

// DefaultReadLimit is the largest message (after decompression) a Conn reads
// unless SetReadLimit says otherwise.
const DefaultReadLimit = 32 << 20

// Conn is a WebSocket connection. One goroutine may read while any number of
// goroutines write.
type Conn struct {
	nc net.Conn
}

// newConn wraps nc after a successful handshake. br holds any bytes already
// read past the handshake; it may be nil. newConn must not keep br if it is
// empty, so idle connections do not pin its buffer.
func newConn(nc net.Conn, br *bufio.Reader, cfg connConfig) *Conn {
	panic("unimplemented")
}

// Read reads the next whole data message. The returned slice is valid only
// until the next call to Read or Reader.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	panic("unimplemented")
}

// Reader returns the next data message as a stream. The reader is valid
// until the next call to Read or Reader.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	panic("unimplemented")
}

// Write writes p as one message, compressed when negotiated and p is at least
// the compression threshold.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	panic("unimplemented")
}

// WriteUncompressed writes p as one message that is never compressed.
func (c *Conn) WriteUncompressed(ctx context.Context, typ MessageType, p []byte) error {
	panic("unimplemented")
}

// Writer returns a writer for one message sent as a stream of frames; other
// writers wait until it is closed.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	panic("unimplemented")
}

// WritePrepared writes a message encoded once by NewPreparedMessage.
func (c *Conn) WritePrepared(ctx context.Context, pm *PreparedMessage) error {
	panic("unimplemented")
}

// Ping sends a ping and waits for its pong. A reader must be running.
func (c *Conn) Ping(ctx context.Context) error {
	panic("unimplemented")
}

// Close performs the close handshake with code and reason, then closes the
// TCP connection (after a timeout if the peer does not answer).
func (c *Conn) Close(code StatusCode, reason string) error {
	panic("unimplemented")
}

// CloseNow closes the TCP connection without a close handshake.
func (c *Conn) CloseNow() error {
	panic("unimplemented")
}

// SetReadLimit sets the largest message (after decompression) Read accepts.
func (c *Conn) SetReadLimit(n int64) { panic("unimplemented") }

// SetReadDeadline and SetWriteDeadline set deadlines on the underlying
// connection; contexts passed to Read and Write work as well.
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { panic("unimplemented") }

// Compressed reports whether permessage-deflate was negotiated.
func (c *Conn) Compressed() bool { panic("unimplemented") }

// LocalAddr and RemoteAddr return the addresses of the underlying connection.
func (c *Conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// PreparedMessage is a message framed (and compressed) once and written to
// many connections. It caches one encoding per variant (uncompressed,
// compressed without context) and per role.
type PreparedMessage struct{}

// NewPreparedMessage prepares p for fan-out.
func NewPreparedMessage(typ MessageType, p []byte) (*PreparedMessage, error) {
	panic("unimplemented")
}
