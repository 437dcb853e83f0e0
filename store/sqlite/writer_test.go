package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/store"
)

func openInternal(t *testing.T, opts Options) *Store {
	t.Helper()
	opts.Path = filepath.Join(t.TempDir(), "w.db")
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// holdWriter occupies the writer with a request that blocks until the
// returned release func is called, so a test can line up a batch behind it.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.w.exec(context.Background(), func(*writer) error {
			close(entered)
			<-unblock
			return nil
		})
	}()
	<-entered
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("holding request: %v", err)
		}
	}
}

// waitQueued waits until n requests are queued behind the held writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(s.w.queue) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(s.w.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommit(t *testing.T) {
	s := openInternal(t, Options{MaxBatch: 64})
	ctx := context.Background()
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	before := s.Stats()
	const n = 20
	type result struct {
		m   store.Message
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			m, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: fmt.Sprint(i), Body: "x"})
			results <- result{m, err}
		}()
	}
	waitQueued(t, s, n)
	release()
	seen := make(map[int64]bool)
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		seen[r.m.Seq] = true
	}
	for seq := int64(1); seq <= n; seq++ {
		if !seen[seq] {
			t.Errorf("seq %d missing", seq)
		}
	}
	after := s.Stats()
	// The held request's batch, then all n appends in one more.
	if got := after.Batches - before.Batches; got != 2 {
		t.Errorf("%d appends queued together took %d batches (including the held one), want 2", n, got)
	}
	if got := after.Writes - before.Writes; got != n+1 {
		t.Errorf("Writes grew by %d, want %d", got, n+1)
	}
}

// TestCommitInterval: once writes come from several callers at once,
// those that arrive one by one, each of which the writer could commit
// alone, share one transaction when they come within CommitInterval of
// the previous transaction's start; one caller's writes one after another
// never wait for it.
func TestCommitInterval(t *testing.T) {
	s := openInternal(t, Options{CommitInterval: time.Second})
	ctx := context.Background()
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	// appendN starts n appends, gap apart, and returns a func waiting for
	// them.
	appendN := func(n int, gap time.Duration, prefix string) (wait func()) {
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: fmt.Sprint(prefix, i), Body: "x"})
				errs <- err
			}()
			time.Sleep(gap)
		}
		return func() {
			t.Helper()
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Two callers at once: a transaction of two (behind a held one).
	release := holdWriter(t, s)
	wait := appendN(2, 0, "pair")
	waitQueued(t, s, 2)
	release()
	wait()
	before := s.Stats()
	// One at a time: without the interval, the writer would be idle
	// and commit each alone.
	const n = 10
	appendN(n, 5*time.Millisecond, "one")()
	if got := s.Stats().Batches - before.Batches; got != 1 {
		t.Errorf("%d appends within the commit interval took %d transactions, want 1", n, got)
	}

	// A single caller: each transaction holds one write, so none waits,
	// however long the interval.
	s2 := openInternal(t, Options{CommitInterval: time.Hour})
	c2, err := s2.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range 5 {
		if _, _, err := s2.Append(tctx, store.NewMessage{ConversationID: c2.ID, Sender: "a", ClientMsgID: fmt.Sprint(i), Body: "x"}); err != nil {
			t.Fatalf("sequential append %d: %v (held back by the commit interval?)", i, err)
		}
	}
}

