package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// TestCrashRecovery kills the server with SIGKILL while clients send as
// fast as they can, restarts it on the same data directory, lets the
// clients resend everything not acknowledged under the same client message
// ids, and checks that nothing acknowledged was lost, nothing was stored
// twice, and every member of every conversation sees the same gapless
// sequence.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	const (
		perUser = 1750 // messages each user sends; 6 users: 10,500 in all
		killAt  = 4000 // acknowledged messages before the SIGKILL
		window  = 64   // sends in flight per connection
	)
	bin := buildBinary(t)
	dataDir := t.TempDir()
	secret := "crash-test-secret-crash-test-secret-0123"
	args := []string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", dataDir, "--jwt-secret", secret,
		"--rate", "1000000", "--rate-burst", "1000000", "--send-queue", "8192", "--max-conns-per-user", "100"}

	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	tokens := map[string]string{}
	for _, u := range users {
		tok, err := auth.Mint([]byte(secret), u, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[u] = tok
	}

	p1 := startServer(t, bin, "", nil, args...)
	base := "http://" + p1.addr

	// Three groups and three direct conversations.
	convMembers := map[string][]string{}
	userConvs := map[string][]string{}
	addConv := func(id string, members []string) {
		convMembers[id] = members
		for _, m := range members {
			userConvs[m] = append(userConvs[m], id)
		}
	}
	for _, g := range [][]string{{"u0", "u1", "u2", "u3"}, {"u2", "u3", "u4", "u5"}, users} {
		var c struct{ Conversation struct{ ID string } }
		if st := apiCall(t, base, "POST", "/api/conversations/group", tokens[g[0]], map[string]any{"title": "g", "members": g[1:]}, &c); st != 201 {
			t.Fatalf("create group: %d", st)
		}
		addConv(c.Conversation.ID, g)
	}
	for _, d := range [][2]string{{"u0", "u1"}, {"u2", "u5"}, {"u3", "u4"}} {
		var c struct{ Conversation struct{ ID string } }
		if st := apiCall(t, base, "POST", "/api/conversations/direct", tokens[d[0]], map[string]string{"peer": d[1]}, &c); st != 200 {
			t.Fatalf("create direct: %d", st)
		}
		addConv(c.Conversation.ID, []string{d[0], d[1]})
	}

	// Every user's plan: perUser messages round-robin over its
	// conversations, each with a unique client message id.
	clients := map[string]*crashClient{}
	for _, u := range users {
		c := &crashClient{user: u, token: tokens[u], acked: map[string]ackInfo{}}
		for i := 0; i < perUser; i++ {
			conv := userConvs[u][i%len(userConvs[u])]
			c.plan = append(c.plan, planned{conv: conv, cmid: fmt.Sprintf("%s-%d", u, i), body: fmt.Sprintf("%s says %d", u, i)})
		}
		clients[u] = c
	}
	var totalAcked atomic.Int64

	// Phase 1: send until the SIGKILL.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx, "ws://"+p1.addr+"/ws", window, &totalAcked)
		}()
	}
	for totalAcked.Load() < killAt {
		select {
		case <-p1.done:
			t.Fatalf("server exited:\n%s", p1.output())
		case <-ctx.Done():
			t.Fatalf("only %d acks before the deadline", totalAcked.Load())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.waitExit(t, 10*time.Second)
	wg.Wait()
	ackedBefore := map[string]map[string]ackInfo{}
	n := 0
	for u, c := range clients {
		ackedBefore[u] = map[string]ackInfo{}
		for k, v := range c.acked {
			ackedBefore[u][k] = v
		}
		n += len(c.acked)
	}
	t.Logf("killed the server after %d acknowledged messages", n)
	if n >= len(users)*perUser {
		t.Fatal("everything was acknowledged before the kill; the test proves nothing")
	}

	// Phase 2: restart on the same data directory; clients reconnect and
	// resend everything not acknowledged, then the rest of their plan.
	p2 := startServer(t, bin, "", nil, args...)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; len(c.acked) < len(c.plan); attempt++ {
				if ctx.Err() != nil || attempt > 20 {
					return
				}
				c.run(ctx, "ws://"+p2.addr+"/ws", window, &totalAcked)
			}
		}()
	}
	wg.Wait()
	dups := 0
	for u, c := range clients {
		dups += c.dups
		if len(c.acked) != len(c.plan) {
			t.Fatalf("%s: %d of %d messages acknowledged after restart (last error %v)\n%s", u, len(c.acked), len(c.plan), c.lastErr, p2.output())
		}
		// An acknowledgement is final: the resend got the same seq.
		for k, before := range ackedBefore[u] {
			if after := c.acked[k]; after.seq != before.seq || after.conv != before.conv {
				t.Fatalf("%s %s: acked as seq %d before the crash, %d after", u, k, before.seq, after.seq)
			}
		}
	}

	// Every member of every conversation syncs it from the start.
	want := map[string]int{} // conv -> messages planned
	for _, c := range clients {
		for _, p := range c.plan {
			want[p.conv]++
		}
	}
	total := 0
	for conv, members := range convMembers {
		var reference []syncedMsg
		for _, m := range members {
			got, err := syncAll(ctx, "ws://"+p2.addr+"/ws", tokens[m], conv)
			if err != nil {
				t.Fatalf("%s syncing %s: %v", m, conv, err)
			}
			if len(got) != want[conv] {
				t.Fatalf("%s sees %d messages in %s, want %d", m, len(got), conv, want[conv])
			}
			seen := map[string]bool{}
			for i, msg := range got {
				if msg.Seq != int64(i+1) {
					t.Fatalf("%s in %s: position %d has seq %d (gap or disorder)", m, conv, i, msg.Seq)
				}
				key := msg.Sender + "/" + msg.ClientMsgID
				if seen[key] {
					t.Fatalf("%s in %s: %s stored twice", m, conv, key)
				}
				seen[key] = true
				a, ok := clients[msg.Sender].acked[msg.ClientMsgID]
				if !ok || a.seq != msg.Seq || a.conv != conv {
					t.Fatalf("%s in %s: seq %d is %s, acknowledged as %+v", m, conv, msg.Seq, key, a)
				}
				if want := fmt.Sprintf("%s says %s", msg.Sender, msg.ClientMsgID[len(msg.Sender)+1:]); msg.Body != want {
					t.Fatalf("%s in %s: body %q, want %q", m, conv, msg.Body, want)
				}
			}
			if reference == nil {
				reference = got
			} else if fmt.Sprint(reference) != fmt.Sprint(got) {
				t.Fatalf("members of %s disagree", conv)
			}
		}
		total += len(reference)
	}
	if total < 10000 {
		t.Fatalf("only %d messages in all", total)
	}
	t.Logf("%d messages verified on every member's side; %d resends were stored before the crash and acknowledged as duplicates", total, dups)
}

