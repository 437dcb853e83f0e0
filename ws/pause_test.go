package ws_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// pauseHandler pauses its connection on the message "pause" and answers
// it, so that the peer knows everything it sends next arrives paused.
type pauseHandler struct {
	got    chan string
	closed chan error
}

func (h *pauseHandler) OnMessage(c *ws.Conn, _ ws.MessageType, p []byte) {
	if string(p) == "pause" {
		c.Pause()
		_ = c.Write(context.Background(), ws.MessageText, []byte("paused"))
	}
	h.got <- string(p)
}

func (h *pauseHandler) OnClose(_ *ws.Conn, err error) { h.closed <- err }

// TestPollerPause: a paused connection delivers nothing more until Resume,
// then everything in order; a local close ends it while paused. Run over
// plain TCP (polled by epoll) and over TLS (a goroutine reader).
func TestPollerPause(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"polled", false}, {"goroutine", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := &pauseHandler{got: make(chan string, 16), closed: make(chan error, 1)}
			served := make(chan *ws.Conn, 1)
			hf := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := ws.Accept(w, r, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if err := testPoller.Serve(c, h); err != nil {
					t.Error(err)
					return
				}
				served <- c
			})
			srv := httptest.NewUnstartedServer(hf)
			var opts ws.DialOptions
			if tc.tls {
				srv.StartTLS()
				opts.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			} else {
				srv.Start()
			}
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := ws.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			sc := <-served

			write := func(s string) {
				t.Helper()
				if err := c.Write(ctx, ws.MessageText, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			next := func() string {
				t.Helper()
				select {
				case s := <-h.got:
					return s
				case <-ctx.Done():
					t.Fatal("no message delivered")
					return ""
				}
			}
			write("pause")
			if _, p, err := c.Read(ctx); err != nil || string(p) != "paused" {
				t.Fatalf("Read = %q, %v; want the handler's answer", p, err)
			}
			if s := next(); s != "pause" {
				t.Fatalf("delivered %q, want pause", s)
			}
			for _, s := range []string{"a", "b", "c"} {
				write(s)
			}
			select {
			case s := <-h.got:
				t.Fatalf("%q delivered while paused", s)
			case <-time.After(200 * time.Millisecond):
			}
			sc.Resume()
			for _, want := range []string{"a", "b", "c"} {
				if s := next(); s != want {
					t.Fatalf("after Resume delivered %q, want %q", s, want)
				}
			}

			// Paused again, the connection still ends when closed here.
			sc.Pause()
			write("unread")
			sc.CloseNow()
			select {
			case err := <-h.closed:
				if err == nil {
					t.Fatal("OnClose got a nil error")
				}
			case <-ctx.Done():
				t.Fatal("a paused connection closed locally did not end")
			}
		})
	}
}

// TestPollerServeRacesWriters: Serve may run while other goroutines
// already write to, set deadlines on or close the connection (a server
// queues its greeting before handing the connection over); with -race this
// checks that Serve's take-over is ordered with them.
func TestPollerServeRacesWriters(t *testing.T) {
	ended := make(chan error, 64)
	h := &pauseHandler{got: make(chan string, 64), closed: ended}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		go func() {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_ = c.Write(context.Background(), ws.MessageText, []byte("hello"))
			_ = c.Close(ws.StatusGoingAway, "bye")
		}()
		if err := testPoller.Serve(c, h); err != nil {
			// Close already finished the connection: nothing to serve.
			c.CloseNow()
			ended <- err
		}
	}))
	defer srv.Close()
	const n = 20
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := ws.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		for {
			if _, _, err := c.Read(ctx); err != nil {
				if code := ws.CloseStatus(err); code != ws.StatusGoingAway {
					t.Fatalf("connection ended with %v, want the server's 1001", err)
				}
				break
			}
		}
		c.CloseNow()
		cancel()
	}
	for range n {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("a connection closed while being handed to the Poller never ended")
		}
	}
}
