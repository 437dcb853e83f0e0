package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

func TestLimits(t *testing.T) {
	e := newEnv(t, envOpts{})

	t.Run("oversized request head", func(t *testing.T) {
		nc, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		req := "GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2*DefaultMaxHeaderBytes) + "\r\n\r\n"
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})

	t.Run("oversized frame", func(t *testing.T) {
		c, _ := e.dial("alice")
		big := `{"type":"ping","id":"` + strings.Repeat("x", DefaultReadLimit) + `"}`
		if err := c.c.Write(context.Background(), ws.MessageText, []byte(big)); err != nil {
			t.Fatal(err)
		}
		if code := c.closed(); code != ws.StatusMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
}

func TestSinkSendAllocs(t *testing.T) {
	w := &wsConn{outbox: newOutbox(1, NewMetrics().queueDrops, false)}
	w.writing.Store(true) // the test drains the queue: no writer goroutine
	frame := []byte(`{"type":"message"}`)
	batch := make([][]byte, 0, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		if !w.Send(frame) {
			t.Fatal("Send refused on an empty queue")
		}
		w.take(batch[:0], 1, 0)
	})
	if allocs != 0 {
		t.Fatalf("Send allocates %v times per frame", allocs)
	}
	// A full queue refuses without blocking and counts the drop.
	w.Send(frame)
	if w.Send(frame) {
		t.Fatal("Send accepted into a full queue")
	}
	w.Close(4009, "slow")
	w.take(batch[:0], 1, 0)
	if w.Send(frame) {
		t.Fatal("Send accepted after Close")
	}
	if err := w.SendWait(context.Background(), frame); err == nil {
		t.Fatal("SendWait accepted after Close")
	}
}

func BenchmarkSinkSend(b *testing.B) {
	w := &wsConn{outbox: newOutbox(DefaultSendQueue, NewMetrics().queueDrops, true)}
	w.writing.Store(true) // the benchmark drains the queue: no writer goroutine
	frame := []byte(`{"type":"message","conv":"c1","seq":1,"sender":"alice","client_msg_id":"m1","body":"hi","ts":1}`)
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		batch := make([][]byte, 0, writeBatchFrames)
		for {
			select {
			case <-w.ready:
				batch = w.take(batch[:0], writeBatchFrames, writeBatchBytes)
			case <-stop:
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for !w.Send(frame) {
		}
	}
	b.StopTimer()
	close(stop)
	<-done
}

// TestOutboxRing: frames leave in the order they were queued across the
// ring's wrap-around and growth, the bound holds, and a drained ring
// shrinks back to its idle size.
func TestOutboxRing(t *testing.T) {
	o := newOutbox(10, NewMetrics().queueDrops, false)
	next, want := 0, 0
	push := func(n int) {
		for range n {
			if !o.Send([]byte{byte(next)}) {
				t.Fatalf("frame %d refused with %d queued", next, o.queued())
			}
			next++
		}
	}
	take := func(n int) {
		got := o.take(nil, n, 1<<20)
		if len(got) != n {
			t.Fatalf("took %d frames, want %d", len(got), n)
		}
		for _, f := range got {
			if int(f[0]) != want {
				t.Fatalf("frame %d left in place of %d", f[0], want)
			}
			want++
		}
	}
	push(3)
	take(2) // the read position moves: later frames wrap around
	push(3) // 4 queued: the first ring is full
	push(6) // grows while wrapped, to the bound of 10
	if o.Send([]byte{0}) {
		t.Fatal("an 11th frame was accepted by a queue of 10")
	}
	o.shrink()
	if len(o.q.buf) != 16 {
		t.Fatalf("ring of %d slots shrunk while frames are queued", len(o.q.buf))
	}
	take(10)
	o.shrink()
	if o.q.buf != nil {
		t.Fatalf("drained ring of %d slots kept", len(o.q.buf))
	}
	push(2)
	take(2)
}
