package chat

import (
	"fmt"
	"testing"
	"time"
)

// TestMemberCacheSameNode: after a removal the removed member gets no
// further messages and after an addition the new member gets them, even
// though the members were cached by earlier sends.
func TestMemberCacheSameNode(t *testing.T) {
	e := newEnv(t, Config{PresenceGrace: -1})
	alice, carol := e.connect("alice"), e.connect("carol")
	conv := alice.group("g", "bob", "carol")
	alice.send(conv, "m1", "cached now") // fills the cache with bob and carol
	carol.sink.waitCount(t, "message", 1)

	alice.must("remove_member", map[string]any{"conv": conv, "user": "carol"})
	alice.send(conv, "m2", "not for carol")
	// A direct message published after m2 on carol's subject arrives after
	// anything m2 would have delivered to her.
	alice.send(alice.direct("carol"), "d1", "marker")
	fs := carol.sink.waitFor(t, "marker", func(fs []map[string]any) bool { return hasBody(fs, "marker") })
	if hasBody(fs, "not for carol") {
		t.Fatal("removed member got a message: stale cached members")
	}

	dave := e.connect("dave")
	alice.must("add_member", map[string]any{"conv": conv, "user": "dave"})
	alice.send(conv, "m3", "for dave")
	dave.sink.waitFor(t, "message after add", func(fs []map[string]any) bool { return hasBody(fs, "for dave") })
}

// TestMemberCacheAcrossNodes: a member added through one node receives
// messages sent through another node that had the members cached; the
// invalidation travels over the broker.
func TestMemberCacheAcrossNodes(t *testing.T) {
	nodes := twoNodeEnvs(t, Config{PresenceGrace: -1})
	alice := nodes[0].connect("alice")
	conv := alice.group("g", "bob")
	bob := nodes[1].connect("bob")
	bob.send(conv, "b0", "fills node 1's cache")
	alice.sink.waitFor(t, "b0", func(fs []map[string]any) bool { return hasBody(fs, "fills node 1's cache") })

	carol := nodes[0].connect("carol")
	alice.must("add_member", map[string]any{"conv": conv, "user": "carol"})
	// The invalidation crosses the broker asynchronously: node 1 must pick
	// it up soon, never keep the old list.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		body := fmt.Sprint("after add ", i)
		bob.send(conv, fmt.Sprint("b", i+1), body)
		bob.send(bob.direct("carol"), fmt.Sprint("d", i), fmt.Sprint("marker ", i))
		fs := carol.sink.waitFor(t, "marker", func(fs []map[string]any) bool { return hasBody(fs, fmt.Sprint("marker ", i)) })
		if hasBody(fs, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("node 1 kept delivering to the members it had cached before the addition")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasBody(fs []map[string]any, body string) bool {
	for _, f := range fs {
		if f["type"] == "message" && f["body"] == body {
			return true
		}
	}
	return false
}
