package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duplexhq/duplex/ws"
	gorilla "github.com/gorilla/websocket"
)

// These tests use gorilla as a peer that can misbehave in ways the common
// APIs allow (invalid UTF-8, oversized or malformed frames, control frames
// inside fragmented messages) and check that our side answers with the close
// code RFC 6455 asks for, which the peer then sees.

// startOurEchoEnd serves ws.Accept with opts, echoing until reading fails,
// and reports that error (and the negotiated subprotocol) per connection.
func startOurEchoEnd(t *testing.T, opts *ws.AcceptOptions) (url string, ended <-chan error, subprotocol <-chan string) {
	t.Helper()
	errs := make(chan error, 4)
	subs := make(chan string, 4)
	ctx := t.Context()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, opts)
		if err != nil {
			errs <- fmt.Errorf("ws.Accept: %w", err)
			return
		}
		defer c.CloseNow()
		subs <- c.Subprotocol()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				errs <- err
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				errs <- fmt.Errorf("echo: %w", err)
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), errs, subs
}

func dialGorillaRaw(t *testing.T, url string, compress bool, subprotocols ...string) *gorilla.Conn {
	t.Helper()
	d := gorilla.Dialer{EnableCompression: compress, HandshakeTimeout: 10 * time.Second, Subprotocols: subprotocols}
	c, _, err := d.DialContext(t.Context(), url, nil)
	if err != nil {
		t.Fatalf("gorilla dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("our server never ended the connection")
		return nil
	}
}

// closePayload builds a close frame body with any code, valid or not.
func closePayload(code uint16, reason string) []byte {
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

func TestGorillaBadInput(t *testing.T) {
	const limit = 64 << 10
	deflate := ws.CompressionOptions{Mode: ws.CompressionContextTakeover}
	tests := []struct {
		name     string
		compress bool
		opts     ws.AcceptOptions
		send     func(c *gorilla.Conn) error
		wantCode ws.StatusCode
		wantErr  error
	}{
		{
			name:     "invalid-utf8",
			send:     func(c *gorilla.Conn) error { return c.WriteMessage(gorilla.TextMessage, []byte("ok \xff ok")) },
			wantCode: ws.StatusInvalidPayload, wantErr: ws.ErrInvalidUTF8,
		},
		{
			name:     "truncated-rune",
			send:     func(c *gorilla.Conn) error { return c.WriteMessage(gorilla.TextMessage, []byte("ok \xe6\x97")) },
			wantCode: ws.StatusInvalidPayload, wantErr: ws.ErrInvalidUTF8,
		},
		{
			name:     "invalid-utf8-deflated",
			compress: true, opts: ws.AcceptOptions{Compression: deflate},
			send: func(c *gorilla.Conn) error {
				return c.WriteMessage(gorilla.TextMessage, append(textPayload(1000, 0), 0xc0, 0x80))
			},
			wantCode: ws.StatusInvalidPayload, wantErr: ws.ErrInvalidUTF8,
		},
		{
			name:     "invalid-utf8-in-a-later-fragment",
			compress: true, opts: ws.AcceptOptions{Compression: deflate},
			send: func(c *gorilla.Conn) error {
				w, err := c.NextWriter(gorilla.TextMessage)
				if err != nil {
					return err
				}
				w.Write(textPayload(20000, 0))  // several frames of valid text
				w.Write([]byte("\xed\xa0\x80")) // a UTF-16 surrogate: invalid
				return w.Close()
			},
			wantCode: ws.StatusInvalidPayload, wantErr: ws.ErrInvalidUTF8,
		},
		{
			name: "too-big",
			opts: ws.AcceptOptions{ReadLimit: limit},
			send: func(c *gorilla.Conn) error {
				return c.WriteMessage(gorilla.BinaryMessage, binaryPayload(limit+1, 0))
			},
			wantCode: ws.StatusMessageTooBig, wantErr: ws.ErrMessageTooBig,
		},
		{
			// 1 MiB of one byte deflates to about a kilobyte: the limit
			// must apply to what it inflates to.
			name:     "too-big-once-inflated",
			compress: true, opts: ws.AcceptOptions{Compression: deflate, ReadLimit: limit},
			send: func(c *gorilla.Conn) error {
				return c.WriteMessage(gorilla.BinaryMessage, bytes.Repeat([]byte{'a'}, 1<<20))
			},
			wantCode: ws.StatusMessageTooBig, wantErr: ws.ErrMessageTooBig,
		},
		{
			name: "close-code-1005-on-the-wire",
			send: func(c *gorilla.Conn) error {
				return c.WriteControl(gorilla.CloseMessage, closePayload(1005, ""), time.Now().Add(5*time.Second))
			},
			wantCode: ws.StatusProtocolError, wantErr: ws.ErrProtocol,
		},
		{
			name: "close-code-999",
			send: func(c *gorilla.Conn) error {
				return c.WriteControl(gorilla.CloseMessage, closePayload(999, ""), time.Now().Add(5*time.Second))
			},
			wantCode: ws.StatusProtocolError, wantErr: ws.ErrProtocol,
		},
		{
			name: "close-with-one-byte",
			send: func(c *gorilla.Conn) error {
				return c.WriteControl(gorilla.CloseMessage, []byte{3}, time.Now().Add(5*time.Second))
			},
			wantCode: ws.StatusProtocolError, wantErr: ws.ErrProtocol,
		},
		{
			name: "close-reason-invalid-utf8",
			send: func(c *gorilla.Conn) error {
				return c.WriteControl(gorilla.CloseMessage, closePayload(1000, "bad \xff"), time.Now().Add(5*time.Second))
			},
			wantCode: ws.StatusInvalidPayload, wantErr: ws.ErrInvalidUTF8,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, ended, _ := startOurEchoEnd(t, &tc.opts)
			c := dialGorillaRaw(t, url, tc.compress)
			if err := tc.send(c); err != nil {
				t.Fatalf("gorilla send: %v", err)
			}
			ours := waitErr(t, ended)
			if got := ws.CloseStatus(ours); got != tc.wantCode || !errors.Is(ours, tc.wantErr) {
				t.Errorf("our Read failed with %v (CloseStatus %d), want %d wrapping %v", ours, got, tc.wantCode, tc.wantErr)
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _, err := c.ReadMessage()
			var ce *gorilla.CloseError
			if !errors.As(err, &ce) || ce.Code != int(tc.wantCode) {
				t.Errorf("gorilla saw %v, want a close frame with code %d", err, tc.wantCode)
			}
		})
	}
}

// TestGorillaCloseWithoutStatus: an empty close frame is reported as 1005
// locally, and answered.
func TestGorillaCloseWithoutStatus(t *testing.T) {
	url, ended, _ := startOurEchoEnd(t, nil)
	c := dialGorillaRaw(t, url, false)
	if err := c.WriteControl(gorilla.CloseMessage, nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := ws.CloseStatus(waitErr(t, ended)); got != ws.StatusNoStatusRcvd {
		t.Errorf("our Read: CloseStatus %d, want %d", got, ws.StatusNoStatusRcvd)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || (ce.Code != gorilla.CloseNoStatusReceived && ce.Code != gorilla.CloseNormalClosure) {
		t.Errorf("gorilla saw %v, want our close frame (empty or 1000)", err)
	}
}

// TestGorillaControlInsideFragments: a ping between the frames of a
// fragmented message (allowed by RFC 6455 section 5.4) is answered and the
// message still reassembles, compressed or not.
func TestGorillaControlInsideFragments(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("deflate=%v", compress), func(t *testing.T) {
			opts := &ws.AcceptOptions{}
			if compress {
				opts.Compression.Mode = ws.CompressionContextTakeover
			}
			url, _, _ := startOurEchoEnd(t, opts)
			c := dialGorillaRaw(t, url, compress)
			var pongs atomic.Int64
			c.SetPongHandler(func(s string) error {
				if s == "mid" {
					pongs.Add(1)
				}
				return nil
			})
			// Incompressible chunks larger than gorilla's 4 KiB buffer, so
			// each Write flushes frames before the ping goes out.
			first, second := binaryPayload(20000, 1), binaryPayload(20000, 2)
			w, err := c.NextWriter(gorilla.BinaryMessage)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(first)
			if err := c.WriteControl(gorilla.PingMessage, []byte("mid"), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			w.Write(second)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			typ, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if want := append(first, second...); typ != gorilla.BinaryMessage || !bytes.Equal(got, want) {
				t.Fatalf("echo: %s", firstDiff(got, want))
			}
			// The pong was written before the echo; one more round trip
			// makes sure gorilla has read it even if not.
			c.WriteMessage(gorilla.TextMessage, []byte("sync"))
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatalf("read sync echo: %v", err)
			}
			if pongs.Load() != 1 {
				t.Errorf("got %d pongs for the ping inside the message, want 1", pongs.Load())
			}
		})
	}
}

func TestSubprotocols(t *testing.T) {
	t.Run("our-server", func(t *testing.T) {
		url, _, subs := startOurEchoEnd(t, &ws.AcceptOptions{Subprotocols: []string{"duplex.v1", "duplex.v2"}})
		c := dialGorillaRaw(t, url, false, "duplex.v0", "duplex.v2", "duplex.v1")
		ours := <-subs
		// The server's preference wins among what the client offered.
		if ours != "duplex.v1" || c.Subprotocol() != "duplex.v1" {
			t.Errorf("ours selected %q, gorilla sees %q, want duplex.v1 for both", ours, c.Subprotocol())
		}
	})
	t.Run("our-server-no-match", func(t *testing.T) {
		url, _, subs := startOurEchoEnd(t, &ws.AcceptOptions{Subprotocols: []string{"duplex.v1"}})
		c := dialGorillaRaw(t, url, false, "other")
		if ours := <-subs; ours != "" || c.Subprotocol() != "" {
			t.Errorf("ours selected %q, gorilla sees %q, want none", ours, c.Subprotocol())
		}
	})
	t.Run("our-client", func(t *testing.T) {
		picked := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"duplex.v1"}})
			if err != nil {
				return
			}
			picked <- c.Subprotocol()
			c.Close(websocket.StatusNormalClosure, "")
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
			&ws.DialOptions{Subprotocols: []string{"duplex.v2", "duplex.v1"}})
		if err != nil {
			t.Fatalf("ws.Dial: %v", err)
		}
		defer c.CloseNow()
		if got, peer := c.Subprotocol(), <-picked; got != "duplex.v1" || peer != "duplex.v1" {
			t.Errorf("ours sees %q, coder selected %q, want duplex.v1", got, peer)
		}
	})
}

