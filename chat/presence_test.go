package chat

import (
	"context"
	"testing"
	"time"
)

func presenceEvents(fs []map[string]any, user string) []bool {
	var out []bool
	for _, f := range fs {
		if f["type"] == "presence" && f["user"] == user {
			out = append(out, f["online"].(bool))
		}
	}
	return out
}

// TestPresenceGrace: a reconnect within the grace period is not a flap;
// the contact hears "online" once.
func TestPresenceGrace(t *testing.T) {
	e := newEnv(t, Config{PresenceGrace: time.Hour})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	bob := e.connect("bob")
	alice.sink.waitFor(t, "bob online", func(fs []map[string]any) bool { return len(presenceEvents(fs, "bob")) == 1 })
	bob.close()
	bob = e.connect("bob")
	bob.close()
	bob = e.connect("bob")
	// Barrier: a message from bob arrives after any presence event would.
	bob.send(conv, "barrier", "x")
	alice.sink.waitCount(t, "message", 1)
	if got := presenceEvents(alice.sink.snapshot(), "bob"); len(got) != 1 || !got[0] {
		t.Fatalf("presence events for bob %v, want [true]", got)
	}
	sts, err := e.svc.Presence(context.Background(), Identity{UserID: "alice"}, []string{"bob"})
	if err != nil || len(sts) != 1 || !sts[0].Online {
		t.Fatalf("presence query %+v, %v", sts, err)
	}
}

// TestPresenceOffline: after the grace period the contact hears "offline"
// with a last-seen time; non-contacts hear nothing and cannot query.
func TestPresenceOffline(t *testing.T) {
	e := newEnv(t, Config{PresenceGrace: 30 * time.Millisecond})
	alice, mallory := e.connect("alice"), e.connect("mallory")
	alice.direct("bob")
	bob := e.connect("bob")
	bob.close()
	fs := alice.sink.waitFor(t, "bob offline", func(fs []map[string]any) bool { return len(presenceEvents(fs, "bob")) == 2 })
	var off map[string]any
	for _, f := range fs {
		if f["type"] == "presence" && f["online"] == false {
			off = f
		}
	}
	if off == nil || off["last_seen"].(float64) <= 0 {
		t.Fatalf("offline event %v", off)
	}
	if n := len(mallory.sink.of("presence")); n != 0 {
		t.Fatalf("non-contact got %d presence events", n)
	}
	r := mallory.must("presence", map[string]any{"users": []string{"bob", "alice", "mallory"}})
	got := r["data"].(map[string]any)["presence"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["user"] != "mallory" {
		t.Fatalf("non-contact presence query returned %v, want only mallory herself", got)
	}
	r = alice.must("presence", map[string]any{"users": []string{"bob"}})
	got = r["data"].(map[string]any)["presence"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["online"] != false || got[0].(map[string]any)["last_seen"].(float64) <= 0 {
		t.Fatalf("contact presence query %v", got)
	}
	// Admins may ask about anyone.
	sts, err := e.svc.Presence(context.Background(), Identity{Admin: true}, []string{"mallory"})
	if err != nil || len(sts) != 1 || !sts[0].Online {
		t.Fatalf("admin presence %+v, %v", sts, err)
	}
}
