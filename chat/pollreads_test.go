package chat

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/duplexhq/duplex/protocol"
)

// TestPollReceipts: a read made between two polls (or before the client
// connected) reaches a long-polling client: its welcome carries every
// member's read seq, and a poll whose reads are behind the store's gets
// the receipts at once; one that is up to date waits, and conversations
// without reads are not compared.
func TestPollReceipts(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	ctx := context.Background()
	alice := e.connect("alice")
	conv := alice.group("team", "bob", "carol")
	alice.send(conv, "1", "one")
	alice.send(conv, "2", "two")
	bob := e.connect("bob")
	bob.must("read", map[string]any{"conv": conv, "seq": 1})
	poll := func(req PollRequest) []protocol.Receipt {
		t.Helper()
		return pollFrames[protocol.Receipt](t, e, Identity{UserID: "alice"}, req, protocol.TypeReceipt)
	}

	// The handshake's welcome tells alice where everyone has read.
	fs, err := e.svc.Poll(ctx, Identity{UserID: "alice"}, PollRequest{Handshake: true})
	if err != nil {
		t.Fatal(err)
	}
	var w protocol.Welcome
	if err := json.Unmarshal(fs[0], &w); err != nil {
		t.Fatal(err)
	}
	if len(w.Conversations) != 1 || w.Conversations[0].Reads["bob"] != 1 || w.Conversations[0].Reads["carol"] != 0 {
		t.Fatalf("welcome conversations %+v, want bob's read seq 1", w.Conversations)
	}
	reads := w.Conversations[0].Reads

	// bob reads between two polls: the next poll returns it at once.
	bob.must("read", map[string]any{"conv": conv, "seq": 2})
	cursors := map[string]int64{conv: 2}
	got := poll(PollRequest{Cursors: cursors, Reads: map[string]map[string]int64{conv: reads}, Wait: time.Minute})
	if len(got) != 1 || got[0].User != "bob" || got[0].Seq != 2 || got[0].Conv != conv {
		t.Fatalf("receipts after bob read between polls: %+v, want bob at 2", got)
	}
	reads["bob"] = 2

	tests := []struct {
		name  string
		reads map[string]map[string]int64
		want  int
	}{
		{"up to date", map[string]map[string]int64{conv: reads}, 0},
		{"not tracked", nil, 0},
		{"nothing known", map[string]map[string]int64{conv: {}}, 1}, // bob; alice and carol are at 0
		{"ahead of the store", map[string]map[string]int64{conv: {"alice": 9, "bob": 9}}, 0},
	}
	for _, tc := range tests {
		if got := poll(PollRequest{Cursors: cursors, Reads: tc.reads, Wait: 20 * time.Millisecond}); len(got) != tc.want {
			t.Errorf("%s: receipts %+v, want %d", tc.name, got, tc.want)
		}
	}
	// The conversations request carries the positions too.
	res := alice.must("conversations", nil)
	data, _ := json.Marshal(res["data"])
	var cr struct{ Conversations []protocol.Conversation }
	if err := json.Unmarshal(data, &cr); err != nil {
		t.Fatal(err)
	}
	if len(cr.Conversations) != 1 || cr.Conversations[0].Reads["bob"] != 2 {
		t.Fatalf("conversations result %+v, want bob's read seq 2", cr.Conversations)
	}
}

// pollFrames polls as id and returns the frames of type typ, as T.
func pollFrames[T any](t *testing.T, e *env, id Identity, req PollRequest, typ string) []T {
	t.Helper()
	fs, err := e.svc.Poll(context.Background(), id, req)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, f := range fs {
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(f, &head); err != nil {
			t.Fatal(err)
		}
		if head.Type != typ {
			continue
		}
		var v T
		if err := json.Unmarshal(f, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}
