package ws_test

import (
	"context"
	"fmt"

	"github.com/duplexhq/duplex/ws"
)

// A server that has several messages queued for a client sends them with
// one WriteBatch: one system call, and the client reads them one by one.
func ExampleConn_WriteBatch() {
	c, done := dialEcho(func(c *ws.Conn) {
		queued := [][]byte{[]byte("first"), []byte("second"), []byte("third")}
		if err := c.WriteBatch(context.Background(), ws.MessageText, queued); err != nil {
			return
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
	// first
	// second
	// third
	// closed with 1000
}
