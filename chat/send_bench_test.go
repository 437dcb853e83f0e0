package chat

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkSendParallel is BenchmarkSend with many senders at once, as a
// loaded server sees them: the store's group commit shares each commit
// among the concurrent appends, so what remains per message is the
// service's own work (decode, membership, encode, fan-out) and the
// append's share of the batch.
func BenchmarkSendParallel(b *testing.B) {
	e := newEnv(b, Config{RatePerSecond: 1e9, RateBurst: 1 << 30})
	const pairs = 64
	type pair struct {
		sess Session
		conv string
	}
	ps := make([]pair, pairs)
	for i := range ps {
		a, peer := "a"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		c := e.connect(a)
		conv := c.direct(peer)
		c.close()
		sess, err := e.svc.Connect(context.Background(), Identity{UserID: a}, &countSink{})
		if err != nil {
			b.Fatal(err)
		}
		recv, err := e.svc.Connect(context.Background(), Identity{UserID: peer}, &lockedCountSink{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sess.Close(); recv.Close() })
		ps[i] = pair{sess, conv}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(pairs / 2) // goroutines = pairs with GOMAXPROCS 2: one session each
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := ps[(next.Add(1)-1)%pairs] // more goroutines than pairs (other -cpu) share sessions
		i := 0
		for pb.Next() {
			i++
			p.sess.Handle(context.Background(), fmt.Appendf(nil, `{"type":"send","id":"%d","conv":%q,"client_msg_id":"m%d","body":"hello"}`, i, p.conv, i))
		}
	})
}

// lockedCountSink counts frames from concurrent deliveries.
type lockedCountSink struct{ n atomic.Int64 }

func (s *lockedCountSink) Send([]byte) bool  { s.n.Add(1); return true }
func (s *lockedCountSink) Close(int, string) {}
