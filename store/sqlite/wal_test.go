package sqlite

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/store"
)

// TestWALBounded: under sustained appends with readers always busy, the WAL
// file must stay near the restart threshold. With PASSIVE checkpoints alone
// it grew without bound (about 1 GB in a 15 s server run): SQLite only
// writes the WAL from its start again once a checkpoint has copied every
// frame and no reader reads from it, which continuous writes and reads
// never allow.
func TestWALBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes tens of megabytes of WAL")
	}
	const (
		restart  = 1 << 20
		maxBatch = 32
		convs    = 200
		senders  = 32
		each     = 100 // appends per sender: 3,200 in all, over 30 MB of WAL without restarts
	)
	// The writer restarts the WAL at twice the threshold at the latest,
	// and one batch can take it past that: at most maxBatch appends, each
	// dirtying a few pages.
	const bound = 2*restart + maxBatch*8*(pageSize+walFrameHeader)
	// Readers are slow under -race on a busy machine: give them time, so
	// that no restart is postponed and the bound below holds.
	s := openInternal(t, Options{MaxBatch: maxBatch, walRestartBytes: restart, walRestartWait: time.Minute})
	ctx := context.Background()
	ids := make([]string, convs)
	for i := range ids {
		c, err := s.CreateDirect(ctx, fmt.Sprint("a", i), fmt.Sprint("b", i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
	}
	walSize := func() int64 {
		fi, err := os.Stat(s.opts.Path + "-wal")
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	var largest atomic.Int64
	observe := func() {
		for n := walSize(); ; {
			m := largest.Load()
			if n <= m || largest.CompareAndSwap(m, n) {
				return
			}
		}
	}

	// Readers keep read transactions going for the whole test, as the
	// server's sessions do.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.MessagesBefore(ctx, ids[i%convs], 0, 20); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range senders {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range each {
				c := (w*7 + i) % convs
				if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: ids[c], Sender: fmt.Sprint("a", c),
					ClientMsgID: fmt.Sprint(w, "-", i), Body: "hello, this is a typical short chat message"}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					observe()
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	observe()
	if got := largest.Load(); got > bound {
		t.Errorf("WAL file reached %d bytes, want at most %d (restart threshold %d)", got, bound, restart)
	}
}
