package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/duplexhq/duplex/ws"
)

// upperEcho answers every text message in upper case; it runs on the
// Poller's workers.
type upperEcho struct{ closed chan error }

func (upperEcho) OnMessage(c *ws.Conn, typ ws.MessageType, p []byte) {
	out := make([]byte, len(p)) // p is only valid during the call
	for i, b := range p {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	_ = c.Write(context.Background(), typ, out)
}

func (h upperEcho) OnClose(_ *ws.Conn, err error) { h.closed <- err }

// A server whose connections are read by a Poller: the HTTP handler
// returns right after the handshake, and no goroutine waits on an idle
// connection.
func ExamplePoller() {
	poller, err := ws.NewPoller(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer poller.Close()
	h := upperEcho{closed: make(chan error, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, nil)
		if err != nil {
			return
		}
		if err := poller.Serve(c, h); err != nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := ws.Dial(ctx, "ws"+srv.URL[len("http"):], nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write(ctx, ws.MessageText, []byte("hello poller"))
	_, p, _ := c.Read(ctx)
	fmt.Println(string(p))
	c.Close(ws.StatusNormalClosure, "done")
	fmt.Println("server saw close code", ws.CloseStatus(<-h.closed))
	// Output:
	// HELLO POLLER
	// server saw close code 1000
}
