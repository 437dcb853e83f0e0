package interop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duplexhq/duplex/ws"
)

// coderReadLimit lifts coder's 32 KiB default above our largest message.
const coderReadLimit = 4 << 20

// coderEndpoint adapts a coder/websocket Conn, which serializes writes and
// completes the close handshake itself.
type coderEndpoint struct {
	c  *websocket.Conn
	in *inbox
}

func newCoderEndpoint(c *websocket.Conn) *coderEndpoint {
	c.SetReadLimit(coderReadLimit)
	e := &coderEndpoint{c: c, in: newInbox()}
	go e.readLoop()
	return e
}

func (e *coderEndpoint) readLoop() {
	for {
		typ, p, err := e.c.Read(context.Background())
		if err != nil {
			e.in.finish(err)
			return
		}
		e.in.deliver(ws.MessageType(typ), p)
	}
}

func (e *coderEndpoint) send(ctx context.Context, typ ws.MessageType, p []byte) error {
	return e.c.Write(ctx, websocket.MessageType(typ), p)
}

func (e *coderEndpoint) recv(ctx context.Context) (ws.MessageType, []byte, error) {
	return e.in.recv(ctx)
}

func (e *coderEndpoint) ping(ctx context.Context) error { return e.c.Ping(ctx) }

func (e *coderEndpoint) closeWith(code int, reason string) error {
	return e.c.Close(websocket.StatusCode(code), reason)
}

func (e *coderEndpoint) abort() error {
	e.c.CloseNow()
	e.in.halt()
	return e.in.waitDone(10 * time.Second)
}

func dialCoder(mode websocket.CompressionMode) peerDial {
	return func(ctx context.Context, url string, tc *tls.Config) (endpoint, http.Header, error) {
		opts := &websocket.DialOptions{CompressionMode: mode}
		if tc != nil {
			// A custom TLS config keeps the transport on HTTP/1.1, which
			// the WebSocket handshake needs.
			opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		}
		c, resp, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("coder dial: %w", err)
		}
		return newCoderEndpoint(c), resp.Header, nil
	}
}

func coderServer(t *testing.T, mode websocket.CompressionMode, useTLS bool) *echoServer {
	return startEchoServer(t, useTLS, func(w http.ResponseWriter, r *http.Request) (endpoint, error) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
		if err != nil {
			return nil, fmt.Errorf("coder accept: %w", err)
		}
		return newCoderEndpoint(c), nil
	})
}

const (
	coderOff   = websocket.CompressionDisabled
	coderCtx   = websocket.CompressionContextTakeover
	coderNoCtx = websocket.CompressionNoContextTakeover
)

// coder offers plain "permessage-deflate" for context takeover and adds both
// no_context_takeover parameters otherwise; as a server it grants what the
// client offered and adds both parameters in its no-context-takeover mode.
func TestCoderClientOurServer(t *testing.T) {
	tests := []struct {
		name string
		ours ourSide
		peer websocket.CompressionMode
		want negotiation
	}{
		{"plain", ourOff, coderOff, wantPlain},
		{"ours-declines", ourOff, coderCtx, wantPlain},
		{"peer-declines", ourCtx, coderOff, wantPlain},
		{"ctx", ourCtx, coderCtx, wantCtx},
		{"ours-noctx", ourNoCtx, coderCtx, wantNoCtx},
		{"peer-noctx", ourCtx, coderNoCtx, wantServerNoCtx},
		{"noctx", ourNoCtx, coderNoCtx, wantNoCtx},
		{"ctx-stream", ourCtxStream, coderCtx, wantCtx},
		{"ctx-prepared", ourCtxPrepared, coderCtx, wantCtx},
		{"ctx-uncompressed-mixed", ourCtxMixed, coderCtx, wantCtx},
		{"ctx-heartbeat", ourCtxHeartbeat, coderCtx, wantCtx},
		{"noctx-prepared", ourNoCtxPrepared, coderCtx, wantNoCtx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ourServerPair(t, tc.ours, tc.want, dialCoder(tc.peer)).run(t)
		})
	}
}

func TestCoderServerOurClient(t *testing.T) {
	tests := []struct {
		name string
		ours ourSide
		peer websocket.CompressionMode
		want negotiation
	}{
		{"plain", ourOff, coderOff, wantPlain},
		{"ours-declines", ourOff, coderCtx, wantPlain},
		{"peer-declines", ourCtx, coderOff, wantPlain},
		{"ctx", ourCtx, coderCtx, wantCtx},
		{"ours-noctx", ourNoCtx, coderCtx, wantNoCtx},
		{"peer-noctx", ourCtx, coderNoCtx, wantNoCtx},
		{"noctx", ourNoCtx, coderNoCtx, wantNoCtx},
		{"ctx-stream", ourCtxStream, coderCtx, wantCtx},
		{"ctx-prepared", ourCtxPrepared, coderCtx, wantCtx},
		{"ctx-uncompressed-mixed", ourCtxMixed, coderCtx, wantCtx},
		{"ctx-heartbeat", ourCtxHeartbeat, coderCtx, wantCtx},
		{"noctx-prepared", ourNoCtxPrepared, coderCtx, wantNoCtx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ourClientPair(coderServer(t, tc.peer, false), tc.ours, tc.want).run(t)
		})
	}
}

// coderCloseInfo reads a coder close error.
func coderCloseInfo(err error) (code int, reason string, ok bool) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason, true
	}
	return 0, "", false
}
