package ws

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
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
// unless SetReadLimit says otherwise. 32 MiB bounds what one peer can make
// the server buffer while leaving room for file-sized binary messages;
// chat-like applications should lower it with ReadLimit or SetReadLimit.
const DefaultReadLimit = 32 << 20

// closeTimeout bounds each wait of the close handshake: sending our close
// frame, waiting for the peer's, and (client side) waiting for the server to
// close TCP.
const closeTimeout = 5 * time.Second

// smallReadSize is the inline buffer a reader waits on while no pooled read
// buffer is held: a small message read by an idle connection needs a single
// read system call and no pooled buffer at all.
const smallReadSize = 64

// Conn is a WebSocket connection. One goroutine may read (Read, Reader)
// while any number of goroutines write (Write, Writer, WritePrepared, Ping,
// Close): frames are serialized by the Conn, and a Writer holds the data
// stream for the whole message while pongs and close frames may still be
// sent between its fragments.
//
// A Conn holds no pooled read or write buffer while idle: buffers come from
// pools for the duration of a read or write (or, for Read, until the next
// Read), and a reader waiting for the next message waits on a 64-byte
// buffer inside the Conn, which is also all a small message needs. An idle
// Conn is about 550 bytes plus one channel.
type Conn struct {
	// ev is set by Poller.Serve: the Poller reads the connection. It is
	// first so that it shares a cache line with what every write reads
	// (nc, role, deflate, threshold): a polled message then starts with
	// one cache miss on the Conn instead of two.
	ev *eventConn

	nc          net.Conn
	role        role
	subprotocol string
	deflate     *deflateParams
	level       int32
	threshold   int32

	// Read side, owned by the goroutine that set reading.
	reading atomic.Bool
	p       parser
	rbuf    *[]byte // pooled read buffer, nil when reading into small
	rpos    int32   // unconsumed input is rbytes()[rpos:rend]
	rend    int32
	rfull   bool  // the last read filled its buffer: more input is likely queued
	rerr    error // read error held back until buffered input is consumed
	msg     *[]byte
	mr      msgReader
	readErr atomic.Pointer[error] // sticky: the read side is finished
	recvs   atomic.Uint32         // reads that returned bytes, for the heartbeat
	closing atomic.Bool           // Close is running the handshake
	limit   atomic.Int64
	decomp  *decompressor
	small   [smallReadSize]byte

	// Heartbeat configuration (zero: none); hbStarted says the heartbeat
	// goroutine runs (set by the first read).
	hbInterval, hbTimeout time.Duration
	hbStarted             bool

	// Write side. msgMu is held for a whole data message, frameMu for one
	// frame; waiting for either honours contexts (see wlock).
	msgMu     wlock
	frameMu   wlock
	closeSent bool // guarded by frameMu
	comp      *compressor

	closed    chan struct{}
	isDone    atomic.Bool // set right before closed is closed: a cheaper test than receiving from it
	closeOnce sync.Once
	ncMu      sync.Mutex // orders closeTCP and a Poller replacing nc and setting ev (fdconn_linux.go)
	cause     error      // why closeTCP was called, when not by Close; set before closed is closed

	pingMu sync.Mutex
	pings  map[uint64]chan struct{}
	pingID uint64

	pause pauseState // flow control of a polled connection (pause.go)
}

// newConn wraps nc after a successful handshake. br holds any bytes already
// read past the handshake; it may be nil. newConn does not keep br: buffered
// bytes are copied into a pooled read buffer, so idle connections do not pin
// its buffer.
func newConn(nc net.Conn, br *bufio.Reader, cfg connConfig) *Conn {
	c := &Conn{
		nc:          nc,
		role:        cfg.role,
		subprotocol: cfg.subprotocol,
		deflate:     cfg.deflate,
		closed:      make(chan struct{}),
	}
	limit := cfg.readLimit
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	c.limit.Store(limit)
	c.p.server = cfg.role == roleServer
	c.p.deflate = cfg.deflate != nil
	if cfg.deflate != nil {
		c.level = int32(cfg.compression.level())
		c.threshold = int32(cfg.compression.threshold())
	}
	if br != nil && br.Buffered() > 0 {
		n := br.Buffered()
		c.rbuf = getBuf(n)
		c.rend = int32(copy(*c.rbuf, mustPeek(br, n)))
	}
	if cfg.pingInterval > 0 {
		// The heartbeat starts with the first Read or Reader (it only
		// concludes anything while the connection is read), or is run by
		// the Poller the Conn is handed to.
		c.hbInterval, c.hbTimeout = cfg.pingInterval, cfg.pongTimeout
		if c.hbTimeout <= 0 {
			c.hbTimeout = cfg.pingInterval
		}
	}
	return c
}

// mustPeek returns the n buffered bytes of br (Peek of buffered bytes cannot
// fail).
func mustPeek(br *bufio.Reader, n int) []byte {
	b, _ := br.Peek(n)
	return b
}

// SetReadLimit sets the largest message (after decompression) Read and
// Reader accept; a larger message fails the connection with 1009. It takes
// effect at the next call to Read or Reader. n <= 0 restores
// DefaultReadLimit.
func (c *Conn) SetReadLimit(n int64) {
	if n <= 0 {
		n = DefaultReadLimit
	}
	c.limit.Store(n)
}

