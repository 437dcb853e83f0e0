package interop

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
	"github.com/gorilla/websocket"
)

// TestCloseDuringReads closes our client Conn while another goroutine keeps
// reading a flood of messages from a gorilla server: the usual shape of an
// application (one reader goroutine, Close from elsewhere), and the case
// where Close and the reader must hand the read side over to each other.
// Each round must complete the handshake, end the reader, and show the
// server our code.
func TestCloseDuringReads(t *testing.T) {
	const rounds = 20
	seen := make(chan int, rounds)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u websocket.Upgrader
		c, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					code := -1
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						code = ce.Code
					}
					seen <- code
					return
				}
			}
		}()
		deadline := time.Now().Add(sessionTimeout)
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-readDone:
				return
			default:
			}
			// gorilla answers our close frame from its reader; writes fail
			// once it has.
			if err := c.WriteMessage(websocket.TextMessage, []byte("tick")); err != nil {
				<-readDone
				return
			}
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	for round := range rounds {
		ctx, cancel := context.WithTimeout(t.Context(), sessionTimeout)
		c, _, err := ws.Dial(ctx, url, nil)
		if err != nil {
			cancel()
			t.Fatalf("round %d: dial: %v", round, err)
		}
		var got atomic.Int64
		readerDone := make(chan error, 1)
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					readerDone <- err
					return
				}
				got.Add(1)
				runtime.Gosched() // the application handles the message
			}
		}()
		for wait := time.Now().Add(10 * time.Second); got.Load() < 10; {
			if time.Now().After(wait) {
				t.Fatalf("round %d: only %d messages read in 10s", round, got.Load())
			}
			time.Sleep(time.Millisecond)
		}
		if err := c.Close(driverCloseCode, "bye"); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		select {
		case err := <-readerDone:
			if ws.CloseStatus(err) == -1 && !errors.Is(err, ws.ErrClosed) {
				t.Errorf("round %d: reader ended with %v, want a close error or ErrClosed", round, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: reader still running 10s after Close", round)
		}
		select {
		case code := <-seen:
			if code != driverCloseCode {
				t.Errorf("round %d: server saw close code %d, want %d", round, code, driverCloseCode)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: server never saw the close", round)
		}
		c.CloseNow()
		cancel()
	}
}
