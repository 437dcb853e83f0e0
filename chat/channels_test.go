package chat

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/duplexhq/duplex/protocol"
)

func channelOffsets(fs []map[string]any, channel string) []float64 {
	var out []float64
	for _, f := range fs {
		if f["type"] == "channel.message" && f["channel"] == channel {
			out = append(out, f["offset"].(float64))
		}
	}
	return out
}

func TestChannels(t *testing.T) {
	e := newEnv(t, Config{Namespaces: map[string]Namespace{
		"news": {Subscribe: true, History: 3},
		"chat": {Subscribe: true, Publish: true},
		"ops":  {Publish: true},
	}})
	alice, bob := e.connect("alice"), e.connect("bob")
	ctx := context.Background()
	admin := Identity{Admin: true}

	for _, tt := range []struct{ typ, channel, code string }{
		{"subscribe", "secret:x", "not_found"},    // unconfigured namespace
		{"subscribe", "plain", "not_found"},       // "" not configured
		{"subscribe", "ops:deploys", "forbidden"}, // publish-only namespace
		{"publish", "news:sports", "forbidden"},   // clients may not publish news
	} {
		f := alice.do(tt.typ, map[string]any{"channel": tt.channel, "data": 1})
		if errCode(f) != tt.code {
			t.Errorf("%s %s: %v, want %s", tt.typ, tt.channel, f, tt.code)
		}
	}
	if _, err := e.svc.Publish(ctx, admin, "nope:x", json.RawMessage(`1`)); AsError(err).Code != protocol.CodeNotFound {
		t.Fatalf("admin publish to an unconfigured namespace: %v", err)
	}
	if _, err := e.svc.Publish(ctx, Identity{UserID: "alice"}, "news:x", json.RawMessage(`1`)); AsError(err).Code != protocol.CodeForbidden {
		t.Fatalf("user publish to news over the API: %v", err)
	}

	bob.must("subscribe", map[string]any{"channel": "news:sports"})
	for i := 1; i <= 5; i++ {
		cm, err := e.svc.Publish(ctx, admin, "news:sports", json.RawMessage(`{"n":`+string(rune('0'+i))+`}`))
		if err != nil || cm.Offset != int64(i) {
			t.Fatalf("admin publish %d: %+v, %v", i, cm, err)
		}
	}
	fs := bob.sink.waitCount(t, "channel.message", 5)
	if got := channelOffsets(fs, "news:sports"); !slices.Equal(got, []float64{1, 2, 3, 4, 5}) {
		t.Fatalf("live offsets %v", got)
	}

	// Resume: history keeps the last 3 (3, 4, 5); since=3 replays 4 and 5.
	r := alice.must("subscribe", map[string]any{"channel": "news:sports", "since": 3})
	if r["data"].(map[string]any)["offset"] != 5.0 {
		t.Fatalf("subscribe result %v", r)
	}
	if got := channelOffsets(alice.sink.snapshot(), "news:sports"); !slices.Equal(got, []float64{4, 5}) {
		t.Fatalf("replayed offsets %v", got)
	}
	// since=0 replays what is kept.
	carol := e.connect("carol")
	carol.must("subscribe", map[string]any{"channel": "news:sports", "since": 0})
	if got := channelOffsets(carol.sink.snapshot(), "news:sports"); !slices.Equal(got, []float64{3, 4, 5}) {
		t.Fatalf("replay from 0: %v", got)
	}

	// A namespace without history: client publish, offset 0, every
	// subscriber (the publisher included) gets it.
	alice.must("subscribe", map[string]any{"channel": "chat:lobby"})
	bob.must("subscribe", map[string]any{"channel": "chat:lobby"})
	r = alice.must("publish", map[string]any{"channel": "chat:lobby", "data": map[string]any{"text": "hi"}})
	if r["data"].(map[string]any)["offset"] != 0.0 {
		t.Fatalf("publish result %v", r)
	}
	for _, c := range []*client{alice, bob} {
		c.sink.waitFor(t, "lobby message", func(fs []map[string]any) bool { return len(channelOffsets(fs, "chat:lobby")) == 1 })
	}

	// Unsubscribed: nothing more arrives.
	bob.must("unsubscribe", map[string]any{"channel": "chat:lobby"})
	alice.must("publish", map[string]any{"channel": "chat:lobby", "data": 2})
	alice.sink.waitFor(t, "second lobby message", func(fs []map[string]any) bool { return len(channelOffsets(fs, "chat:lobby")) == 2 })
	if got := channelOffsets(bob.sink.snapshot(), "chat:lobby"); len(got) != 1 {
		t.Fatalf("bob got %d lobby messages after unsubscribing", len(got))
	}
	if code := errCode(alice.do("publish", map[string]any{"channel": "chat:lobby", "data": ""})); code != "" {
		t.Fatalf("empty string data refused: %s", code)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	e := newEnv(t, Config{MaxSubscriptions: 2, Namespaces: map[string]Namespace{"": {Subscribe: true}}})
	alice := e.connect("alice")
	alice.must("subscribe", map[string]any{"channel": "a"})
	alice.must("subscribe", map[string]any{"channel": "b"})
	alice.must("subscribe", map[string]any{"channel": "a"}) // already subscribed: fine
	if code := errCode(alice.do("subscribe", map[string]any{"channel": "c"})); code != "too_large" {
		t.Fatalf("third subscription: %q", code)
	}
}
