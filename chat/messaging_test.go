package chat

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestSendAckDeliver: the sender gets an ack with the seq and not its own
// message; its other device and every other member get the message, in
// seq order.
func TestSendAckDeliver(t *testing.T) {
	e := newEnv(t, Config{})
	alice1, alice2, bob := e.connect("alice"), e.connect("alice"), e.connect("bob")
	conv := alice1.group("team", "bob")
	for i := 1; i <= 5; i++ {
		if seq := alice1.send(conv, fmt.Sprint("m", i), "hi"); seq != int64(i) {
			t.Fatalf("ack seq %d, want %d", seq, i)
		}
	}
	want := []int64{1, 2, 3, 4, 5}
	for name, c := range map[string]*client{"alice2": alice2, "bob": bob} {
		fs := c.sink.waitCount(t, "message", 5)
		if got := seqs(fs, conv); !slices.Equal(got, want) {
			t.Fatalf("%s got seqs %v, want %v", name, got, want)
		}
	}
	if n := countMessages(alice1.sink.snapshot(), conv); n != 0 {
		t.Fatalf("sending device got %d of its own messages", n)
	}
	m := bob.sink.of("message")[0]
	if m["sender"] != "alice" || m["body"] != "hi" || m["client_msg_id"] != "m1" || m["ts"].(float64) <= 0 {
		t.Fatalf("message event %v", m)
	}
}

// TestConcurrentSendersOrder: appends to one conversation complete
// concurrently from several sessions; every device sees seqs ascending
// with no gaps.
func TestConcurrentSendersOrder(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	users := []string{"u1", "u2", "u3", "u4"}
	clients := make([]*client, len(users))
	for i, u := range users {
		clients[i] = e.connect(u)
	}
	watcher := e.connect("u1")
	conv := clients[0].group("race", users[1:]...)
	const per = 40
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				b := fmt.Appendf(nil, `{"type":"send","id":"%d","conv":%q,"client_msg_id":"%s-%d","body":"x"}`, i, conv, c.user, i)
				c.sess.Handle(context.Background(), b)
			}
		}()
	}
	wg.Wait()
	total := per * len(users)
	fs := watcher.sink.waitCount(t, "message", total)
	got := seqs(fs, conv)
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("watcher saw seq %d at position %d: %v", s, i, got)
		}
	}
	for _, c := range clients {
		mine := per // its own messages come as acks
		got := seqs(c.sink.waitCount(t, "message", total-mine), conv)
		if !slices.IsSorted(got) || len(got) != total-mine {
			t.Fatalf("%s saw %d messages, sorted=%v", c.user, len(got), slices.IsSorted(got))
		}
	}
}

// TestIdempotentRetry: a retried send returns the same ack and is not
// delivered twice.
func TestIdempotentRetry(t *testing.T) {
	e := newEnv(t, Config{})
	alice, bob := e.connect("alice"), e.connect("bob")
	conv := alice.direct("bob")
	first := alice.must("send", map[string]any{"conv": conv, "client_msg_id": "dup", "body": "once"})
	again := alice.must("send", map[string]any{"conv": conv, "client_msg_id": "dup", "body": "once"})
	if first["seq"] != again["seq"] || again["duplicate"] != true || first["duplicate"] != nil {
		t.Fatalf("first ack %v, retry ack %v", first, again)
	}
	// Over HTTP too.
	m, err := e.svc.Send(context.Background(), Identity{UserID: "alice"}, conv, "dup", "once", nil)
	if err != nil || float64(m.Seq) != first["seq"] {
		t.Fatalf("API retry = %v, %v", m.Seq, err)
	}
	alice.send(conv, "marker", "after")
	fs := bob.sink.waitCount(t, "message", 2)
	if got := seqs(fs, conv); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("bob got seqs %v, want [1 2] (the retry must not be delivered)", got)
	}
}

// TestAPISendReachesAllDevices: a send over the HTTP API has no origin
// session, so every device of the sender gets it too.
func TestAPISendReachesAllDevices(t *testing.T) {
	e := newEnv(t, Config{})
	alice, bob := e.connect("alice"), e.connect("bob")
	conv := alice.direct("bob")
	if _, err := e.svc.Send(context.Background(), Identity{UserID: "alice"}, conv, "h1", "via http", []byte(`{"k":1}`)); err != nil {
		t.Fatal(err)
	}
	alice.sink.waitCount(t, "message", 1)
	m := bob.sink.waitCount(t, "message", 1)[0]
	if meta, _ := m["meta"].(map[string]any); meta["k"] != 1.0 {
		t.Fatalf("meta not delivered: %v", m)
	}
}

