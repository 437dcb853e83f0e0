package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/client"
	"github.com/duplexhq/duplex/internal/testserver"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// run starts a client for user and stops it when the test ends.
func run(t *testing.T, env *testserver.Env, user string, seqs map[string]int64) (*client.Client, context.CancelFunc) {
	t.Helper()
	c := client.New(client.Options{
		URL: env.WSURL(), Token: env.Token(user), Seqs: seqs,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	waitState(t, c, client.StateConnected)
	return c, stop
}

func waitState(t *testing.T, c *client.Client, s client.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.State() != s {
		if time.Now().After(deadline) {
			t.Fatalf("state is %v, want %v", c.State(), s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// messages collects n messages of conv from c's events, failing on
// duplicates or disorder.
func messages(t *testing.T, c *client.Client, conv string, n int) []protocol.Message {
	t.Helper()
	var got []protocol.Message
	timeout := time.After(15 * time.Second)
	for len(got) < n {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed after %d of %d messages", len(got), n)
			}
			if ev.Message == nil || ev.Message.Conv != conv {
				continue
			}
			if len(got) > 0 && ev.Message.Seq != got[len(got)-1].Seq+1 {
				t.Fatalf("message seq %d after %d: out of order, duplicated or missing", ev.Message.Seq, got[len(got)-1].Seq)
			}
			got = append(got, *ev.Message)
		case <-timeout:
			t.Fatalf("got %d of %d messages", len(got), n)
		}
	}
	return got
}

// direct returns c's direct conversation with peer.
func direct(t *testing.T, c *client.Client, peer string) protocol.Conversation {
	t.Helper()
	conv, err := c.CreateDirect(context.Background(), peer)
	if err != nil {
		t.Fatal(err)
	}
	return conv
}

func TestSendDeliverInOrder(t *testing.T) {
	// A burst above the default rate limit would be refused in part and
	// retried later, which keeps every message but not the send order.
	env := testserver.Start(t, testserver.Options{Chat: chat.Config{RatePerSecond: 1000, RateBurst: 1000}})
	alice, _ := run(t, env, "alice", nil)
	bob, _ := run(t, env, "bob", nil)
	conv := direct(t, alice, "bob")
	const n = 50
	for i := range n {
		if _, err := alice.SendAsync(conv.ID, "", fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	got := messages(t, bob, conv.ID, n)
	for i, m := range got {
		if m.Body != fmt.Sprintf("m%d", i) || m.Sender != "alice" || m.Seq != int64(i+1) {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	// The sender's own events carry its messages too, from the acks.
	mine := messages(t, alice, conv.ID, n)
	if mine[n-1].Body != fmt.Sprintf("m%d", n-1) {
		t.Fatalf("sender's last message = %+v", mine[n-1])
	}
}

func TestIdempotentRetry(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	alice, _ := run(t, env, "alice", nil)
	ctx := context.Background()
	conv := direct(t, alice, "bob")
	a1, err := alice.Send(ctx, conv.ID, "same-id", "once", nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := alice.Send(ctx, conv.ID, "same-id", "once", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Seq != a2.Seq || !a2.Duplicate {
		t.Fatalf("retry acks %+v then %+v: want the same seq, second marked duplicate", a1, a2)
	}
	hist, err := alice.History(ctx, conv.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 {
		t.Fatalf("history has %d messages, want 1", len(hist))
	}
}

func TestResumeAfterOffline(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	alice, _ := run(t, env, "alice", nil)
	bob, stopBob := run(t, env, "bob", nil)
	ctx := context.Background()
	conv := direct(t, alice, "bob")
	for i := range 5 {
		if _, err := alice.Send(ctx, conv.ID, "", fmt.Sprintf("a%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	messages(t, bob, conv.ID, 5)
	seqs := bob.Seqs()
	stopBob()

	for i := range 20 {
		if _, err := alice.Send(ctx, conv.ID, "", fmt.Sprintf("b%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	bob2, _ := run(t, env, "bob", seqs)
	got := messages(t, bob2, conv.ID, 20)
	if got[0].Seq != 6 || got[19].Body != "b19" {
		t.Fatalf("resumed from seq %d to %q; want 6 .. b19", got[0].Seq, got[19].Body)
	}
}

func TestQueueSurvivesServerRestart(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	alice, _ := run(t, env, "alice", nil)
	bob, _ := run(t, env, "bob", nil)
	ctx := context.Background()
	conv := direct(t, alice, "bob")
	if _, err := alice.Send(ctx, conv.ID, "", "before", nil); err != nil {
		t.Fatal(err)
	}
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, client.StateReconnecting)
	var pending []<-chan client.SendResult
	for i := range 10 {
		ch, err := alice.SendAsync(conv.ID, "", fmt.Sprintf("queued%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, ch)
	}
	if err := env.Start(); err != nil {
		t.Fatal(err)
	}
	for i, ch := range pending {
		select {
		case r := <-ch:
			if r.Err != nil || r.Ack.Seq != int64(i+2) {
				t.Fatalf("queued send %d: ack %+v err %v", i, r.Ack, r.Err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("queued send %d was never acknowledged", i)
		}
	}
	got := messages(t, bob, conv.ID, 11)
	if got[0].Body != "before" || got[10].Body != "queued9" {
		t.Fatalf("bob got %q .. %q", got[0].Body, got[10].Body)
	}
}

func TestBadTokenStops(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	c := client.New(client.Options{URL: env.WSURL(), Token: "not-a-token", BackoffBase: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Run(ctx)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseAuthFailed {
		t.Fatalf("Run = %v, want a CloseError with %d", err, protocol.CloseAuthFailed)
	}
	if !errors.Is(err, client.ErrStopped) {
		t.Fatalf("Run error does not wrap ErrStopped")
	}
}

// TestExpiredTokenRefreshed: the server closes a connection made with an
// expired token with 4001; the client asks TokenFunc for a fresh token and
// connects with it. Without TokenFunc, Run stops with the 4001.
func TestExpiredTokenRefreshed(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	expired, err := auth.Mint(testserver.Secret, "alice", time.Second, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	c := client.New(client.Options{
		URL: env.WSURL(), BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		TokenFunc: func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return expired, nil
			}
			return env.Token("alice"), nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitState(t, c, client.StateConnected)
	if n := calls.Load(); n != 2 {
		t.Errorf("TokenFunc called %d times, want 2 (expired, then fresh)", n)
	}
	if c.User() != "alice" {
		t.Errorf("connected as %q", c.User())
	}
	cancel()
	<-done

	c = client.New(client.Options{URL: env.WSURL(), Token: expired, BackoffBase: time.Millisecond})
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ce *client.CloseError
	if err := c.Run(ctx); !errors.As(err, &ce) || ce.Code != protocol.CloseTokenExpired {
		t.Fatalf("Run with an expired token and no TokenFunc = %v, want a CloseError with %d", err, protocol.CloseTokenExpired)
	}
}

func TestRateLimitedSendsAreRetried(t *testing.T) {
	// With the default limit (burst 40), a burst of 60 is partly refused
	// with rate_limited; the client retries those, so every message is
	// stored exactly once, though retried ones come after later sends.
	env := testserver.Start(t, testserver.Options{})
	alice, _ := run(t, env, "alice", nil)
	bob, _ := run(t, env, "bob", nil)
	conv := direct(t, alice, "bob")
	const n = 60
	var results []<-chan client.SendResult
	for i := range n {
		ch, err := alice.SendAsync(conv.ID, "", fmt.Sprintf("m%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, ch)
	}
	for i, ch := range results {
		select {
		case r := <-ch:
			if r.Err != nil {
				t.Fatalf("send %d: %v", i, r.Err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("send %d never acknowledged", i)
		}
	}
	seen := make(map[string]bool)
	for _, m := range messages(t, bob, conv.ID, n) {
		if seen[m.Body] {
			t.Fatalf("%s delivered twice", m.Body)
		}
		seen[m.Body] = true
	}
}

// TestConcurrentSendsKeepEachSendersOrder: many goroutines send at once
// through one client (their sends are flushed together while another
// flush is writing); every send is acknowledged exactly once, and each
// goroutine's messages arrive in the order it sent them.
func TestConcurrentSendsKeepEachSendersOrder(t *testing.T) {
	env := testserver.Start(t, testserver.Options{Chat: chat.Config{RatePerSecond: 1e6, RateBurst: 1 << 20}})
	alice, _ := run(t, env, "alice", nil)
	bob, _ := run(t, env, "bob", nil)
	conv := direct(t, alice, "bob")
	const senders, each = 8, 40
	var acked atomic.Int32
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var calls atomic.Int32
				err := alice.SendFunc(conv.ID, "", fmt.Sprintf("%d/%d", g, i), json.RawMessage(`{"g":1}`), func(r client.SendResult) {
					if calls.Add(1) != 1 || r.Err != nil || r.Ack.Seq == 0 {
						t.Errorf("send %d/%d: result %+v (call %d)", g, i, r, calls.Load())
					}
					acked.Add(1)
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	next := make([]int, senders)
	for _, m := range messages(t, bob, conv.ID, senders*each) {
		var g, i int
		if _, err := fmt.Sscanf(m.Body, "%d/%d", &g, &i); err != nil || string(m.Meta) != `{"g":1}` {
			t.Fatalf("message %+v", m)
		}
		if i != next[g] {
			t.Fatalf("sender %d: message %d arrived when %d was next", g, i, next[g])
		}
		next[g]++
	}
	deadline := time.Now().Add(10 * time.Second)
	for acked.Load() != senders*each && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := acked.Load(); n != senders*each {
		t.Fatalf("%d of %d sends acknowledged", n, senders*each)
	}
}

func TestSendRefusesInvalidMeta(t *testing.T) {
	c := client.New(client.Options{URL: "ws://127.0.0.1:1/ws", Token: "t"})
	if _, err := c.SendAsync("c1", "", "x", json.RawMessage(`{"a":`)); err == nil {
		t.Fatal("SendAsync accepted meta that is not JSON")
	}
	if c.Pending() != 0 {
		t.Fatalf("%d sends queued", c.Pending())
	}
}

// TestHeartbeatDropsSilentConnection: a server that completes the
// handshake and then never answers gets pinged after PingInterval of
// silence and dropped PingTimeout later; one that answers keeps its
// connection.
func TestHeartbeatDropsSilentConnection(t *testing.T) {
	var accepted atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := ws.Accept(w, r, &ws.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		accepted.Add(1)
		conn.Write(r.Context(), ws.MessageText, []byte(`{"type":"welcome","user":"alice","conversations":[]}`))
		for { // read and ignore everything, the ping request included
			if _, _, err := conn.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := client.New(client.Options{
		URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Token: "t",
		PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for accepted.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections: the silent one was not dropped and re-established", accepted.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}

	env := testserver.Start(t, testserver.Options{})
	live := client.New(client.Options{URL: env.WSURL(), Token: env.Token("bob"),
		PingInterval: 20 * time.Millisecond, PingTimeout: 2 * time.Second})
	lctx, lcancel := context.WithCancel(context.Background())
	ldone := make(chan struct{})
	go func() { defer close(ldone); live.Run(lctx) }()
	defer func() { lcancel(); <-ldone }()
	waitState(t, live, client.StateConnected)
	time.Sleep(300 * time.Millisecond) // about 15 ping intervals
	for {
		select {
		case ev := <-live.Events():
			if ev.State != nil && ev.State.State != client.StateConnected {
				t.Fatalf("answered connection changed state: %+v", ev.State)
			}
			continue
		default:
		}
		break
	}
}

// TestPolledClients: clients read by a shared ws.Poller deliver in order,
// and keep their queue across a server restart (the reconnect goes through
// the Poller again).
func TestPolledClients(t *testing.T) {
	poller, err := ws.NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	env := testserver.Start(t, testserver.Options{Chat: chat.Config{RatePerSecond: 1000, RateBurst: 1000}})
	start := func(user string) *client.Client {
		c := client.New(client.Options{URL: env.WSURL(), Token: env.Token(user), Poller: poller,
			BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		waitState(t, c, client.StateConnected)
		return c
	}
	alice, bob := start("alice"), start("bob")
	conv := direct(t, alice, "bob")
	const n = 50
	for i := range n {
		if _, err := alice.SendAsync(conv.ID, "", fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range messages(t, bob, conv.ID, n) {
		if m.Body != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	waitState(t, alice, client.StateReconnecting)
	ch, err := alice.SendAsync(conv.ID, "", "queued", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.Err != nil || r.Ack.Seq != n+1 {
			t.Fatalf("queued send: ack %+v err %v", r.Ack, r.Err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("queued send was never acknowledged")
	}
	if got := messages(t, bob, conv.ID, 1); got[0].Body != "queued" {
		t.Fatalf("bob got %+v after the restart", got[0])
	}
}

// TestOnEvent: with Options.OnEvent the events go to the callback, in
// order and once each, and the Events channel only closes.
func TestOnEvent(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	alice, _ := run(t, env, "alice", nil)
	var mu sync.Mutex
	var got []protocol.Message
	var states []client.State
	bob := client.New(client.Options{URL: env.WSURL(), Token: env.Token("bob"), OnEvent: func(ev client.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev.Message != nil:
			got = append(got, *ev.Message)
		case ev.State != nil:
			states = append(states, ev.State.State)
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bob.Run(ctx) }()
	waitState(t, bob, client.StateConnected)
	conv := direct(t, alice, "bob")
	const n = 20
	for i := range n {
		if _, err := alice.Send(context.Background(), conv.ID, "", fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if _, open := <-bob.Events(); open {
		t.Fatal("Events carried an event although OnEvent was set")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("OnEvent got %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if m.Seq != int64(i+1) || m.Body != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	if len(states) < 2 || states[0] != client.StateConnected || states[len(states)-1] != client.StateClosed {
		t.Fatalf("states %v, want connected first and closed last", states)
	}
}

// TestSeqsDropRemoved: Seqs forgets a conversation the user was removed
// from, whether the removal arrives live or the next welcome (after being
// away) no longer lists it.
func TestSeqsDropRemoved(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	alice, _ := run(t, env, "alice", nil)
	carol, stopCarol := run(t, env, "carol", nil)
	live, err := alice.CreateGroup(ctx, "live", []string{"carol"})
	if err != nil {
		t.Fatal(err)
	}
	away, err := alice.CreateGroup(ctx, "away", []string{"carol"})
	if err != nil {
		t.Fatal(err)
	}
	kept := direct(t, alice, "carol")
	if _, err := alice.Send(ctx, kept.ID, "", "hi", nil); err != nil {
		t.Fatal(err)
	}
	messages(t, carol, kept.ID, 1)
	has := func(c *client.Client, conv string) bool {
		_, ok := c.Seqs()[conv]
		return ok
	}
	for _, conv := range []string{live.ID, away.ID, kept.ID} {
		if !has(carol, conv) {
			t.Fatalf("carol's seqs %v lack %s", carol.Seqs(), conv)
		}
	}

	if err := alice.RemoveMember(ctx, live.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); has(carol, live.ID); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("carol's seqs %v still hold %s after her removal", carol.Seqs(), live.ID)
		}
	}

	seqs := carol.Seqs()
	stopCarol()
	if err := alice.RemoveMember(ctx, away.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	carol2, _ := run(t, env, "carol", seqs)
	// The state turns connected before the welcome's conversations are
	// taken in.
	for deadline := time.Now().Add(10 * time.Second); has(carol2, away.ID); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after a welcome without %s, carol's seqs still hold it: %v", away.ID, carol2.Seqs())
		}
	}
	if !has(carol2, kept.ID) {
		t.Fatalf("carol's seqs lost %s, which she is still in: %v", kept.ID, carol2.Seqs())
	}
}
