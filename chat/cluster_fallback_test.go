package chat

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestFallbackAcrossNodes proves the fallback transports need no sticky
// sessions: with two nodes on one store and broker, a stream session on
// node 0 is subscribed by a request that reaches node 1, a message sent
// through node 0 reaches a long-poll waiting on node 1, and a poll on
// node 1 catches up with what was sent through node 0.
func TestFallbackAcrossNodes(t *testing.T) {
	ctx := context.Background()
	nodes := twoNodes(t, Config{Namespaces: map[string]Namespace{"": {Subscribe: true, Publish: true}}})
	alice, bob := Identity{UserID: "alice"}, Identity{UserID: "bob"}

	stream := newSink()
	sess, err := nodes[0].ConnectStream(ctx, alice, stream)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	sid := stream.snapshot()[0]["session"].(string)
	reply := newSink()
	if err := nodes[1].DoSession(ctx, alice, sid, []byte(`{"type":"subscribe","id":"s","channel":"room"}`), reply); err != nil {
		t.Fatal(err)
	}
	if r := reply.snapshot(); len(r) != 1 || r[0]["type"] != "result" {
		t.Fatalf("subscribe through node 1: %v", r)
	}
	if _, err := nodes[1].Publish(ctx, Identity{Admin: true}, "room", json.RawMessage(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	stream.waitCount(t, "channel.message", 1)

	conv, err := nodes[0].CreateDirect(ctx, alice, "bob")
	if err != nil {
		t.Fatal(err)
	}
	polled := make(chan [][]byte, 1)
	go func() {
		fs, err := nodes[1].Poll(ctx, bob, PollRequest{Cursors: map[string]int64{conv.ID: 0}, Wait: 20 * time.Second})
		if err != nil {
			t.Error(err)
		}
		polled <- fs
	}()
	if err := nodes[0].Do(ctx, alice, []byte(`{"type":"send","id":"1","conv":"`+conv.ID+`","client_msg_id":"m1","body":"hi"}`), newSink()); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type string
		Seq  int64
	}
	fs := <-polled
	if len(fs) == 0 || json.Unmarshal(fs[0], &m) != nil || m.Type != "message" || m.Seq != 1 {
		t.Fatalf("poll on node 1: %q", fs)
	}
	fs, err = nodes[1].Poll(ctx, bob, PollRequest{Cursors: map[string]int64{conv.ID: 0}})
	if err != nil || len(fs) != 2 {
		t.Fatalf("catch-up on node 1: %q %v", fs, err)
	}
}
