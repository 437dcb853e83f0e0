package interop

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/duplexhq/duplex/ws"
)

// Concurrent writers: the contract lets any number of goroutines write to
// one Conn. With compression the writes share one sliding window, so a
// message interleaved into another, or compressed against a window the peer
// does not have, shows up at the peer as a corrupt or mixed-up message.

const (
	writers          = 6
	writerMessages   = 40
	writersTotalMsgs = writers * writerMessages
)

// writerSizes cycle below and above the compression threshold, and past
// one frame buffer.
var writerSizes = []int{10, 200, 5000, 70000}

func writerMessage(w, i int) []byte {
	head := fmt.Appendf(nil, "w=%d i=%d;", w, i)
	return append(head, textPayload(writerSizes[i%len(writerSizes)], w*1000+i)...)
}

// writeConcurrently sends every writer's messages from its own goroutine,
// through Write, Writer and WritePrepared in turn.
func writeConcurrently(ctx context.Context, c *ws.Conn) error {
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writerMessages {
				m := writerMessage(w, i)
				var err error
				switch i % 3 {
				case 0:
					err = c.Write(ctx, ws.MessageText, m)
				case 1:
					var wr interface {
						Write([]byte) (int, error)
						Close() error
					}
					if wr, err = c.Writer(ctx, ws.MessageText); err == nil {
						for p := m; len(p) > 0 && err == nil; p = p[min(len(p), streamChunk):] {
							_, err = wr.Write(p[:min(len(p), streamChunk)])
						}
						if cerr := wr.Close(); err == nil {
							err = cerr
						}
					}
				case 2:
					var pm *ws.PreparedMessage
					if pm, err = ws.NewPreparedMessage(ws.MessageText, m); err == nil {
						err = c.WritePrepared(ctx, pm)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d message %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// verifyConcurrent reads every writer's messages at the peer, checking each
// is whole and each writer's order is kept.
func verifyConcurrent(ctx context.Context, ep endpoint) error {
	next := make([]int, writers)
	for n := range writersTotalMsgs {
		typ, p, err := ep.recv(ctx)
		if err != nil {
			return fmt.Errorf("after %d messages: %w", n, err)
		}
		var w, i int
		if _, err := fmt.Sscanf(string(p), "w=%d i=%d;", &w, &i); err != nil || w < 0 || w >= writers {
			return fmt.Errorf("message %d: unparsable head %q", n, p[:min(len(p), 20)])
		}
		if i != next[w] {
			return fmt.Errorf("writer %d: got message %d, want %d", w, i, next[w])
		}
		if want := writerMessage(w, i); typ != ws.MessageText || !bytes.Equal(p, want) {
			return fmt.Errorf("writer %d message %d: %s", w, i, firstDiff(p, want))
		}
		next[w]++
	}
	return nil
}

func TestConcurrentWritersOurServer(t *testing.T) {
	tests := []struct {
		name string
		side ourSide
		dial peerDial
	}{
		{"coder-ctx", ourCtx, dialCoder(coderCtx)},
		{"coder-noctx", ourNoCtx, dialCoder(coderCtx)},
		{"gorilla", ourCtx, dialGorilla(true)},
		{"gws-ctx", ourCtx, dialGWS(gwsCtx)},
		{"plain", ourOff, dialCoder(coderOff)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), sessionTimeout)
			defer cancel()
			wrote := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := ws.Accept(w, r, &ws.AcceptOptions{Compression: tc.side.compression})
				if err != nil {
					wrote <- err
					return
				}
				defer c.CloseNow()
				wrote <- writeConcurrently(ctx, c)
				// Read until the client's close, which answers the handshake.
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			ep, _, err := tc.dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ep.abort()
			if err := verifyConcurrent(ctx, ep); err != nil {
				t.Errorf("peer: %v", err)
			}
			if err := <-wrote; err != nil {
				t.Errorf("our writers: %v", err)
			}
			ep.closeWith(1000, "")
		})
	}
}

func TestConcurrentWritersOurClient(t *testing.T) {
	for _, mode := range []websocket.CompressionMode{coderCtx, coderNoCtx} {
		t.Run(fmt.Sprintf("coder-mode-%d", mode), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), sessionTimeout)
			defer cancel()
			verified := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
				if err != nil {
					verified <- err
					return
				}
				ep := newCoderEndpoint(c)
				defer ep.abort()
				err = verifyConcurrent(ctx, ep)
				verified <- err
				ep.closeWith(1000, "")
			}))
			defer srv.Close()
			c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
				&ws.DialOptions{Compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			readDone := make(chan struct{})
			go func() { // answers the server's close
				defer close(readDone)
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
			if err := writeConcurrently(ctx, c); err != nil {
				t.Errorf("our writers: %v", err)
			}
			if err := <-verified; err != nil {
				t.Errorf("coder server: %v", err)
			}
			<-readDone
		})
	}
}