// TestSyncAfterOffline: messages sent while a member is offline are in its
// welcome counts and replayed by sync in order, paged from the store.
func TestSyncAfterOffline(t *testing.T) {
	e := newEnv(t, Config{SyncPage: 7, RatePerSecond: 1e6, RateBurst: 1e6})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	const n = 30
	for i := 0; i < n; i++ {
		alice.send(conv, fmt.Sprint(i), fmt.Sprint("msg ", i))
	}
	bob := e.connect("bob")
	welcome := bob.sink.of("welcome")[0]
	convs := welcome["conversations"].([]any)
	if len(convs) != 1 {
		t.Fatalf("welcome conversations %v", convs)
	}
	c := convs[0].(map[string]any)
	if c["last_seq"] != float64(n) || c["unread"] != float64(n) || c["read_seq"] != 0.0 || c["kind"] != "direct" {
		t.Fatalf("welcome conversation %v", c)
	}
	end := bob.must("sync", map[string]any{"conv": conv, "after": 10})
	if end["type"] != "sync.end" || end["seq"] != float64(n) || end["more"] != false {
		t.Fatalf("sync.end %v", end)
	}
	got := seqs(bob.sink.snapshot(), conv)
	want := make([]int64, 0, n-10)
	for i := int64(11); i <= n; i++ {
		want = append(want, i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("synced %v, want %v", got, want)
	}
	// A limit cuts the stream and says there is more.
	end = bob.must("sync", map[string]any{"conv": conv, "after": 0, "limit": 5})
	if end["seq"] != 5.0 || end["more"] != true {
		t.Fatalf("limited sync.end %v", end)
	}
	// Nothing new: sync.end reports the last seq.
	end = bob.must("sync", map[string]any{"conv": conv, "after": n})
	if end["seq"] != float64(n) || end["more"] != false {
		t.Fatalf("empty sync.end %v", end)
	}
}

// TestSyncWhileLive: messages committed during a sync are neither lost nor
// duplicated nor out of order for the syncing session.
func TestSyncWhileLive(t *testing.T) {
	e := newEnv(t, Config{SyncPage: 3, RatePerSecond: 1e6, RateBurst: 1e6})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	for i := 0; i < 20; i++ {
		alice.send(conv, fmt.Sprint("a", i), "x")
	}
	bob := e.connect("bob")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			b := fmt.Appendf(nil, `{"type":"send","id":"s%d","conv":%q,"client_msg_id":"b%d","body":"y"}`, i, conv, i)
			alice.sess.Handle(context.Background(), b)
		}
	}()
	bob.must("sync", map[string]any{"conv": conv, "after": 0})
	wg.Wait()
	bob.sink.waitFor(t, "seq 40", func(fs []map[string]any) bool { return slices.Contains(seqs(fs, conv), 40) })
	// Live messages may arrive before the sync starts (bob is online);
	// from the sync's first message on, bob sees 1..40 exactly once each,
	// in order.
	got := seqs(bob.sink.snapshot(), conv)
	from := slices.Index(got, 1)
	for i, s := range got[from:] {
		if s != int64(i+1) {
			t.Fatalf("bob saw %v", got)
		}
	}
	if len(got[from:]) != 40 {
		t.Fatalf("bob saw %v", got)
	}
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t, Config{})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	for i := 0; i < 12; i++ {
		alice.send(conv, fmt.Sprint(i), fmt.Sprint(i))
	}
	var got []float64
	before := 0.0
	for {
		r := alice.must("history", map[string]any{"conv": conv, "before": before, "limit": 5})
		msgs := r["data"].(map[string]any)["messages"].([]any)
		for _, m := range msgs {
			got = append(got, m.(map[string]any)["seq"].(float64))
		}
		if len(msgs) < 5 {
			break
		}
		before = got[len(got)-1]
	}
	want := []float64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	if !slices.Equal(got, want) {
		t.Fatalf("history pages %v, want %v", got, want)
	}
	if _, err := e.svc.History(context.Background(), Identity{UserID: "alice"}, conv, 0, 1000); err != nil {
		t.Fatalf("limit over max is clamped, not refused: %v", err)
	}
}

