package ws

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer is an httptest server that accepts with opts and echoes every
// message; handlers are waited for on cleanup.
func echoServer(t *testing.T, opts *AcceptOptions) *httptest.Server {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		echo(c)
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return srv
}

// echo reads messages from c and writes each back with its type until
// either fails.
func echo(c *Conn) {
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

func TestHandshakeEndToEnd(t *testing.T) {
	ctxTakeover := CompressionOptions{Mode: CompressionContextTakeover}
	tests := []struct {
		name         string
		server       AcceptOptions
		client       DialOptions
		subprotocol  string
		compressed   bool
		extHeaderHas string
	}{
		{"plain", AcceptOptions{}, DialOptions{}, "", false, ""},
		{"subprotocol", AcceptOptions{Subprotocols: []string{"b", "a"}}, DialOptions{Subprotocols: []string{"a", "b"}}, "b", false, ""},
		{"subprotocol not shared", AcceptOptions{Subprotocols: []string{"a"}}, DialOptions{Subprotocols: []string{"z"}}, "", false, ""},
		{"deflate", AcceptOptions{Compression: ctxTakeover}, DialOptions{Compression: ctxTakeover}, "", true, "permessage-deflate"},
		{"deflate no context takeover", AcceptOptions{Compression: ctxTakeover},
			DialOptions{Compression: CompressionOptions{Mode: CompressionNoContextTakeover}}, "", true, "server_no_context_takeover"},
		{"deflate offered, server declines", AcceptOptions{}, DialOptions{Compression: ctxTakeover}, "", false, ""},
		{"server would deflate, client does not offer", AcceptOptions{Compression: ctxTakeover}, DialOptions{}, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := echoServer(t, &tt.server)
			tt.client.Proxy = direct
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := Dial(ctx, wsURL(srv), &tt.client)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.CloseNow()
			if c.Subprotocol() != tt.subprotocol || c.Compressed() != tt.compressed {
				t.Errorf("Subprotocol %q, Compressed %v; want %q, %v", c.Subprotocol(), c.Compressed(), tt.subprotocol, tt.compressed)
			}
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, tt.extHeaderHas) || (tt.extHeaderHas == "") != (ext == "") {
				t.Errorf("Sec-WebSocket-Extensions %q, want it to contain %q", ext, tt.extHeaderHas)
			}
			msg := bytes.Repeat([]byte("hello, duplex "), 100)
			for _, typ := range []MessageType{MessageText, MessageBinary} {
				if err := c.Write(ctx, typ, msg); err != nil {
					t.Fatalf("Write: %v", err)
				}
				gotTyp, got, err := c.Read(ctx)
				if err != nil || gotTyp != typ || !bytes.Equal(got, msg) {
					t.Fatalf("Read = %v, %d bytes, %v; want the %v echo", gotTyp, len(got), err, typ)
				}
			}
			if err := c.Close(StatusNormalClosure, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestAcceptConnFrameInSameSegment checks that a frame the client sent with
// its request reaches the Conn through the handed-over buffer.
func TestAcceptConnFrameInSameSegment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		c, _, err := AcceptConn(context.Background(), nc, nil)
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, p, err := c.Read(ctx)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(p)
	}()
	addr := ln.Addr().String()
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | 5, mask[0], mask[1], mask[2], mask[3]}
	for i, b := range []byte("hello") {
		frame = append(frame, b^mask[i%4])
	}
	nc, _, resp := rawExchange(t, addr, strings.Replace(rawUpgrade, "%s", addr, 1)+"\r\n"+string(frame))
	defer nc.Close()
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("server read %q, want hello", s)
	}
}

