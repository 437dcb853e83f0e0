package ws_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/duplexhq/duplex/ws"
)

// dialEcho starts a server running handle on each connection and dials it.
func dialEcho(handle func(c *ws.Conn)) (*ws.Conn, func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		handle(c)
	}))
	c, _, err := ws.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	return c, func() { c.CloseNow(); srv.Close() }
}

// A message prepared once is written to many connections: a server writes
// the same frame bytes to each.
func ExamplePreparedMessage() {
	c, done := dialEcho(func(c *ws.Conn) {
		pm, err := ws.NewPreparedMessage(ws.MessageText, []byte("to everyone"))
		if err != nil {
			return
		}
		for range 2 { // imagine one write per subscriber
			if err := c.WritePrepared(context.Background(), pm); err != nil {
				return
			}
		}
		c.Close(ws.StatusNormalClosure, "")
	})
	defer done()
	for {
		_, p, err := c.Read(context.Background())
		if err != nil {
			fmt.Println("closed with", ws.CloseStatus(err))
			return
		}
		fmt.Println(string(p))
	}
	// Output:
	// to everyone
	// to everyone
	// closed with 1000
}

// Writer sends a message in fragments as it is produced; Reader consumes one
// as a stream.
func ExampleConn_Writer() {
	c, done := dialEcho(func(c *ws.Conn) {
		_, r, err := c.Reader(context.Background())
		if err != nil {
			return
		}
		b, _ := io.ReadAll(r)
		c.Write(context.Background(), ws.MessageText, []byte(fmt.Sprintf("got %d bytes", len(b))))
		c.Read(context.Background()) // until the client closes
	})
	defer done()
	w, err := c.Writer(context.Background(), ws.MessageText)
	if err != nil {
		panic(err)
	}
	for range 3 {
		io.WriteString(w, strings.Repeat("x", 10000))
	}
	w.Close()
	_, p, _ := c.Read(context.Background())
	fmt.Println(string(p))
	fmt.Println(c.Close(ws.StatusNormalClosure, "bye"))
	// Output:
	// got 30000 bytes
	// <nil>
}

// Ping needs a goroutine reading the connection, which receives the pong.
func ExampleConn_Ping() {
	c, done := dialEcho(func(c *ws.Conn) {
		c.Read(context.Background()) // answers pings until the client closes
	})
	defer done()
	go c.Read(context.Background())
	fmt.Println(c.Ping(context.Background()))
	// Output: <nil>
}