// TestBatchIsolation puts failing and succeeding writes in one batch: the
// failures get their own errors and undo nothing of the others.
func TestBatchIsolation(t *testing.T) {
	s := openInternal(t, Options{})
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, "owner", "g", []string{"m"})
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	errs := make(chan error, 4)
	go func() {
		_, _, err := s.Append(ctx, store.NewMessage{ConversationID: g.ID, Sender: "m", ClientMsgID: "1", Body: "x"})
		errs <- err
	}()
	waitQueued(t, s, 1)
	go func() { errs <- s.AddMember(ctx, g.ID, "m", store.RoleMember) }() // conflict
	waitQueued(t, s, 2)
	go func() {
		_, _, err := s.Append(ctx, store.NewMessage{ConversationID: g.ID, Sender: "stranger", Body: "x"})
		errs <- err
	}()
	waitQueued(t, s, 3)
	go func() { errs <- s.AddMember(ctx, g.ID, "new", store.RoleMember) }()
	waitQueued(t, s, 4)
	release()
	var conflicts, notMember, ok int
	for range 4 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrConflict):
			conflicts++
		case errors.Is(err, store.ErrNotMember):
			notMember++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 2 || conflicts != 1 || notMember != 1 {
		t.Errorf("ok=%d conflicts=%d notMember=%d, want 2 1 1", ok, conflicts, notMember)
	}
	ms, err := s.Members(ctx, g.ID)
	if err != nil || len(ms) != 3 {
		t.Errorf("Members = %v, %v; want owner, m and new", ms, err)
	}
	if c, _ := s.Conversation(ctx, g.ID); c.LastSeq != 1 {
		t.Errorf("LastSeq = %d, want 1", c.LastSeq)
	}
}

// TestCanceledWhileQueued: a write whose caller gave up before the writer
// reached it is not performed.
func TestCanceledWhileQueued(t *testing.T) {
	s := openInternal(t, Options{})
	ctx := context.Background()
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Append(cctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: "gone", Body: "x"})
		done <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Append = %v, want context.Canceled", err)
	}
	release()
	// A later write proves the writer has passed the abandoned request.
	if _, err := s.MarkRead(ctx, "a", c.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Conversation(ctx, c.ID); got.LastSeq != 0 {
		t.Errorf("abandoned append was stored: LastSeq = %d", got.LastSeq)
	}
}