// TestDialFrameInSameSegment checks that a frame the server sent with its
// 101 reaches the client Conn.
func TestDialFrameInSameSegment(t *testing.T) {
	fs := newFakeServer(t, func(req *http.Request) string {
		return goodResponse(req, "") + "\x81\x05hello"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "ws://"+fs.addr, &DialOptions{Proxy: direct})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	typ, p, err := c.Read(ctx)
	if err != nil || typ != MessageText || string(p) != "hello" {
		t.Fatalf("Read = %v %q %v; want text hello", typ, p, err)
	}
}

func TestDialBadDeflateResponse(t *testing.T) {
	tests := []struct{ name, ext string }{
		{"unknown extension", "x-webkit-deflate-frame"},
		{"window bits out of range", "permessage-deflate; server_max_window_bits=99"},
		{"unknown parameter", "permessage-deflate; color=blue"},
		{"malformed", "permessage-deflate;;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, func(req *http.Request) string {
				return goodResponse(req, "Sec-WebSocket-Extensions: "+tt.ext+"\r\n")
			})
			c, resp, err := Dial(context.Background(), "ws://"+fs.addr,
				&DialOptions{Proxy: direct, Compression: CompressionOptions{Mode: CompressionContextTakeover}})
			if c != nil || !errors.Is(err, ErrBadHandshake) || resp == nil {
				t.Fatalf("Dial = %v, %v, %v; want ErrBadHandshake with the response", c, resp, err)
			}
		})
	}
}

func TestAcceptBadExtensionOffer(t *testing.T) {
	for _, mode := range []CompressionMode{CompressionDisabled, CompressionContextTakeover} {
		r := newUpgradeRequest()
		r.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; =oops")
		w := httptest.NewRecorder()
		_, err := Accept(w, r, &AcceptOptions{Compression: CompressionOptions{Mode: mode}})
		if w.Code != 400 || !errors.Is(err, ErrBadHandshake) || strings.TrimSpace(w.Body.String()) != "bad Sec-WebSocket-Extensions" {
			t.Errorf("mode %d: status %d body %q err %v; want 400 bad Sec-WebSocket-Extensions", mode, w.Code, w.Body, err)
		}
	}
}

// TestAcceptHTTPServerTimeoutsCleared checks that an http.Server's read and
// write timeouts do not kill a long-lived WebSocket: Hijack clears them and
// Accept must not reinstate them.
func TestAcceptHTTPServerTimeoutsCleared(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	var wg sync.WaitGroup
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		echo(c)
	})
	srv.Start()
	defer func() {
		srv.Close()
		wg.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, wsURL(srv), &DialOptions{Proxy: direct})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	time.Sleep(400 * time.Millisecond) // past both server timeouts
	if err := c.Write(ctx, MessageText, []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "still there?" {
		t.Fatalf("Read = %q, %v after the server's timeouts passed", p, err)
	}
}

// TestAcceptConnTLS serves wss:// from a plain listener wrapped in TLS.
func TestAcceptConnTLS(t *testing.T) {
	certSrv := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	defer certSrv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, req, err := AcceptConn(ctx, tls.Server(nc, certSrv.TLS), nil)
		if err != nil {
			served <- err
			return
		}
		defer c.CloseNow()
		if req.TLS == nil || !req.TLS.HandshakeComplete {
			served <- errors.New("request has no TLS state")
			return
		}
		echo(c)
		served <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "wss://"+ln.Addr().String()+"/", &DialOptions{
		Proxy:     direct,
		TLSConfig: certSrv.Client().Transport.(*http.Transport).TLSClientConfig,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, MessageText, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "secret" {
		t.Fatalf("Read = %q, %v", p, err)
	}
	c.Close(StatusNormalClosure, "")
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkIdleConnRetained reports the heap an idle connection pair (the
// server's Conn from Accept and the client's from Dial, with their TCP
// sockets and the http.Server's per-connection state) keeps alive after the
// handshake: the handshake's buffers must not be among it.
func BenchmarkIdleConnRetained(b *testing.B) {
	const pairs = 100
	conns := make(chan *Conn, pairs)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		conns <- c
	}))
	defer srv.Close()
	var retained float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var clients, servers []*Conn
		for range pairs {
			c, _, err := Dial(context.Background(), wsURL(srv), &DialOptions{Proxy: direct})
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
			servers = append(servers, <-conns)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		retained += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / pairs
		for i := range clients {
			clients[i].CloseNow()
			servers[i].CloseNow()
		}
	}
	b.ReportMetric(retained/float64(b.N), "B/pair")
}
