package chat

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	brokermem "github.com/duplexhq/duplex/broker/memory"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/store"
	"github.com/duplexhq/duplex/store/sqlite"
)

// countingStore is the real SQLite store, counting the calls that write
// delivered cursors. failBatches > 0 makes that many MarkDeliveredBatch
// calls fail the way they fail under load: it passes them to the store
// with a deadline that has already passed, so the store itself answers
// context.DeadlineExceeded and writes nothing.
type countingStore struct {
	*sqlite.Store

	mu          sync.Mutex
	single      int // MarkDelivered calls
	batches     int // MarkDeliveredBatch calls
	cursors     int // entries passed to MarkDeliveredBatch
	failBatches int
}

func (c *countingStore) MarkDelivered(ctx context.Context, userID, convID string, seq int64) (int64, error) {
	c.mu.Lock()
	c.single++
	c.mu.Unlock()
	return c.Store.MarkDelivered(ctx, userID, convID, seq)
}

func (c *countingStore) MarkDeliveredBatch(ctx context.Context, cursors []store.DeliveredCursor) error {
	c.mu.Lock()
	c.batches++
	c.cursors += len(cursors)
	fail := c.failBatches > 0
	if fail {
		c.failBatches--
	}
	c.mu.Unlock()
	if fail {
		expired, cancel := context.WithDeadline(ctx, time.Now())
		defer cancel()
		ctx = expired
	}
	return c.Store.MarkDeliveredBatch(ctx, cursors)
}

func (c *countingStore) counts() (single, batches, cursors int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.single, c.batches, c.cursors
}

// warnLog records the messages of warnings and their "cursors" attribute.
type warnLog struct {
	mu    sync.Mutex
	warns []string
	n     []int64
}

func (h *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *warnLog) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *warnLog) WithGroup(string) slog.Handler                { return h }
func (h *warnLog) Handle(_ context.Context, r slog.Record) error {
	var n int64 = -1
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "cursors" {
			n = a.Value.Int64()
		}
		return true
	})
	h.mu.Lock()
	h.warns = append(h.warns, r.Message)
	h.n = append(h.n, n)
	h.mu.Unlock()
	return nil
}

func (h *warnLog) snapshot() ([]string, []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.warns...), append([]int64(nil), h.n...)
}

// TestFlushCursorsBatchAndRetry: a flush writes every pending delivered
// cursor (live sessions' and closed sessions') in one store call; when that
// call fails it warns once with the count and the next flush writes them
// all, none lost; a flush with nothing new makes no call.
func TestFlushCursorsBatchAndRetry(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "duplex.db")})
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: sq}
	br := brokermem.New(brokermem.Options{})
	pr := presencemem.New(presencemem.Options{})
	logs := &warnLog{}
	// The test flushes by hand: the ticker never fires.
	svc, err := New(Config{DeliveredFlush: time.Hour, RatePerSecond: 1e6, RateBurst: 1e6}, st, br, pr, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		br.Close()
		pr.Close()
		sq.Close()
	})
	e := &env{t: t, svc: svc}

	const peers, msgs = 40, 2
	alice := e.connect("alice")
	convs := make([]string, peers)
	clients := make([]*client, peers)
	for i := range peers {
		clients[i] = e.connect(fmt.Sprint("peer", i))
		convs[i] = alice.direct(clients[i].user)
		for j := range msgs {
			alice.send(convs[i], fmt.Sprint(i, "-", j), "x")
		}
	}
	for _, c := range clients {
		c.sink.waitCount(t, "message", msgs)
	}
	// Half the peers leave: their cursors wait in the service, the
	// others' in their live sessions.
	for _, c := range clients[:peers/2] {
		c.close()
	}
	delivered := func(user, conv string) int64 {
		t.Helper()
		ucs, err := sq.Conversations(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		for _, uc := range ucs {
			if uc.ID == conv {
				return uc.DeliveredSeq
			}
		}
		t.Fatalf("%s is not in %s", user, conv)
		return 0
	}
	// alice holds every conversation through her acks, each peer its own.
	const want = 2 * peers

	st.mu.Lock()
	st.failBatches = 1
	st.mu.Unlock()
	svc.flushCursors(ctx)
	if single, batches, cursors := st.counts(); single != 0 || batches != 1 || cursors != want {
		t.Fatalf("failed flush: %d MarkDelivered, %d MarkDeliveredBatch with %d cursors; want 0, 1, %d", single, batches, cursors, want)
	}
	for i, c := range clients {
		if got := delivered(c.user, convs[i]); got != 0 {
			t.Fatalf("%s's cursor = %d after a failed flush, want 0 (nothing written)", c.user, got)
		}
	}
	warns, ns := logs.snapshot()
	if len(warns) != 1 || ns[0] != want {
		t.Fatalf("warnings after a failed flush: %q with cursors %v; want one, with %d", warns, ns, want)
	}

	svc.flushCursors(ctx)
	if single, batches, cursors := st.counts(); single != 0 || batches != 2 || cursors != 2*want {
		t.Fatalf("retried flush: %d MarkDelivered, %d MarkDeliveredBatch with %d cursors in all; want 0, 2, %d", single, batches, cursors, 2*want)
	}
	for i, c := range clients {
		if got := delivered(c.user, convs[i]); got != msgs {
			t.Errorf("%s's cursor = %d after the retry, want %d", c.user, got, msgs)
		}
		if got := delivered("alice", convs[i]); got != msgs {
			t.Errorf("alice's cursor in %s = %d after the retry, want %d", convs[i], got, msgs)
		}
	}
	if warns, _ := logs.snapshot(); len(warns) != 1 {
		t.Errorf("warnings after the retry: %q, want only the first", warns)
	}

	// Nothing new: no store call at all.
	svc.flushCursors(ctx)
	if _, batches, _ := st.counts(); batches != 2 {
		t.Errorf("a flush with nothing pending made a store call (%d in all, want 2)", batches)
	}
	// One more message to a live peer: one call, one cursor for it and
	// one for alice's ack.
	live := peers - 1
	alice.send(convs[live], "more", "x")
	clients[live].sink.waitCount(t, "message", msgs+1)
	svc.flushCursors(ctx)
	if _, batches, cursors := st.counts(); batches != 3 || cursors != 2*want+2 {
		t.Errorf("after one more message: %d calls, %d cursors in all; want 3, %d", batches, cursors, 2*want+2)
	}
	if got := delivered(clients[live].user, convs[live]); got != msgs+1 {
		t.Errorf("%s's cursor = %d, want %d", clients[live].user, got, msgs+1)
	}
}
