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

func TestEchoAndShutdown(t *testing.T) {
	ctx, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	conns := &tracker{}
	opts := &ws.AcceptOptions{
		Compression:              ws.CompressionOptions{Mode: ws.CompressionContextTakeover},
		ReadLimit:                64 << 20,
		InsecureSkipVerifyOrigin: true,
	}
	srv := httptest.NewServer(echoHandler(ctx, opts, conns, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()

	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := ws.Dial(dctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &ws.DialOptions{
		Compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover},
		Header:      http.Header{"Origin": {"https://conformance.invalid"}},
		ReadLimit:   64 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if !c.Compressed() {
		t.Error("permessage-deflate not negotiated")
	}
	big := bytes.Repeat([]byte{0, 1, 2, 3, 0xff}, 1<<20/5) // several frames and deflate blocks
	for _, m := range []struct {
		typ ws.MessageType
		p   []byte
	}{{ws.MessageText, []byte("héllo")}, {ws.MessageBinary, []byte{}}, {ws.MessageBinary, big}} {
		if err := c.Write(dctx, m.typ, m.p); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.Read(dctx)
		if err != nil || typ != m.typ || !bytes.Equal(p, m.p) {
			t.Fatalf("echo of %d-byte %v = %v, %d bytes, %v", len(m.p), m.typ, typ, len(p), err)
		}
	}

	// Shutdown closes the connection with 1001 and waits for it.
	shutdown()
	_, _, err = c.Read(dctx)
	if got := ws.CloseStatus(err); got != ws.StatusGoingAway {
		t.Fatalf("read after shutdown = %v (status %d), want close 1001", err, got)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := conns.closeAndWait(wctx); err != nil {
		t.Fatal(err)
	}
	// New connections are turned away once shutdown began.
	c2, _, err := ws.Dial(dctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if _, _, err := c2.Read(dctx); ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Fatalf("new connection during shutdown: %v, want close 1001", err)
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]ws.CompressionMode{
		"context-takeover":    ws.CompressionContextTakeover,
		"no-context-takeover": ws.CompressionNoContextTakeover,
		"off":                 ws.CompressionDisabled,
	} {
		if got, err := parseMode(s); err != nil || got != want {
			t.Errorf("parseMode(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := parseMode("on"); err == nil {
		t.Error("parseMode(on) succeeded")
	}
}
