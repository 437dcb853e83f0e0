package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// ourEndpoint adapts a ws.Conn. With stream set it reads through Reader and
// writes through Writer in chunks, so messages go out fragmented; otherwise
// it uses Read and Write. With prepared (or uncompressed) set every other
// message goes out through WritePrepared (or WriteUncompressed), mixing
// other encodings into one compression context.
type ourEndpoint struct {
	c            *ws.Conn
	stream       bool
	prepared     bool
	uncompressed bool
	sent         atomic.Int64
	in           *inbox
}

// streamChunk is the size of each Write to a ws.Writer in stream mode: not
// a divisor of the message sizes, so frames end at odd offsets.
const streamChunk = 7000

func newOurEndpoint(c *ws.Conn, side ourSide) *ourEndpoint {
	e := &ourEndpoint{c: c, stream: side.stream, prepared: side.prepared, uncompressed: side.uncompressed, in: newInbox()}
	go e.readLoop()
	return e
}

// readLoop is the connection's reader; it exits when reading fails, at the
// latest when abort closes the connection.
func (e *ourEndpoint) readLoop() {
	for {
		typ, p, err := readMessage(context.Background(), e.c, e.stream)
		if err != nil {
			e.in.finish(err)
			return
		}
		e.in.deliver(typ, p)
	}
}

func (e *ourEndpoint) send(ctx context.Context, typ ws.MessageType, p []byte) error {
	alternate := (e.prepared || e.uncompressed) && e.sent.Add(1)%2 == 0
	if alternate && e.uncompressed {
		return e.c.WriteUncompressed(ctx, typ, p)
	}
	if alternate && e.prepared {
		pm, err := ws.NewPreparedMessage(typ, p)
		if err != nil {
			return err
		}
		return e.c.WritePrepared(ctx, pm)
	}
	return writeMessage(ctx, e.c, typ, p, e.stream)
}

// readMessage reads one message with Read, or with Reader when stream is
// set.
func readMessage(ctx context.Context, c *ws.Conn, stream bool) (ws.MessageType, []byte, error) {
	if !stream {
		return c.Read(ctx)
	}
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	p, err := io.ReadAll(r)
	return typ, p, err
}

// writeMessage writes one message with Write, or when stream is set with
// Writer in streamChunk pieces, so that it goes out as several frames.
func writeMessage(ctx context.Context, c *ws.Conn, typ ws.MessageType, p []byte, stream bool) error {
	if !stream {
		return c.Write(ctx, typ, p)
	}
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for len(p) > 0 {
		n := min(len(p), streamChunk)
		if _, err := w.Write(p[:n]); err != nil {
			w.Close()
			return err
		}
		p = p[n:]
	}
	return w.Close()
}

func (e *ourEndpoint) recv(ctx context.Context) (ws.MessageType, []byte, error) {
	return e.in.recv(ctx)
}

func (e *ourEndpoint) ping(ctx context.Context) error { return e.c.Ping(ctx) }

func (e *ourEndpoint) closeWith(code int, reason string) error {
	return e.c.Close(ws.StatusCode(code), reason)
}

func (e *ourEndpoint) abort() error {
	e.c.CloseNow()
	e.in.halt()
	return e.in.waitDone(10 * time.Second)
}

// ourSide configures our end of a pair.
type ourSide struct {
	compression ws.CompressionOptions
	stream      bool // Reader and Writer instead of Read and Write
	prepared    bool // every other message through WritePrepared
	// uncompressed sends every other message through WriteUncompressed.
	uncompressed bool
	// heartbeat is the PingInterval (with a generous PongTimeout).
	heartbeat time.Duration
	tls       bool // wss:// (when our side is the server)
}

// ourServer serves ws.Accept with side's options; compressed waits for the
// next connection it accepts and reports its Compressed(). (The client may
// see the 101 response before Accept has returned.)
func ourServer(t *testing.T, side ourSide) (srv *echoServer, compressed func() (bool, error)) {
	accepted := make(chan bool, 16)
	srv = startEchoServer(t, side.tls, func(w http.ResponseWriter, r *http.Request) (endpoint, error) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{
			Compression:  side.compression,
			PingInterval: side.heartbeat,
			PongTimeout:  time.Minute,
		})
		if err != nil {
			return nil, fmt.Errorf("ws.Accept: %w", err)
		}
		select {
		case accepted <- c.Compressed():
		default:
		}
		return newOurEndpoint(c, side), nil
	})
	return srv, func() (bool, error) {
		select {
		case v := <-accepted:
			return v, nil
		case <-time.After(10 * time.Second):
			return false, errors.New("ws.Accept did not return")
		}
	}
}

// ourClientPair makes the pair in which ws.Dial connects to a peer's echo
// server.
func ourClientPair(srv *echoServer, side ourSide, want negotiation) pair {
	var last atomic.Bool
	wire := new(wireCounter)
	dial := func(ctx context.Context) (endpoint, http.Header, error) {
		var d net.Dialer
		c, resp, err := ws.Dial(ctx, srv.url, &ws.DialOptions{
			Compression:  side.compression,
			PingInterval: side.heartbeat,
			PongTimeout:  time.Minute,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: nc, ctr: wire}, nil
			},
			Proxy:     func(*http.Request) (*url.URL, error) { return nil, nil },
			TLSConfig: srv.tls,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("ws.Dial: %w", err)
		}
		last.Store(c.Compressed())
		return newOurEndpoint(c, side), resp.Header, nil
	}
	return pair{
		dial:             dial,
		reports:          srv.reports,
		ourServer:        false,
		ourCompressed:    func() (bool, error) { return last.Load(), nil },
		wire:             wire,
		want:             want,
		halfUncompressed: side.uncompressed,
	}
}

// ourServerPair makes the pair in which a peer's client (dial) connects to
// our echo server.
func ourServerPair(t *testing.T, side ourSide, want negotiation, dial peerDial) pair {
	srv, compressed := ourServer(t, side)
	return pair{
		dial:             func(ctx context.Context) (endpoint, http.Header, error) { return dial(ctx, srv.url, srv.tls) },
		reports:          srv.reports,
		ourServer:        true,
		ourCompressed:    compressed,
		wire:             srv.wire,
		want:             want,
		halfUncompressed: side.uncompressed,
	}
}

// Compression settings for our side.
var (
	ourOff   = ourSide{}
	ourCtx   = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover}}
	ourNoCtx = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}}
	// ourCtxStream also goes through Reader and Writer.
	ourCtxStream = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, stream: true}
	// ourCtxPrepared and ourNoCtxPrepared mix WritePrepared with Write.
	ourCtxPrepared   = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, prepared: true}
	ourNoCtxPrepared = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}, prepared: true}
	// ourCtxMixed sends every other message uncompressed: those must stay
	// out of the sliding window, which the peer builds from compressed
	// messages only.
	ourCtxMixed = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, uncompressed: true}
	// ourCtxHeartbeat pings every 2ms, so heartbeat pings (and the peer's
	// pongs) keep crossing the compressed traffic.
	ourCtxHeartbeat = ourSide{compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, heartbeat: 2 * time.Millisecond}
)
