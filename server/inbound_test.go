package server

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

// connGoroutines counts the goroutines serving WebSocket clients on the
// server side: request goroutines still in handleWS, handler goroutines and
// writers.
func connGoroutines() int {
	buf := make([]byte, 1<<22)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "server.(*Server).handleWS(") || strings.Contains(g, "server.(*wsConn).") {
			n++
		}
	}
	return n
}

// TestIdleConnectionsHoldNoGoroutines: once connected and quiet, WebSocket
// clients are held by the Poller alone, with no goroutine (and stack) each.
func TestIdleConnectionsHoldNoGoroutines(t *testing.T) {
	e := newEnv(t, envOpts{})
	const n = 40
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i], _ = e.dial(fmt.Sprintf("idle%d", i))
	}
	// Each client makes a round trip, so its handler and writer have run.
	for _, c := range clients {
		c.reply(c.request(map[string]any{"type": "ping"}))
	}
	deadline := time.Now().Add(5 * time.Second)
	for connGoroutines() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := connGoroutines(); g > 0 {
		t.Fatalf("%d goroutines serve %d idle connections, want 0", g, n)
	}
	// They still work.
	for _, c := range clients[:3] {
		if f := c.reply(c.request(map[string]any{"type": "ping"})); f.Type != protocol.TypeResult {
			t.Fatalf("ping after idling: %+v", f)
		}
	}
}

// TestPipelinedRequests: a client that sends far more requests than the
// server queues per connection without waiting (inboundMaxFrames) is paused
// and resumed as its queue drains, and every request is answered, in order,
// with nothing lost or repeated.
func TestPipelinedRequests(t *testing.T) {
	e := newEnv(t, envOpts{chat: chat.Config{RatePerSecond: 100000, RateBurst: 100000}})
	conv := e.direct("alice", "bob")
	alice, _ := e.dial("alice")
	const n = 10 * inboundMaxFrames
	ids := make([]string, n)
	for i := range ids {
		if i%2 == 0 {
			ids[i] = alice.request(map[string]any{"type": "send", "conv": conv.ID, "client_msg_id": fmt.Sprintf("m%d", i), "body": strings.Repeat("x", 500)})
		} else {
			ids[i] = alice.request(map[string]any{"type": "ping"})
		}
	}
	var last int64
	for i, id := range ids {
		f := alice.next()
		for f.Type != protocol.TypeAck && f.Type != protocol.TypeResult && f.Type != protocol.TypeError {
			f = alice.next() // the sender's own message events
		}
		if f.ID != id {
			t.Fatalf("reply %d is to %q (%s), want %q", i, f.ID, f.Type, id)
		}
		if i%2 == 0 {
			if f.Type != protocol.TypeAck || f.Seq != last+1 {
				t.Fatalf("send %d answered %s seq %d, want ack seq %d", i, f.Type, f.Seq, last+1)
			}
			last = f.Seq
		}
	}
}