// TestCloseFailsQueued: Close answers queued writes with ErrClosed instead
// of leaving their callers waiting.
func TestCloseFailsQueued(t *testing.T) {
	s := openInternal(t, Options{})
	ctx := context.Background()
	release := holdWriter(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := s.CreateGroup(ctx, "a", "g", nil)
		done <- err
	}()
	waitQueued(t, s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-s.w.stop // Close has begun stopping the writer
	release()
	if err := <-done; !errors.Is(err, store.ErrClosed) {
		t.Errorf("queued write = %v, want ErrClosed", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCheckpointer: the writer never checkpoints (wal_autocheckpoint=0), so
// the database file grows only if the background checkpointer copies the
// WAL back into it.
func TestCheckpointer(t *testing.T) {
	s := openInternal(t, Options{})
	ctx := context.Background()
	size := func() int64 {
		fi, err := os.Stat(s.opts.Path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	start := size()
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 1000)
	for i := range 200 {
		if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: fmt.Sprint(i), Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	// 200 KB of messages: the file must grow by at least half of that.
	for deadline := time.Now().Add(10 * time.Second); size() < start+100_000; {
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes (was %d): the WAL was not checkpointed", size(), start)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCacheWithinBatch runs membership changes and appends in one batch:
// the writer's cached membership and sequence state must follow each step.
func TestCacheWithinBatch(t *testing.T) {
	s := openInternal(t, Options{})
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, "owner", "g", []string{"m"})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		seq int64
		err error
	}
	appendAs := func(user, id string) func() outcome {
		return func() outcome {
			msg, _, err := s.Append(ctx, store.NewMessage{ConversationID: g.ID, Sender: user, ClientMsgID: id, Body: "x"})
			return outcome{msg.Seq, err}
		}
	}
	steps := []struct {
		name string
		run  func() outcome
		want outcome
	}{
		{"m appends", appendAs("m", "1"), outcome{1, nil}},
		{"m removed", func() outcome { return outcome{0, s.RemoveMember(ctx, g.ID, "m")} }, outcome{}},
		{"m appends again", appendAs("m", "2"), outcome{0, store.ErrNotMember}},
		{"m retries its first", appendAs("m", "1"), outcome{1, nil}},
		{"x added", func() outcome { return outcome{0, s.AddMember(ctx, g.ID, "x", store.RoleMember)} }, outcome{}},
		{"x appends", appendAs("x", "1"), outcome{2, nil}},
		{"x reads all", func() outcome { seq, err := s.MarkRead(ctx, "x", g.ID, 99); return outcome{seq, err} }, outcome{2, nil}},
		{"owner appends", appendAs("owner", "1"), outcome{3, nil}},
	}
	release := holdWriter(t, s)
	results := make([]chan outcome, len(steps))
	for i, st := range steps {
		results[i] = make(chan outcome, 1)
		go func() { results[i] <- st.run() }()
		waitQueued(t, s, i+1) // keep the queue in step order
	}
	release()
	for i, st := range steps {
		got := <-results[i]
		if got.seq != st.want.seq || !errors.Is(got.err, st.want.err) || (st.want.err == nil) != (got.err == nil) {
			t.Errorf("%s: got seq %d err %v; want seq %d err %v", st.name, got.seq, got.err, st.want.seq, st.want.err)
		}
	}
	if c, _ := s.Conversation(ctx, g.ID); c.LastSeq != 3 {
		t.Errorf("LastSeq = %d, want 3", c.LastSeq)
	}
}

// TestDeliveredBatchSpread checks that a large MarkDeliveredBatch is queued
// at once and weighs its chunks' cursors/cursorsPerAppend in the writer's
// batches: it rides along in one transaction at the default MaxBatch, and
// is spread over several when its chunks weigh more than MaxBatch.
func TestDeliveredBatchSpread(t *testing.T) {
	// 4 chunks of 256, 256, 256 and 232 cursors: weights 32, 32, 32, 29.
	for _, tc := range []struct {
		maxBatch, batches int
	}{
		{512, 1},
		{40, 2}, // 32+32, then 32+29
		{20, 4},
	} {
		t.Run(fmt.Sprint("MaxBatch=", tc.maxBatch), func(t *testing.T) {
			s := openInternal(t, Options{MaxBatch: tc.maxBatch})
			ctx := context.Background()
			c, err := s.CreateDirect(ctx, "alice", "bob")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", Body: "x"}); err != nil {
				t.Fatal(err)
			}
			// Only one cursor is a member's.
			cursors := make([]store.DeliveredCursor, 3*deliveredChunk+232)
			for i := range cursors {
				cursors[i] = store.DeliveredCursor{UserID: fmt.Sprint("u", i), ConversationID: c.ID, Seq: 1}
			}
			cursors[0].UserID = "bob"
			orig := slices.Clone(cursors)

			release := holdWriter(t, s)
			before := s.Stats()
			done := make(chan error, 1)
			go func() { done <- s.MarkDeliveredBatch(ctx, cursors) }()
			waitQueued(t, s, 4) // all chunks queued before the first is answered
			release()
			if err := <-done; err != nil {
				t.Fatalf("MarkDeliveredBatch: %v", err)
			}
			after := s.Stats()
			// The held request is counted once release returns.
			if got := after.Writes - before.Writes; got != 4+1 {
				t.Errorf("writes = %d, want 4 chunks + the holding request", got)
			}
			if got := after.Batches - before.Batches; got != uint64(tc.batches)+1 {
				t.Errorf("batches = %d, want %d (+1 holding)", got-1, tc.batches)
			}
			if !slices.Equal(cursors, orig) {
				t.Error("MarkDeliveredBatch reordered or changed the caller's slice")
			}
			list, err := s.Conversations(ctx, "bob")
			if err != nil || len(list) != 1 || list[0].DeliveredSeq != 1 {
				t.Fatalf("bob's conversations = %+v, %v; want delivered 1", list, err)
			}
		})
	}
}
