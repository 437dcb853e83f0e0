package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

func startServer(t *testing.T, queue int, opts *ws.AcceptOptions) (*hub, string) {
	t.Helper()
	h := newHub(slog.New(slog.NewTextHandler(io.Discard, nil)), queue)
	srv := httptest.NewServer(routes(h, opts, h.log))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.closeAndWait(ctx); err != nil {
			t.Error(err)
		}
	})
	return h, srv.URL
}

func dial(t *testing.T, ctx context.Context, base string, opts *ws.DialOptions) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func (h *hub) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBroadcastToOthers(t *testing.T) {
	h, url := startServer(t, 8, &ws.AcceptOptions{Compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	deflate := &ws.DialOptions{Compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}}
	a, b, c := dial(t, ctx, url, deflate), dial(t, ctx, url, nil), dial(t, ctx, url, deflate)
	waitFor(t, "three clients", func() bool { return h.size() == 3 })

	long := strings.Repeat("compressible ", 100)
	if err := a.Write(ctx, ws.MessageText, []byte(long)); err != nil {
		t.Fatal(err)
	}
	for name, cl := range map[string]*ws.Conn{"b": b, "c": c} {
		typ, p, err := cl.Read(ctx)
		if err != nil || typ != ws.MessageText || string(p) != long {
			t.Fatalf("%s read %v %d bytes %v; want a's message", name, typ, len(p), err)
		}
	}
	// a must not get its own message back: the next thing it reads is c's.
	if err := c.Write(ctx, ws.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	typ, p, err := a.Read(ctx)
	if err != nil || typ != ws.MessageBinary || !bytes.Equal(p, []byte{1, 2, 3}) {
		t.Fatalf("a read %v %q %v; want c's binary message", typ, p, err)
	}
	if _, p, err := b.Read(ctx); err != nil || !bytes.Equal(p, []byte{1, 2, 3}) {
		t.Fatalf("b read %q %v; want c's binary message", p, err)
	}
}

func TestBroadcastDropsSlowClient(t *testing.T) {
	const msgSize = 1 << 20
	h, url := startServer(t, 1, &ws.AcceptOptions{ReadLimit: 2 * msgSize})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sender := dial(t, ctx, url, nil)
	reader := dial(t, ctx, url, &ws.DialOptions{ReadLimit: 2 * msgSize})
	slow := dial(t, ctx, url, &ws.DialOptions{ReadLimit: 2 * msgSize}) // never reads
	waitFor(t, "three clients", func() bool { return h.size() == 3 })

	// The fast reader keeps up while the slow one's socket buffers and
	// queue fill up; then the slow one is dropped and the rest carry on.
	readErr := make(chan error, 1)
	got := make(chan int, 1000)
	go func() {
		for {
			_, p, err := reader.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			got <- len(p)
		}
	}()
	msg := bytes.Repeat([]byte{7}, msgSize)
	sent := 0
	for h.size() == 3 {
		if sent == 200 {
			t.Fatal("slow client not dropped after 200 MiB")
		}
		if err := sender.Write(ctx, ws.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		sent++
		// Pace the sender to the fast reader, so only the slow one lags.
		select {
		case <-got:
		case err := <-readErr:
			t.Fatalf("fast reader failed after %d messages: %v", sent, err)
		}
	}
	if h.size() != 2 {
		t.Fatalf("%d clients left, want 2", h.size())
	}
	if err := sender.Write(ctx, ws.MessageText, []byte("after")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case n := <-got:
			if n == len("after") {
				// The slow client's connection is gone: draining it ends in
				// an error.
				slow.SetReadDeadline(time.Now().Add(20 * time.Second))
				for {
					if _, _, err := slow.Read(ctx); err != nil {
						return
					}
				}
			}
		case err := <-readErr:
			t.Fatalf("fast reader failed: %v", err)
		}
	}
}

func TestBroadcastShutdown(t *testing.T) {
	h, url := startServer(t, 8, &ws.AcceptOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := dial(t, ctx, url, nil)
	waitFor(t, "one client", func() bool { return h.size() == 1 })
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	done := make(chan error, 1)
	go func() { done <- h.closeAndWait(wctx) }()
	if _, _, err := a.Read(ctx); ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Fatalf("read during shutdown = %v, want close 1001", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Late clients are turned away with 1001.
	b := dial(t, ctx, url, nil)
	if _, _, err := b.Read(ctx); ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Fatalf("late client read = %v, want close 1001", err)
	}
}

func TestIndexPage(t *testing.T) {
	_, url := startServer(t, 1, &ws.AcceptOptions{})
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "new WebSocket(") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(url + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET /nope = %d, want 404", resp.StatusCode)
	}
}
