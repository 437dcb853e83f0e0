package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/store"
	"github.com/duplexhq/duplex/store/sqlite"
)

// BenchmarkAppendParallel measures acknowledged appends per second from many
// concurrent senders spread over many conversations (1,000 users in 500
// direct conversations), each append with its own idempotency key, as the
// chat service issues them. Group commit is what makes this scale: compare
// MaxBatch=1.
// benchSenders is how many goroutines append concurrently (env
// DUPLEX_BENCH_SENDERS overrides; default 256, a quarter of the 1,000-user
// target all sending at once).
var benchSenders = func() int {
	if n, err := strconv.Atoi(os.Getenv("DUPLEX_BENCH_SENDERS")); err == nil && n > 0 {
		return n
	}
	return 256
}()

func BenchmarkAppendParallel(b *testing.B) {
	for _, bc := range []struct {
		name   string
		opts   sqlite.Options
		random bool // random client ids instead of time-ordered ones
	}{
		{"normal", sqlite.Options{}, false},
		{"full", sqlite.Options{Durability: sqlite.DurabilityFull}, false},
		{"full-randomids", sqlite.Options{Durability: sqlite.DurabilityFull}, true},
		{"normal-nobatch", sqlite.Options{MaxBatch: 1}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openTemp(b, bc.opts)
			ctx := context.Background()
			const users = 1000
			convs := make([]store.Conversation, users/2)
			for i := range convs {
				c, err := s.CreateDirect(ctx, fmt.Sprint("u", 2*i), fmt.Sprint("u", 2*i+1))
				if err != nil {
					b.Fatal(err)
				}
				convs[i] = c
			}
			// Client ids are time-ordered, as the bundled clients' UUIDv7
			// are (a zero-padded global count orders the same way), or
			// random (an old client's UUIDv4).
			var worker, idSeq atomic.Int64
			var latMu sync.Mutex
			var lats []time.Duration // every Append's latency, for p99 and max
			b.SetParallelism(benchSenders / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, frames0 := processCPU(), s.Stats().WALFrames
			b.RunParallel(func(pb *testing.PB) {
				w := int(worker.Add(1))
				buf := make([]byte, 0, 32)
				rnd := rand.New(rand.NewPCG(uint64(w), 1))
				var mine []time.Duration
				defer func() {
					latMu.Lock()
					lats = append(lats, mine...)
					latMu.Unlock()
				}()
				for i := 0; pb.Next(); i++ {
					c := convs[(w*7+i)%len(convs)]
					sender := "u" + strconv.Itoa(2*((w*7+i)%len(convs)))
					if bc.random {
						buf = fmt.Appendf(buf[:0], "%016x%016x", rnd.Uint64(), rnd.Uint64())
					} else {
						buf = fmt.Appendf(buf[:0], "%016x", idSeq.Add(1))
					}
					t0 := time.Now()
					_, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: sender,
						ClientMsgID: string(buf), Body: "hello, this is a typical short chat message"})
					mine = append(mine, time.Since(t0))
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu := processCPU() - cpu0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			// CPU per append of the whole process (every goroutine: writer,
			// checkpointer, callers), which depends less than ns/op on how
			// much of a shared machine the run got.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			if st := s.Stats(); st.Batches > 0 {
				b.ReportMetric(float64(st.Writes)/float64(st.Batches), "writes/batch")
				b.ReportMetric(float64(st.WALFrames-frames0)/float64(b.N), "walpages/op")
				// Writer stalls (see Stats) and what callers saw of them.
				b.ReportMetric(ms(st.BatchMax), "batch-max-ms")
				b.ReportMetric(float64(st.SlowBatches), "slow-batches")
				b.ReportMetric(float64(st.Restarts), "restarts")
				b.ReportMetric(ms(st.RestartMax), "restart-max-ms")
				b.ReportMetric(float64(st.RestartFrames)/float64(max(1, st.Restarts)), "restart-frames")
			}
			if len(lats) > 0 {
				slices.Sort(lats)
				b.ReportMetric(ms(lats[len(lats)*99/100]), "p99-ms")
				b.ReportMetric(ms(lats[len(lats)-1]), "max-ms")
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkReadsParallel measures the reads the chat service makes per
// message and per reconnect, from many goroutines on the reader pool.
func BenchmarkReadsParallel(b *testing.B) {
	s := openTemp(b, sqlite.Options{})
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, "owner", "g", []string{"a", "b", "c", "d"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: g.ID, Sender: "a", ClientMsgID: strconv.Itoa(i), Body: "hello"}); err != nil {
			b.Fatal(err)
		}
	}
	reads := []struct {
		name string
		fn   func() error
	}{
		{"Members", func() error { _, err := s.Members(ctx, g.ID); return err }},
		{"Conversation", func() error { _, err := s.Conversation(ctx, g.ID); return err }},
		{"MessagesAfter50", func() error { _, err := s.MessagesAfter(ctx, g.ID, 100, 50); return err }},
		{"Conversations", func() error { _, err := s.Conversations(ctx, "b"); return err }},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.fn(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMarkDeliveredBatch measures a delivered-cursor flush as the chat
// service issues it under load: every member of 1,000 direct conversations
// and 200 groups of 5 (3,000 cursors) moved forward by one message, in one
// call. ns/cursor is what a flush costs the single writer per cursor.
func BenchmarkMarkDeliveredBatch(b *testing.B) {
	s := openTemp(b, sqlite.Options{})
	ctx := context.Background()
	var convs []store.Conversation
	for i := range 1000 {
		c, err := s.CreateDirect(ctx, fmt.Sprint("u", i), fmt.Sprint("u", (i+1)%1000))
		if err != nil {
			b.Fatal(err)
		}
		convs = append(convs, c)
	}
	for i := range 200 {
		c, err := s.CreateGroup(ctx, fmt.Sprint("u", 5*i), "g",
			[]string{fmt.Sprint("u", 5*i+1), fmt.Sprint("u", 5*i+2), fmt.Sprint("u", 5*i+3), fmt.Sprint("u", 5*i+4)})
		if err != nil {
			b.Fatal(err)
		}
		convs = append(convs, c)
	}
	var cursors []store.DeliveredCursor
	senders := make([]string, len(convs))
	for i, c := range convs {
		ms, err := s.Members(ctx, c.ID)
		if err != nil {
			b.Fatal(err)
		}
		senders[i] = ms[0].UserID
		for _, m := range ms {
			cursors = append(cursors, store.DeliveredCursor{UserID: m.UserID, ConversationID: c.ID})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// One more message everywhere, so that every cursor moves.
		for j, c := range convs {
			if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: senders[j], Body: "x"}); err != nil {
				b.Fatal(err)
			}
		}
		for j := range cursors {
			cursors[j].Seq = int64(i + 1)
		}
		b.StartTimer()
		if err := s.MarkDeliveredBatch(ctx, cursors); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(cursors)), "ns/cursor")
}
