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
	"github.com/gorilla/websocket"
)

// gorillaEndpoint adapts a gorilla/websocket Conn. gorilla allows one
// concurrent writer of data messages; control messages may be written
// concurrently with them.
type gorillaEndpoint struct {
	c     *websocket.Conn
	wmu   sync.Mutex
	in    *inbox
	pongs *pongWaiter
}

func newGorillaEndpoint(c *websocket.Conn) *gorillaEndpoint {
	e := &gorillaEndpoint{c: c, in: newInbox(), pongs: newPongWaiter()}
	c.SetPongHandler(func(s string) error {
		e.pongs.got([]byte(s))
		return nil
	})
	go e.readLoop()
	return e
}

func (e *gorillaEndpoint) readLoop() {
	for {
		typ, p, err := e.c.ReadMessage()
		if err != nil {
			e.in.finish(err)
			return
		}
		e.in.deliver(ws.MessageType(typ), p)
	}
}

func (e *gorillaEndpoint) send(ctx context.Context, typ ws.MessageType, p []byte) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		e.c.SetWriteDeadline(d)
	}
	return e.c.WriteMessage(int(typ), p)
}

func (e *gorillaEndpoint) recv(ctx context.Context) (ws.MessageType, []byte, error) {
	return e.in.recv(ctx)
}

func (e *gorillaEndpoint) ping(ctx context.Context) error {
	return e.pongs.ping(ctx, e.in.done, func(p []byte) error {
		return e.c.WriteControl(websocket.PingMessage, p, time.Now().Add(10*time.Second))
	})
}

// closeWith sends a close frame and waits for the reader to get the reply,
// which is gorilla's part of the close handshake left to the application.
func (e *gorillaEndpoint) closeWith(code int, reason string) error {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := e.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(10*time.Second)); err != nil {
		return fmt.Errorf("write close: %w", err)
	}
	if err := e.in.waitDone(30 * time.Second); err != nil {
		return fmt.Errorf("waiting for the close reply: %w", err)
	}
	if _, _, ok := closeInfo(e.in.err); !ok {
		return fmt.Errorf("no close reply: %w", e.in.err)
	}
	return e.c.Close()
}

func (e *gorillaEndpoint) abort() error {
	e.c.Close()
	e.in.halt()
	return e.in.waitDone(10 * time.Second)
}

func dialGorilla(compress bool) peerDial {
	return func(ctx context.Context, url string, tc *tls.Config) (endpoint, http.Header, error) {
		d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: 10 * time.Second, TLSClientConfig: tc}
		c, resp, err := d.DialContext(ctx, url, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("gorilla dial: %w", err)
		}
		return newGorillaEndpoint(c), resp.Header, nil
	}
}

func gorillaServer(t *testing.T, compress, useTLS bool) *echoServer {
	u := websocket.Upgrader{EnableCompression: compress}
	return startEchoServer(t, useTLS, func(w http.ResponseWriter, r *http.Request) (endpoint, error) {
		c, err := u.Upgrade(w, r, nil)
		if err != nil {
			return nil, fmt.Errorf("gorilla upgrade: %w", err)
		}
		return newGorillaEndpoint(c), nil
	})
}

// gorilla offers and answers only "permessage-deflate;
// server_no_context_takeover; client_no_context_takeover".
func TestGorillaClientOurServer(t *testing.T) {
	tests := []struct {
		name     string
		ours     ourSide
		compress bool
		want     negotiation
	}{
		{"plain", ourOff, false, wantPlain},
		{"ours-declines", ourOff, true, wantPlain},
		{"peer-declines", ourCtx, false, wantPlain},
		{"ours-ctx", ourCtx, true, wantServerNoCtx},
		{"ours-noctx", ourNoCtx, true, wantNoCtx},
		{"ours-ctx-stream", ourCtxStream, true, wantServerNoCtx},
		{"ours-ctx-heartbeat", ourCtxHeartbeat, true, wantServerNoCtx},
		{"ours-noctx-prepared", ourNoCtxPrepared, true, wantNoCtx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ourServerPair(t, tc.ours, tc.want, dialGorilla(tc.compress)).run(t)
		})
	}
}

func TestGorillaServerOurClient(t *testing.T) {
	tests := []struct {
		name     string
		ours     ourSide
		compress bool
		want     negotiation
	}{
		{"plain", ourOff, false, wantPlain},
		{"ours-declines", ourOff, true, wantPlain},
		{"peer-declines", ourCtx, false, wantPlain},
		{"ours-ctx", ourCtx, true, wantNoCtx},
		{"ours-noctx", ourNoCtx, true, wantNoCtx},
		{"ours-ctx-stream", ourCtxStream, true, wantNoCtx},
		{"ours-ctx-heartbeat", ourCtxHeartbeat, true, wantNoCtx},
		{"ours-ctx-prepared", ourCtxPrepared, true, wantNoCtx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ourClientPair(gorillaServer(t, tc.compress, false), tc.ours, tc.want).run(t)
		})
	}
}

// gorillaCloseInfo reads a gorilla close error.
func gorillaCloseInfo(err error) (code int, reason string, ok bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text, true
	}
	return 0, "", false
}