// SetReadDeadline and SetWriteDeadline set deadlines on the underlying
// connection; contexts passed to Read and Write work as well. A read or write
// that fails on a deadline leaves the stream in an unknown state, so it fails
// the connection like any other I/O error.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.netConn().SetReadDeadline(t) }

// SetWriteDeadline: see SetReadDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.netConn().SetWriteDeadline(t) }

// netConn is nc for callers that hold neither frameMu nor the read side:
// a Poller's Serve may be replacing it (takeOver) concurrently.
func (c *Conn) netConn() net.Conn {
	c.ncMu.Lock()
	defer c.ncMu.Unlock()
	return c.nc
}

// polled is ev for callers other than the Poller's workers (which find the
// Conn after Serve published it): Serve may be setting it concurrently.
func (c *Conn) polled() *eventConn {
	c.ncMu.Lock()
	defer c.ncMu.Unlock()
	return c.ev
}

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Compressed reports whether permessage-deflate was negotiated.
func (c *Conn) Compressed() bool { return c.deflate != nil }

// LocalAddr returns the local address of the underlying connection.
func (c *Conn) LocalAddr() net.Addr { return c.netConn().LocalAddr() }

// RemoteAddr returns the remote address of the underlying connection.
func (c *Conn) RemoteAddr() net.Addr { return c.netConn().RemoteAddr() }

// isClosed reports whether the TCP connection was closed.
func (c *Conn) isClosed() bool { return c.isDone.Load() }

// closeTCP closes the underlying connection once and releases the pooled
// state no one is using; the active reader or writer releases the rest when
// it finishes.
func (c *Conn) closeTCP() error { return c.closeTCPCause(nil) }

// closeTCPCause is closeTCP recording why, for the errors of operations that
// fail afterwards (nil: an ordinary close).
func (c *Conn) closeTCPCause(cause error) error {
	err := ErrClosed
	c.closeOnce.Do(func() {
		c.cause = cause
		c.isDone.Store(true)
		close(c.closed)
		c.ncMu.Lock()
		nc, ev := c.nc, c.ev
		c.ncMu.Unlock()
		err = nc.Close()
		if c.reading.CompareAndSwap(false, true) {
			// Keep reading set: no Read may start any more. Read buffers
			// are not recycled because the caller may still hold the last
			// message; the garbage collector takes them.
			c.releaseReadState()
		}
		if c.msgMu.tryLock() {
			c.releaseWriteState()
			c.msgMu.unlock()
		} // else the message writer releases on unlock
		if ev != nil {
			c.evClosed()
		}
	})
	return err
}

// CloseNow closes the TCP connection without a close handshake.
func (c *Conn) CloseNow() error {
	if err := c.closeTCP(); err != nil {
		return fmt.Errorf("ws: close: %w", err)
	}
	return nil
}

// closedErr is the error of an operation attempted after closeTCP: it wraps
// ErrClosed and, when the heartbeat closed the connection, ErrPongTimeout.
func (c *Conn) closedErr(op string) error {
	// cause is written before isDone is set, so it may only be read
	// after observing that; a Close still in progress reports ErrClosed.
	if c.isClosed() && c.cause != nil {
		return fmt.Errorf("ws: %s: %w", op, c.cause)
	}
	return fmt.Errorf("ws: %s: %w", op, ErrClosed)
}

// getReadErr returns the sticky read error, or nil.
func (c *Conn) getReadErr() error {
	if p := c.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// setReadErr records the sticky read error (the first one wins).
func (c *Conn) setReadErr(err error) {
	c.readErr.CompareAndSwap(nil, &err)
}

// abort closes the connection after a broken read or write and returns err.
func (c *Conn) abort(err error) error {
	c.closeTCP()
	return err
}

// watch arranges for ctx's cancellation to interrupt blocking I/O by setting
// a read (or write) deadline in the past. It costs nothing for contexts that
// cannot be cancelled; otherwise context.AfterFunc allocates once per call.
// stop reports false when ctx fired, after which the stream state is unknown
// and the caller fails the connection.
func (c *Conn) watch(ctx context.Context, write bool) (stop func() bool) {
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() {
		if write {
			c.nc.SetWriteDeadline(time.Unix(1, 0))
		} else {
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
	})
}

// lock takes a write lock, giving up when ctx is done or the connection
// closes.
func (c *Conn) lock(ctx context.Context, mu *wlock) error {
	if !mu.tryLock() && !mu.wait(ctx.Done(), nil, c.closed) {
		if err := ctx.Err(); err != nil && !c.isClosed() {
			return fmt.Errorf("ws: waiting to write: %w", err)
		}
		return c.closedErr("write")
	}
	if c.isClosed() {
		mu.unlock()
		return c.closedErr("write")
	}
	return nil
}

// lockTimeout takes mu within d, for close frames, which must not wait
// forever behind a writer stuck on a dead peer.
func (c *Conn) lockTimeout(mu *wlock, d time.Duration) bool {
	if mu.tryLock() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return mu.wait(nil, t.C, c.closed)
}
