package chat

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestAckAfterEarlierDeliveries: members of a group send concurrently;
// every session must see its conversation's seqs without a gap, counting
// the acks of its own messages: the ack of seq n never arrives before seq
// n-1 was delivered to it (a client would take that for a gap and sync).
// It also checks that nothing is seen twice and nothing is missing.
func TestAckAfterEarlierDeliveries(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	clients := make([]*client, len(users))
	for i, u := range users {
		clients[i] = e.connect(u)
	}
	conv := clients[0].group("acks", users[1:]...)
	const per = 60
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for i := range per {
				b := fmt.Appendf(nil, `{"type":"send","id":"%d","conv":%q,"client_msg_id":"%s-%d","body":"x"}`, i, conv, c.user, i)
				c.sess.Handle(context.Background(), b)
			}
		})
	}
	wg.Wait()
	total := per * len(users)
	for _, c := range clients {
		c.sink.waitCount(t, "message", total-per)
		c.sink.waitCount(t, "ack", per)
		var want int64 = 1
		for _, f := range c.sink.snapshot() {
			if (f["type"] != "message" && f["type"] != "ack") || frameConv(f) != conv {
				continue
			}
			if got := frameSeq(f); got != want {
				t.Fatalf("%s: %s of seq %d where seq %d was due", c.user, f["type"], got, want)
			}
			want++
		}
		if want != int64(total)+1 {
			t.Fatalf("%s saw seqs up to %d of %d", c.user, want-1, total)
		}
	}
}

// frameConv and frameSeq read the conversation and seq of an ack or a
// message event.
func frameConv(f map[string]any) string {
	if m, ok := f["message"].(map[string]any); ok {
		return m["conv"].(string)
	}
	s, _ := f["conv"].(string)
	return s
}

func frameSeq(f map[string]any) int64 {
	if m, ok := f["message"].(map[string]any); ok {
		return int64(m["seq"].(float64))
	}
	s, _ := f["seq"].(float64)
	return int64(s)
}

// TestAckImmediateWhenInOrder: when the session already holds every
// earlier seq, the ack is queued before Handle returns, not routed
// through the broker.
func TestAckImmediateWhenInOrder(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	alice, bob := e.connect("alice"), e.connect("bob")
	conv := alice.direct("bob")
	handled := func(c *client, id, cmid string) bool {
		c.sess.Handle(context.Background(), fmt.Appendf(nil,
			`{"type":"send","id":%q,"conv":%q,"client_msg_id":%q,"body":"x"}`, id, conv, cmid))
		for _, f := range c.sink.snapshot() {
			if f["id"] == id {
				return f["type"] == "ack"
			}
		}
		return false
	}
	if !handled(alice, "a1", "m1") { // seq 1: nothing earlier
		t.Fatal("ack of seq 1 not queued by the time Handle returned")
	}
	bob.send(conv, "m2", "x")
	alice.sink.waitCount(t, "message", 1) // alice now holds seq 2
	if !handled(alice, "a3", "m3") {
		t.Fatal("ack of seq 3 not queued by the time Handle returned although seq 2 was delivered")
	}
}