// TestHeartbeat: with PingInterval our server pings a reading peer, and
// drops a peer that never answers with ErrPongTimeout.
func TestHeartbeat(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		url, ended, _ := startOurEchoEnd(t, &ws.AcceptOptions{PingInterval: 20 * time.Millisecond, PongTimeout: 10 * time.Second})
		c := dialGorillaRaw(t, url, false)
		var pings atomic.Int64
		c.SetPingHandler(func(s string) error {
			pings.Add(1)
			return c.WriteControl(gorilla.PongMessage, []byte(s), time.Now().Add(5*time.Second))
		})
		go func() { // gorilla handles pings while reading
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for deadline := time.Now().Add(30 * time.Second); pings.Load() < 3; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d pings in 30s with a 20ms interval", pings.Load())
			}
		}
		select {
		case err := <-ended:
			t.Fatalf("our server dropped a peer that answers every ping: %v", err)
		default:
		}
	})
	t.Run("unanswered", func(t *testing.T) {
		url, ended, _ := startOurEchoEnd(t, &ws.AcceptOptions{PingInterval: 20 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
		c := dialGorillaRaw(t, url, false)
		c.SetPingHandler(func(string) error { return nil }) // never answers
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		if err := waitErr(t, ended); !errors.Is(err, ws.ErrPongTimeout) {
			t.Errorf("our Read ended with %v, want ErrPongTimeout", err)
		}
	})
}

// TestCloseReasonLimits: a 123-byte reason (the most a close frame holds,
// here with multi-byte runes) reaches gorilla intact; a 124-byte one is
// refused locally with ErrInvalidClose and nothing is sent, so the
// connection still works.
func TestCloseReasonLimits(t *testing.T) {
	longest := strings.Repeat("é", 61) + "x" // 123 bytes
	tooLong := longest + "y"
	closed := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			closed <- err
			return
		}
		defer c.CloseNow()
		if err := c.Close(4002, tooLong); !errors.Is(err, ws.ErrInvalidClose) {
			closed <- fmt.Errorf("Close with a 124-byte reason: %v, want ErrInvalidClose", err)
			return
		}
		if err := c.Write(r.Context(), ws.MessageText, []byte("still open")); err != nil {
			closed <- fmt.Errorf("write after the refused Close: %w", err)
			return
		}
		closed <- c.Close(4002, longest)
	}))
	defer srv.Close()
	c := dialGorillaRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http"), false)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "still open" {
		t.Fatalf("gorilla read %q, %v; want the message sent after the refused Close", p, err)
	}
	_, _, err := c.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Text != longest {
		t.Errorf("gorilla saw %v, want close 4002 with the 123-byte reason", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("our server: %v", err)
	}
}
