package chat

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/duplexhq/duplex/protocol"
)

// TestPollPresence: a presence change between two polls reaches a
// long-polling client: a poll whose presence map disagrees with the
// registry gets presence frames at once; one that agrees waits; users the
// caller may not know about are skipped, as by the presence request.
func TestPollPresence(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6, PresenceGrace: -1})
	ctx := context.Background()
	alice := Identity{UserID: "alice"}
	ac := e.connect("alice")
	conv := ac.direct("bob")
	ac.close()
	bob := e.connect("bob")
	poll := func(req PollRequest) []protocol.Presence {
		t.Helper()
		req.Cursors = map[string]int64{conv: 0}
		return pollFrames[protocol.Presence](t, e, alice, req, protocol.TypePresenceEvent)
	}

	// Up to date: nothing at once, nothing live.
	if got := poll(PollRequest{Presence: map[string]bool{"bob": true}, Wait: 50 * time.Millisecond}); len(got) != 0 {
		t.Fatalf("poll agreeing with the registry got %+v", got)
	}
	// bob leaves between two polls.
	bob.close()
	deadline := time.Now().Add(time.Minute)
	for {
		sts, err := e.svc.Presence(ctx, alice, []string{"bob"})
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) == 1 && !sts[0].Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob still online a minute after closing")
		}
		time.Sleep(time.Millisecond)
	}
	got := poll(PollRequest{Presence: map[string]bool{"bob": true, "mallory": true}, Wait: time.Minute})
	if len(got) != 1 || got[0].User != "bob" || got[0].Online || got[0].LastSeen == 0 {
		t.Fatalf("poll after bob left = %+v, want bob offline with a last_seen (mallory is no contact)", got)
	}
	if got := poll(PollRequest{Presence: map[string]bool{"bob": false}, Wait: 50 * time.Millisecond}); len(got) != 0 {
		t.Fatalf("poll agreeing after the change got %+v", got)
	}

	for _, tc := range []struct {
		name     string
		presence map[string]bool
		code     protocol.Code
	}{
		{"empty user id", map[string]bool{"": true}, protocol.CodeMissingField},
		{"too many users", manyUsers(maxPollPresence + 1), protocol.CodeTooLarge},
	} {
		if _, err := e.svc.Poll(ctx, alice, PollRequest{Presence: tc.presence}); AsError(err).Code != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

func manyUsers(n int) map[string]bool {
	m := make(map[string]bool, n)
	for i := range n {
		m[fmt.Sprint("u", i)] = true
	}
	return m
}

// TestPollRemoved: a removal from a group between two polls reaches a
// long-polling client as a member event at the end of its next answer,
// which it does not cut short; a cursor of a conversation that never
// existed gets the same answer, so cursors cannot probe ids.
func TestPollRemoved(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6, PresenceGrace: -1})
	carol := Identity{UserID: "carol"}
	ac := e.connect("alice")
	group := ac.group("team", "bob", "carol")
	kept := ac.direct("carol")
	ac.send(group, "a-1", "hello")
	cursors := map[string]int64{group: 1, kept: 0, "c_never": 0}
	poll := func(wait time.Duration) []protocol.Member {
		t.Helper()
		return pollFrames[protocol.Member](t, e, carol, PollRequest{Cursors: cursors, Wait: wait}, protocol.TypeMember)
	}
	if got := poll(0); len(got) != 1 || got[0] != (protocol.Member{Type: protocol.TypeMember, Conv: "c_never", User: "carol", Action: "removed"}) {
		t.Fatalf("poll with a made-up cursor = %+v, want carol removed from c_never", got)
	}

	// alice removes carol while no poll is waiting.
	ac.must("remove_member", map[string]any{"conv": group, "user": "carol"})
	want := []protocol.Member{
		{Type: protocol.TypeMember, Conv: "c_never", User: "carol", Action: "removed"},
		{Type: protocol.TypeMember, Conv: group, User: "carol", Action: "removed"},
	}
	if want[0].Conv > want[1].Conv {
		want[0], want[1] = want[1], want[0]
	}
	const wait = 200 * time.Millisecond
	start := time.Now()
	got := poll(wait)
	if took := time.Since(start); took < wait {
		t.Errorf("a poll with only removals to report returned after %v, before its wait of %v", took, wait)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("poll after the removal = %+v, want %+v", got, want)
	}

	// Having dropped both, carol polls up to date: nothing.
	delete(cursors, group)
	delete(cursors, "c_never")
	if got := poll(0); len(got) != 0 {
		t.Fatalf("poll without the removed cursors got %+v", got)
	}
	// The conversation she is still in is served as before.
	ac.send(kept, "a-2", "still here")
	if got := pollFrames[protocol.Message](t, e, carol, PollRequest{Cursors: cursors}, protocol.TypeMessage); len(got) != 1 || got[0].Body != "still here" {
		t.Fatalf("poll of the kept conversation returned %+v, want the one message", got)
	}
}