// TestReadReceiptsAndUnread: read moves the cursor, unread follows, and the
// receipt reaches the other members and the reader's other devices only.
func TestReadReceiptsAndUnread(t *testing.T) {
	e := newEnv(t, Config{})
	alice, bob, bob2, carol := e.connect("alice"), e.connect("bob"), e.connect("bob"), e.connect("carol")
	conv := alice.group("g", "bob")
	for i := 0; i < 4; i++ {
		alice.send(conv, fmt.Sprint(i), "x")
	}
	bob.sink.waitCount(t, "message", 4)
	r := bob.must("read", map[string]any{"conv": conv, "seq": 3})
	if r["data"].(map[string]any)["read_seq"] != 3.0 {
		t.Fatalf("read result %v", r)
	}
	rc := alice.sink.waitCount(t, "receipt", 1)[0]
	if rc["user"] != "bob" || rc["conv"] != conv || rc["seq"] != 3.0 {
		t.Fatalf("receipt %v", rc)
	}
	bob2.sink.waitCount(t, "receipt", 1)
	// Reading backwards does not move the cursor.
	r = bob.must("read", map[string]any{"conv": conv, "seq": 1})
	if r["data"].(map[string]any)["read_seq"] != 3.0 {
		t.Fatalf("cursor moved back: %v", r)
	}
	ucs, err := e.svc.Conversations(context.Background(), Identity{UserID: "bob"})
	if err != nil || len(ucs) != 1 || ucs[0].Unread != 1 || ucs[0].ReadSeq != 3 {
		t.Fatalf("bob's conversations %+v, %v", ucs, err)
	}
	// A barrier: after carol's own event arrives, no receipt has reached her
	// and none reached the reading session.
	alice.send(conv, "barrier", "x")
	alice.must("add_member", map[string]any{"conv": conv, "user": "carol"})
	carol.sink.waitCount(t, "conversation", 1)
	bob.sink.waitCount(t, "member", 1) // published after the receipt on bob's subject
	if n := len(carol.sink.of("receipt")); n != 0 {
		t.Fatalf("non-member got %d receipts", n)
	}
	if n := len(bob.sink.of("receipt")); n != 0 {
		t.Fatalf("the reading session got its own receipt")
	}
}

// TestGroupMembership: owner adds and removes; events reach the right
// users; a removed member stops receiving and loses access.
func TestGroupMembership(t *testing.T) {
	e := newEnv(t, Config{})
	alice, bob, carol := e.connect("alice"), e.connect("bob"), e.connect("carol")
	conv := alice.group("g", "bob")
	ev := bob.sink.waitCount(t, "conversation", 1)[0]["conversation"].(map[string]any)
	if ev["id"] != conv || ev["role"] != "member" || len(ev["members"].([]any)) != 2 {
		t.Fatalf("conversation event %v", ev)
	}
	if code := errCode(bob.do("add_member", map[string]any{"conv": conv, "user": "carol"})); code != "forbidden" {
		t.Fatalf("member adding: %q, want forbidden", code)
	}
	alice.must("add_member", map[string]any{"conv": conv, "user": "carol"})
	if code := errCode(alice.do("add_member", map[string]any{"conv": conv, "user": "carol"})); code != "conflict" {
		t.Fatalf("adding twice: %q, want conflict", code)
	}
	carol.sink.waitCount(t, "conversation", 1)
	m := bob.sink.waitCount(t, "member", 1)[0]
	if m["user"] != "carol" || m["action"] != "added" || m["by"] != "alice" {
		t.Fatalf("member event %v", m)
	}
	alice.must("remove_member", map[string]any{"conv": conv, "user": "bob"})
	bob.sink.waitFor(t, "removed event", func(fs []map[string]any) bool {
		for _, f := range fs {
			if f["type"] == "member" && f["action"] == "removed" {
				return true
			}
		}
		return false
	})
	alice.send(conv, "after-removal", "x")
	carol.sink.waitCount(t, "message", 1)
	if countMessages(bob.sink.snapshot(), conv) != 0 {
		t.Fatal("removed member still receives messages")
	}
	if code := errCode(bob.do("history", map[string]any{"conv": conv})); code != "not_found" {
		t.Fatalf("removed member history: %q", code)
	}
	if code := errCode(alice.do("remove_member", map[string]any{"conv": conv, "user": "alice"})); code != "conflict" {
		t.Fatalf("owner leaving: %q, want conflict", code)
	}
	carol.must("remove_member", map[string]any{"conv": conv, "user": "carol"}) // leave
	direct := alice.direct("bob")
	if code := errCode(alice.do("add_member", map[string]any{"conv": direct, "user": "carol"})); code != "conflict" {
		t.Fatalf("adding to a direct conversation: %q", code)
	}
	if again := alice.direct("bob"); again != direct {
		t.Fatalf("create_direct not idempotent: %s then %s", direct, again)
	}
	if again := bob.direct("alice"); again != direct {
		t.Fatalf("create_direct not symmetric: %s then %s", direct, again)
	}
}
