package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// rawConn is the raw mode's own WebSocket connection: lines typed are
// written as text frames exactly as given (so malformed frames can be
// tried too) and every frame from the server is printed as received. It
// does not reconnect; the resilient client stays connected beside it.
type rawConn struct {
	conn   *ws.Conn
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader has ended
}

func dialRaw(ctx context.Context, url, token string, printf func(string, ...any)) (*rawConn, error) {
	dctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	conn, _, err := ws.Dial(dctx, url, &ws.DialOptions{
		Header:       http.Header{"Authorization": {"Bearer " + token}},
		Subprotocols: []string{protocol.Subprotocol},
		ReadLimit:    maxLine,
	})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	rctx, stop := context.WithCancel(context.Background())
	rc := &rawConn{conn: conn, cancel: stop, done: make(chan struct{})}
	go func() { // the reader, ended by close
		defer close(rc.done)
		for {
			typ, p, err := conn.Read(rctx)
			if err != nil {
				var ce *ws.CloseError
				if errors.As(err, &ce) {
					printf("* raw connection closed: %d %s", ce.Code, ce.Reason)
				} else if rctx.Err() == nil {
					printf("* raw connection ended: %v", err)
				}
				return
			}
			if typ == ws.MessageText {
				printf("< %s", p)
			} else {
				printf("< (binary, %d bytes)", len(p))
			}
		}
	}()
	return rc, nil
}

// send writes line as one text frame.
func (rc *rawConn) send(ctx context.Context, line string) error {
	ctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	return rc.conn.Write(ctx, ws.MessageText, []byte(line))
}

// close performs the closing handshake (briefly) and waits for the reader.
func (rc *rawConn) close() {
	rc.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	rc.conn.Close(ws.StatusNormalClosure, "") // the reader sees the peer's close
	rc.cancel()
	<-rc.done
}
