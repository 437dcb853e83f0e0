package ws_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// An echo server on net/http, and a client talking to it.
func Example_echo() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{
			Compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover},
		})
		if err != nil {
			return // Accept has answered the request with an HTTP error.
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil {
				return // includes the client's close
			}
			if err := c.Write(context.Background(), typ, p); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &ws.DialOptions{
		Compression: ws.CompressionOptions{Mode: ws.CompressionContextTakeover},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "world"} {
		if err := c.Write(ctx, ws.MessageText, []byte(msg)); err != nil {
			log.Fatal(err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v: %s\n", typ, p)
	}
	fmt.Println("compressed:", c.Compressed())
	c.Close(ws.StatusNormalClosure, "done")
	// Output:
	// text: hello
	// text: world
	// compressed: true
}

// Dial offers subprotocols in the client's order; the server picks by its
// own preference among those offered.
func ExampleDial() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{Subprotocols: []string{"chat.v2", "chat.v1"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Write(r.Context(), ws.MessageText, []byte("welcome, speaking "+c.Subprotocol()))
		c.Read(context.Background()) // until the client closes
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/chat", &ws.DialOptions{
		Subprotocols: []string{"chat.v1", "chat.v2"},
		Header:       http.Header{"Authorization": {"Bearer example-token"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	fmt.Println(resp.StatusCode, c.Subprotocol())
	_, p, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(p))
	c.Close(ws.StatusNormalClosure, "")
	// Output:
	// 101 chat.v2
	// welcome, speaking chat.v2
}

// A refused handshake returns the server's response with the start of its
// body, and an error wrapping ErrBadHandshake.
func ExampleDial_refused() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only same-origin pages and chat.example.com may connect.
		c, err := ws.Accept(w, r, &ws.AcceptOptions{OriginPatterns: []string{"chat.example.com"}})
		if err != nil {
			fmt.Println("server:", err, "| origin refused:", errors.Is(err, ws.ErrOriginRefused))
			return
		}
		c.CloseNow()
	}))
	defer srv.Close()

	_, resp, err := ws.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), &ws.DialOptions{
		Header: http.Header{"Origin": {"https://evil.example"}},
	})
	fmt.Println("client: bad handshake:", errors.Is(err, ws.ErrBadHandshake))
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output:
	// server: ws: origin refused: origin "https://evil.example" not allowed | origin refused: true
	// client: bad handshake: true
	// 403 origin "https://evil.example" not allowed
}

// AcceptConn serves WebSockets from a plain net.Listener, without net/http.
func ExampleAcceptConn() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, req, err := ws.AcceptConn(ctx, nc, &ws.AcceptOptions{MaxHeaderBytes: 4 << 10})
		if err != nil {
			return // AcceptConn has answered and closed nc
		}
		defer c.CloseNow()
		c.Write(ctx, ws.MessageText, []byte("you asked for "+req.URL.Path))
		c.Read(ctx) // until the client closes
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String()+"/feed", nil)
	if err != nil {
		log.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(p))
	c.Close(ws.StatusNormalClosure, "")
	<-served
	// Output: you asked for /feed
}

// A handler that requires a subprotocol and admits browser pages from its
// own host and from *.example.com.
func ExampleAccept() {
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{
			Subprotocols:   []string{"chat.v2"},
			OriginPatterns: []string{"*.example.com"},
			ReadLimit:      1 << 20,
			PingInterval:   30 * time.Second,
		})
		if err != nil {
			log.Printf("websocket handshake from %s: %v", r.RemoteAddr, err)
			return
		}
		if c.Subprotocol() == "" {
			// The client offered nothing we speak.
			c.Close(ws.StatusPolicyViolation, "subprotocol chat.v2 required")
			return
		}
		defer c.CloseNow()
		// ... serve c
	})
}
