package ws_test

// Concurrent use: one reader and many writers on one Conn (the documented
// contract), with every message checked byte for byte.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

const (
	writers          = 50
	msgsPerWriter    = 20
	peerMessages     = 200
	concurrencyLimit = 1 << 20
)

// concurrentMessage is message i of writer g: a header naming it and a body
// derived from it, so the receiver can check it exactly.
func concurrentMessage(g, i int) []byte {
	head := fmt.Sprintf("w%02d-%04d-", g, i)
	n := (g*131 + i*17) % 3000
	body := seriesText(g+i, n)
	return append([]byte(head), body...)
}

func TestConformanceConcurrentWriters(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{readLimit: concurrencyLimit, serve: func(ctx context.Context, c *ws.Conn) error {
			var wg sync.WaitGroup
			errs := make(chan error, writers+1)
			for g := range writers {
				wg.Go(func() {
					for i := range msgsPerWriter {
						typ := ws.MessageText
						if (g+i)%2 == 1 {
							typ = ws.MessageBinary
						}
						if err := c.Write(ctx, typ, concurrentMessage(g, i)); err != nil {
							errs <- fmt.Errorf("writer %d message %d: %w", g, i, err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				for i := range peerMessages {
					_, p, err := c.Read(ctx)
					if err != nil {
						errs <- fmt.Errorf("read %d: %w", i, err)
						return
					}
					if want := concurrentMessage(writers, i); !bytes.Equal(p, want) {
						errs <- fmt.Errorf("read %d: %d bytes differ from the %d sent", i, len(p), len(want))
						return
					}
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				return err
			}
			return c.Close(ws.StatusNormalClosure, "")
		}})

		// The raw peer writes its messages from a second goroutine while
		// this one reads.
		sent := make(chan struct{})
		msgs := make([][]byte, peerMessages)
		for i := range msgs {
			msgs[i] = concurrentMessage(writers, i)
		}
		var wb []byte
		for _, m := range msgs {
			body, rsv := m, byte(0)
			if pr.peer.deflate != nil && pr.peer.deflate.canCompress(m) {
				body, rsv = pr.peer.deflate.compress(m), bitRSV1
			}
			wb = appendFrame(wb, frame{fin: true, rsv: rsv, op: opBinary, payload: body}, pr.peer.client)
		}
		pr.peer.nc.SetWriteDeadline(pr.peer.deadline())
		go func() {
			defer close(sent)
			pr.peer.nc.Write(wb)
		}()
		next := make([]int, writers)
		for range writers * msgsPerWriter {
			m := pr.peer.readMessage()
			var g, i int
			if _, err := fmt.Sscanf(string(m.payload), "w%02d-%04d-", &g, &i); err != nil || g < 0 || g >= writers {
				t.Fatalf("unrecognisable message %.40q", m.payload)
			}
			if i != next[g] {
				t.Fatalf("writer %d: got message %d, want %d (lost or reordered)", g, i, next[g])
			}
			next[g]++
			wantOp := opText
			if (g+i)%2 == 1 {
				wantOp = opBinary
			}
			if m.op != wantOp || !bytes.Equal(m.payload, concurrentMessage(g, i)) {
				t.Fatalf("writer %d message %d corrupted (op %#x, %d bytes)", g, i, m.op, len(m.payload))
			}
		}
		<-sent
		pr.peer.expectClose(1000)
		pr.peer.finishClose(1000)
		pr.wantNil()
	})
}

// TestConformanceCloseDuringWrites: Close racing with many writers sends
// one close frame and no data frame after it (RFC 6455 section 5.5.1);
// writers that lose the race get ErrClosed.
func TestConformanceCloseDuringWrites(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for g := range writers {
				wg.Go(func() {
					for i := 0; ; i++ {
						if err := c.Write(ctx, ws.MessageBinary, concurrentMessage(g, i)); err != nil {
							if !errors.Is(err, ws.ErrClosed) {
								errs <- fmt.Errorf("writer %d: %w, want ErrClosed", g, err)
							}
							return
						}
					}
				})
			}
			err := c.Close(ws.StatusGoingAway, "")
			wg.Wait()
			close(errs)
			for werr := range errs {
				return werr
			}
			return err
		}})
		for i := 0; ; i++ {
			f := pr.peer.readFrame()
			if f.op == opClose {
				if code, _, _ := parseClose(f.payload); code != 1001 {
					t.Fatalf("close code %d, want 1001", code)
				}
				break
			}
			if f.op != opBinary || !f.fin {
				t.Fatalf("frame %d: %v", i, f)
			}
		}
		// expectEOF (via finishClose) fails on any byte after the close.
		pr.peer.finishClose(1001)
		pr.wantNil()
	})
}

// TestConformanceWriteContext: a Write blocked on a peer that does not read
// returns when its context ends, instead of hanging.
func TestConformanceWriteContext(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			big := make([]byte, 64<<20) // more than loopback buffers hold
			return c.Write(wctx, ws.MessageBinary, big)
		}})
		// The raw peer reads nothing until the Write gave up.
		select {
		case err := <-pr.done:
			pr.done <- err
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("blocked Write: %v, want context.DeadlineExceeded", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("Write blocked past its context")
		}
	})
}