type planned struct{ conv, cmid, body string }

type ackInfo struct {
	conv string
	seq  int64
}

// crashClient is one user's device; acked is written by run only.
type crashClient struct {
	user, token string
	plan        []planned
	acked       map[string]ackInfo // client_msg_id -> ack
	lastErr     error
	dups        int // acks marked duplicate: resends of messages stored before the crash
}

// run connects, sends every planned message not yet acknowledged (keeping
// window sends in flight) and returns when all are acknowledged or the
// connection fails.
func (c *crashClient) run(ctx context.Context, url string, window int, total *atomic.Int64) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.token)
	conn, _, err := ws.Dial(ctx, url, &ws.DialOptions{Header: h, Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		c.lastErr = err
		return
	}
	defer conn.CloseNow()

	type ack struct {
		Type        string `json:"type"`
		Conv        string `json:"conv"`
		Seq         int64  `json:"seq"`
		ClientMsgID string `json:"client_msg_id"`
		Duplicate   bool   `json:"duplicate"`
		Code        string `json:"code"`
		Message     string `json:"message"`
		ID          string `json:"id"`
	}
	acks := make(chan ack, window)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, p, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				close(acks)
				return
			}
			var a ack
			if err := json.Unmarshal(p, &a); err != nil {
				readErr <- err
				close(acks)
				return
			}
			if a.Type == "ack" || (a.Type == "error" && a.ID != "") {
				acks <- a
			}
		}
	}()

	var pending []planned
	for _, p := range c.plan {
		if _, ok := c.acked[p.cmid]; !ok {
			pending = append(pending, p)
		}
	}
	inflight := 0
	next := 0
	var buf []byte
	for next < len(pending) || inflight > 0 {
		for inflight < window && next < len(pending) {
			p := pending[next]
			buf = fmt.Appendf(buf[:0], `{"type":"send","id":%q,"conv":%q,"client_msg_id":%q,"body":%q}`, p.cmid, p.conv, p.cmid, p.body)
			if err := conn.Write(ctx, ws.MessageText, buf); err != nil {
				c.lastErr = err
				return
			}
			next++
			inflight++
		}
		a, ok := <-acks
		if !ok {
			c.lastErr = <-readErr
			return
		}
		inflight--
		if a.Type == "error" {
			c.lastErr = fmt.Errorf("send %s refused: %s %s", a.ID, a.Code, a.Message)
			return
		}
		if _, dup := c.acked[a.ClientMsgID]; !dup {
			total.Add(1)
		}
		if a.Duplicate {
			c.dups++
		}
		c.acked[a.ClientMsgID] = ackInfo{conv: a.Conv, seq: a.Seq}
	}
	conn.Close(ws.StatusNormalClosure, "")
}

type syncedMsg struct {
	Seq         int64  `json:"seq"`
	Sender      string `json:"sender"`
	ClientMsgID string `json:"client_msg_id"`
	Body        string `json:"body"`
}

// syncAll reads conv from the start with sync requests on a fresh
// connection.
func syncAll(ctx context.Context, url, token, conv string) ([]syncedMsg, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	conn, _, err := ws.Dial(ctx, url, &ws.DialOptions{Header: h, Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		return nil, err
	}
	defer conn.CloseNow()
	var out []syncedMsg
	after := int64(0)
	for round := 0; ; round++ {
		id := fmt.Sprint("sync", round)
		req, _ := json.Marshal(map[string]any{"type": "sync", "id": id, "conv": conv, "after": after})
		if err := conn.Write(ctx, ws.MessageText, req); err != nil {
			return nil, err
		}
		for {
			_, p, err := conn.Read(ctx)
			if err != nil {
				return nil, err
			}
			var f struct {
				Type string `json:"type"`
				ID   string `json:"id"`
				Conv string `json:"conv"`
				Seq  int64  `json:"seq"`
				More bool   `json:"more"`
				Code string `json:"code"`
				syncedMsg
			}
			if err := json.Unmarshal(p, &f); err != nil {
				return nil, err
			}
			if f.Type == "message" && f.Conv == conv {
				f.syncedMsg.Seq = f.Seq
				out = append(out, f.syncedMsg)
				continue
			}
			if f.ID != id {
				continue
			}
			if f.Type != "sync.end" {
				return nil, fmt.Errorf("sync answered %s %s", f.Type, f.Code)
			}
			if !f.More {
				return out, nil
			}
			after = f.Seq
			break
		}
	}
}
