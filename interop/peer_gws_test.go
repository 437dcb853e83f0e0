package interop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
	"github.com/lxzan/gws"
)

// gwsEndpoint adapts an lxzan/gws Conn, whose API is callbacks: gwsEvents
// routes them to the endpoint stored in the connection's session.
type gwsEndpoint struct {
	c     *gws.Conn
	in    *inbox
	pongs *pongWaiter
	// closing is held across WriteClose and taken by OnClose. gws v1.8.9
	// updates a server's compression window after writing a frame, while
	// its ReadLoop returns that window to a pool right after OnClose: a
	// close answered quickly made the race detector flag gws itself.
	closing sync.Mutex
}

const gwsSessionKey = "interop-endpoint"

// startGWS attaches an endpoint to c and starts its read loop.
func startGWS(c *gws.Conn) *gwsEndpoint {
	e := &gwsEndpoint{c: c, in: newInbox(), pongs: newPongWaiter()}
	c.Session().Store(gwsSessionKey, e)
	go c.ReadLoop()
	return e
}

// gwsEvents is the gws event handler shared by all connections.
type gwsEvents struct{}

func gwsOf(c *gws.Conn) *gwsEndpoint {
	v, _ := c.Session().Load(gwsSessionKey)
	return v.(*gwsEndpoint)
}

func (gwsEvents) OnOpen(*gws.Conn) {}

func (gwsEvents) OnClose(c *gws.Conn, err error) {
	e := gwsOf(c)
	e.in.finish(err)
	e.closing.Lock() // wait for a WriteClose in progress (see closing)
	e.closing.Unlock()
}

// OnPing answers with the ping's payload, as RFC 6455 section 5.5.3
// requires; gws's built-in handler answers with an empty pong.
func (gwsEvents) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

func (gwsEvents) OnPong(c *gws.Conn, p []byte) { gwsOf(c).pongs.got(p) }

func (gwsEvents) OnMessage(c *gws.Conn, m *gws.Message) {
	gwsOf(c).in.deliver(ws.MessageType(m.Opcode), m.Bytes())
	m.Close()
}

func (e *gwsEndpoint) send(ctx context.Context, typ ws.MessageType, p []byte) error {
	return e.c.WriteMessage(gws.Opcode(typ), p)
}

func (e *gwsEndpoint) recv(ctx context.Context) (ws.MessageType, []byte, error) {
	return e.in.recv(ctx)
}

func (e *gwsEndpoint) ping(ctx context.Context) error {
	return e.pongs.ping(ctx, e.in.done, e.c.WritePing)
}

// closeWith sends the close frame; gws then drops the connection at once
// without waiting for the reply, so the peer must cope with a write error
// when it answers.
func (e *gwsEndpoint) closeWith(code int, reason string) error {
	e.closing.Lock()
	defer e.closing.Unlock()
	return e.c.WriteClose(uint16(code), []byte(reason))
}

func (e *gwsEndpoint) abort() error {
	e.c.NetConn().Close()
	e.in.halt()
	return e.in.waitDone(10 * time.Second)
}

func dialGWS(pd gws.PermessageDeflate) peerDial {
	return func(ctx context.Context, url string, tc *tls.Config) (endpoint, http.Header, error) {
		c, resp, err := gws.NewClient(gwsEvents{}, &gws.ClientOption{
			Addr:              url,
			PermessageDeflate: pd,
			CheckUtf8Enabled:  true,
			HandshakeTimeout:  10 * time.Second,
			TlsConfig:         tc,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("gws dial: %w", err)
		}
		return startGWS(c), resp.Header, nil
	}
}

func gwsServer(t *testing.T, pd gws.PermessageDeflate) *echoServer {
	u := gws.NewUpgrader(gwsEvents{}, &gws.ServerOption{
		PermessageDeflate: pd,
		CheckUtf8Enabled:  true,
	})
	return startEchoServer(t, false, func(w http.ResponseWriter, r *http.Request) (endpoint, error) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return nil, fmt.Errorf("gws upgrade: %w", err)
		}
		return startGWS(c), nil
	})
}

