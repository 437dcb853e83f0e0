package hub

import (
	"fmt"
	"testing"

	brokermem "github.com/duplexhq/duplex/broker/memory"
)

// counter counts deliveries without keeping them.
type counter struct{ n int }

func (c *counter) Deliver([]byte) { c.n++ }

// BenchmarkFanout measures the hub's part of delivering one event to n
// local connections (the broker handler): one allocation per event (the
// copy the broker contract requires), none per recipient.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			br := brokermem.New(brokermem.Options{})
			defer br.Close()
			h := New(br, nil)
			defer h.Close()
			conns := make([]*counter, n)
			for i := range conns {
				conns[i] = &counter{}
				if _, err := h.Join("user.bench", conns[i], 0); err != nil {
					b.Fatal(err)
				}
			}
			t := h.topics["user.bench"]
			payload := []byte(`{"type":"message","conv":"c1","seq":1,"sender":"a","client_msg_id":"m","body":"hello","ts":1}`)
			b.ReportAllocs()
			for b.Loop() {
				t.fanout("user.bench", payload)
			}
			if conns[n-1].n == 0 {
				b.Fatal("nothing delivered")
			}
		})
	}
}

// TestFanoutAllocs pins the allocation profile the benchmark shows: one
// per event whatever the number of recipients.
func TestFanoutAllocs(t *testing.T) {
	br := brokermem.New(brokermem.Options{})
	defer br.Close()
	h := New(br, nil)
	defer h.Close()
	for i := 0; i < 50; i++ {
		h.Join("s", &counter{}, 0)
	}
	tp := h.topics["s"]
	payload := []byte("payload")
	if a := testing.AllocsPerRun(100, func() { tp.fanout("s", payload) }); a != 1 {
		t.Fatalf("%v allocations per event to 50 connections, want 1", a)
	}
}
