package ws_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// A server that compresses without keeping history (nothing is held per
// idle connection) and asks clients to compress within 4 KiB windows.
func ExampleCompressionOptions() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{
			Compression: ws.CompressionOptions{
				Mode:                ws.CompressionNoContextTakeover,
				ClientMaxWindowBits: 12,
			},
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, p, err := c.Read(r.Context())
		if err != nil {
			return
		}
		_ = c.Write(r.Context(), typ, p)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &ws.DialOptions{
		Compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	fmt.Println(resp.Header.Get("Sec-WebSocket-Extensions"))

	msg := strings.Repeat(`{"type":"message","text":"hello"}`, 64) // compressed: above Threshold
	if err := c.Write(ctx, ws.MessageText, []byte(msg)); err != nil {
		log.Fatal(err)
	}
	_, echo, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Compressed(), string(echo) == msg)
	// Output:
	// permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12
	// true true
}