// gwsPair runs a pair with pings only after the compressed traffic: gws
// v1.8.9 appends every payload it writes, pings and pongs included, to its
// compression window, so after a ping its context-takeover stream no
// longer inflates at any peer (coder/websocket fails it too).
func gwsPair(p pair) pair {
	p.lastPings = true
	return p
}

// gws settings. Window bits are set explicitly: a gws server defaults to 12
// with context takeover, and says so even to clients that did not offer
// client_max_window_bits.
var (
	gwsOff   = gws.PermessageDeflate{}
	gwsCtx   = gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	gwsNoCtx = gws.PermessageDeflate{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	// gwsServerWindow limits the server's window to 1 KiB: as a client gws
	// offers server_max_window_bits=10 and inflates with only that much
	// history; as a server it compresses with that window.
	gwsServerWindow = gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true, ServerMaxWindowBits: 10, ClientMaxWindowBits: 15}
	// gwsClientWindow limits the client's window: a gws server answers our
	// bare client_max_window_bits offer with client_max_window_bits=10 and
	// inflates our messages with only 1 KiB of history.
	gwsClientWindow = gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 10}
)

func TestGWSClientOurServer(t *testing.T) {
	tests := []struct {
		name string
		ours ourSide
		peer gws.PermessageDeflate
		want negotiation
	}{
		{"plain", ourOff, gwsOff, wantPlain},
		{"ours-declines", ourOff, gwsCtx, wantPlain},
		{"peer-declines", ourCtx, gwsOff, wantPlain},
		{"ctx", ourCtx, gwsCtx, wantCtx},
		{"ours-noctx", ourNoCtx, gwsCtx, wantNoCtx},
		{"peer-noctx", ourCtx, gwsNoCtx, wantServerNoCtx},
		{"ctx-stream", ourCtxStream, gwsCtx, wantCtx},
		{"ctx-prepared", ourCtxPrepared, gwsCtx, wantCtx},
		{"ctx-uncompressed-mixed", ourCtxMixed, gwsCtx, wantCtx},
		{"noctx-prepared", ourNoCtxPrepared, gwsCtx, wantNoCtx},
		// Our server must either decline the offer or honour the 1 KiB
		// window; either way every echo must inflate at the client.
		{"server-window-10", ourCtx, gwsServerWindow, wantMaybeDeflate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gwsPair(ourServerPair(t, tc.ours, tc.want, dialGWS(tc.peer))).run(t)
		})
	}
}

func TestGWSServerOurClient(t *testing.T) {
	tests := []struct {
		name string
		ours ourSide
		peer gws.PermessageDeflate
		want negotiation
	}{
		{"plain", ourOff, gwsOff, wantPlain},
		{"ours-declines", ourOff, gwsCtx, wantPlain},
		{"peer-declines", ourCtx, gwsOff, wantPlain},
		{"ctx", ourCtx, gwsCtx, wantCtx},
		{"ours-noctx", ourNoCtx, gwsCtx, wantNoCtx},
		{"peer-noctx", ourCtx, gwsNoCtx, wantNoCtx},
		{"ctx-stream", ourCtxStream, gwsCtx, wantCtx},
		{"ctx-prepared", ourCtxPrepared, gwsCtx, wantCtx},
		{"ctx-uncompressed-mixed", ourCtxMixed, gwsCtx, wantCtx},
		{"noctx-prepared", ourNoCtxPrepared, gwsCtx, wantNoCtx},
		// gws answers server_max_window_bits=10, which a client must accept
		// (RFC 7692 section 7.1.2.1) and inflate with.
		{"server-window-10", ourCtx, gwsServerWindow, wantCtx},
		// Our compressor must then keep its back-references within 1 KiB
		// across messages, or gws inflates garbage.
		{"client-window-10", ourCtx, gwsClientWindow, wantCtx},
		{"client-window-10-stream", ourCtxStream, gwsClientWindow, wantCtx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gwsPair(ourClientPair(gwsServer(t, tc.peer), tc.ours, tc.want)).run(t)
		})
	}
}

// gwsCloseInfo reads a gws close error.
func gwsCloseInfo(err error) (code int, reason string, ok bool) {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), string(ce.Reason), true
	}
	return 0, "", false
}
