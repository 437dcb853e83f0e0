package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/store"
)

// heldSyncs makes a DurabilityFull store's fsyncs wait while held, so a
// test can look at a batch that is committed but not yet durable.
type heldSyncs struct {
	held    atomic.Bool
	release chan struct{}
	fail    atomic.Pointer[error]
}

func (h *heldSyncs) before() error {
	if h.held.Load() {
		<-h.release
	}
	if p := h.fail.Load(); p != nil {
		return *p
	}
	return nil
}

// waitCommitted waits until a raw read (no caps) counts n rows with
// query: the batch that wrote the newest is committed.
func waitCommitted(t *testing.T, s *Store, query, arg string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var got int
		if err := s.read.QueryRow(query, arg).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q (%s) counts %d after a minute, want %d", query, arg, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// openHeld opens a DurabilityFull store whose fsyncs h can hold back, with
// a direct conversation of a and b holding one durable message.
func openHeld(t *testing.T) (*Store, *heldSyncs, store.Conversation) {
	t.Helper()
	ctx := context.Background()
	h := &heldSyncs{release: make(chan struct{})}
	s := openInternal(t, Options{Durability: DurabilityFull, beforeSync: h.before})
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: "1", Body: "durable"}); err != nil {
		t.Fatal(err)
	}
	return s, h, c
}

// TestReadsWaitForSync: at DurabilityFull a committed batch is answered,
// and its messages and channel entries readable, only after its fsync:
// until then history, sync, the conversation's LastSeq, the unread counts
// and the channel history end where durability does.
func TestReadsWaitForSync(t *testing.T) {
	ctx := context.Background()
	s, h, c := openHeld(t)
	if _, err := s.ChannelAppend(ctx, "news", json.RawMessage(`1`), 10); err != nil {
		t.Fatal(err)
	}

	h.held.Store(true)
	appended := make(chan error, 1)
	go func() {
		m, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: "2", Body: "pending"})
		if err == nil && m.Seq != 2 {
			err = fmt.Errorf("appended as seq %d, want 2", m.Seq)
		}
		appended <- err
	}()
	waitCommitted(t, s, "SELECT count(*) FROM messages WHERE conversation_id = ?", c.ID, 2)
	select {
	case err := <-appended:
		t.Fatalf("Append answered before its fsync (err %v)", err)
	default:
	}
	check := func(state string, want int64) {
		t.Helper()
		after, err := s.MessagesAfter(ctx, c.ID, 0, 10)
		if err != nil || int64(len(after)) != want {
			t.Errorf("%s: MessagesAfter = %d messages, %v; want %d", state, len(after), err, want)
		}
		before, err := s.MessagesBefore(ctx, c.ID, 0, 10)
		if err != nil || int64(len(before)) != want || before[0].Seq != want {
			t.Errorf("%s: MessagesBefore = %+v, %v; want %d, newest first", state, before, err, want)
		}
		if conv, err := s.Conversation(ctx, c.ID); err != nil || conv.LastSeq != want {
			t.Errorf("%s: Conversation LastSeq = %d, %v; want %d", state, conv.LastSeq, err, want)
		}
		ucs, err := s.Conversations(ctx, "b")
		if err != nil || len(ucs) != 1 || ucs[0].LastSeq != want || ucs[0].Unread != want {
			t.Errorf("%s: Conversations(b) = %+v, %v; want LastSeq and Unread %d", state, ucs, err, want)
		}
	}
	check("committed, not synced", 1)

	// A channel append in the same state.
	published := make(chan error, 1)
	go func() {
		_, err := s.ChannelAppend(ctx, "news", json.RawMessage(`2`), 10)
		published <- err
	}()
	waitCommitted(t, s, "SELECT count(*) FROM channel_messages WHERE channel = ?", "news", 2)
	if got, err := s.ChannelAfter(ctx, "news", 0, 10); err != nil || len(got) != 1 {
		t.Errorf("ChannelAfter before the fsync = %d entries, %v; want 1", len(got), err)
	}

	h.held.Store(false)
	close(h.release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	check("synced", 2)
	if got, err := s.ChannelAfter(ctx, "news", 0, 10); err != nil || len(got) != 2 {
		t.Errorf("ChannelAfter after the fsync = %d entries, %v; want 2", len(got), err)
	}
	s.w.sync.caps.mu.RLock()
	left := len(s.w.sync.caps.caps)
	s.w.sync.caps.mu.RUnlock()
	if left != 0 {
		t.Errorf("%d read caps left once everything is durable, want 0", left)
	}
}

// TestSyncFailure: a failed fsync fails the writes it was to make durable
// and every later one, and what it failed to sync stays unreadable.
func TestSyncFailure(t *testing.T) {
	ctx := context.Background()
	s, h, c := openHeld(t)
	eio := errors.New("input/output error")
	h.fail.Store(&eio)
	for i, body := range []string{"not synced", "after the failure"} {
		if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", Body: body}); err == nil || !strings.Contains(err.Error(), "sync WAL") {
			t.Errorf("append %d after a failed fsync: %v, want a sync WAL error", i, err)
		}
	}
	if got, err := s.MessagesAfter(ctx, c.ID, 0, 10); err != nil || len(got) != 1 {
		t.Errorf("MessagesAfter = %d messages, %v; want only the durable one", len(got), err)
	}
}
