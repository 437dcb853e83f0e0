package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/duplexhq/duplex/protocol"
)

// queueSink is a FlowSink with a real bounded queue, like a transport's:
// Send fails when it is full, SendWait waits for room and reports on
// blocked that it had to wait.
type queueSink struct {
	*recSink
	q       chan []byte
	blocked chan struct{}
}

func newQueueSink(n int) *queueSink {
	return &queueSink{recSink: newSink(), q: make(chan []byte, n), blocked: make(chan struct{}, 1)}
}

func (s *queueSink) Send(frame []byte) bool {
	select {
	case s.q <- frame:
		return true
	default:
		return false
	}
}

func (s *queueSink) SendWait(ctx context.Context, frame []byte) error {
	select {
	case s.q <- frame:
		return nil
	default:
	}
	select {
	case s.blocked <- struct{}{}:
	default:
	}
	select {
	case s.q <- frame:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain moves the queued frames to the recorder.
func (s *queueSink) drain() {
	for {
		select {
		case f := <-s.q:
			s.recSink.Send(f)
		default:
			return
		}
	}
}

// TestSyncEndWaitsForRoom is the regression test for sync.end sent
// without flow control: a sync whose messages exactly fill the queue must
// wait for room for its sync.end, not close a client that is merely
// slower than the store as a slow consumer (4009).
func TestSyncEndWaitsForRoom(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	for i := 0; i < 3; i++ {
		alice.send(conv, fmt.Sprint(i), "x")
	}
	qs := newQueueSink(4) // the welcome and the three messages
	sess, err := e.svc.Connect(context.Background(), Identity{UserID: "bob"}, qs)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sess.Handle(context.Background(), []byte(`{"type":"sync","id":"s","conv":"`+conv+`"}`))
	}()
	select { // the reader drains once the sync waits on the full queue, or ended
	case <-qs.blocked:
	case <-done:
	}
	qs.drain()
	<-done
	qs.drain()
	if code := qs.closeCode(); code != 0 {
		t.Fatalf("closed with %d", code)
	}
	fs := qs.snapshot()
	if got := seqs(fs, conv); len(got) != 3 || fs[len(fs)-1]["type"] != "sync.end" {
		t.Fatalf("frames %v", fs)
	}
}

// do runs one request through Service.Do and returns the frames.
func do(t *testing.T, svc *Service, user string, req map[string]any) []map[string]any {
	t.Helper()
	b, _ := json.Marshal(req)
	sink := newSink()
	if err := svc.Do(context.Background(), Identity{UserID: user}, b, sink); err != nil {
		t.Fatalf("Do %v: %v", req, err)
	}
	return sink.snapshot()
}

// TestDoWithoutSession: a node holding no session of the user answers its
// requests exactly as a session would, duplicates included, and refuses
// what needs a session.
func TestDoWithoutSession(t *testing.T) {
	e := newEnv(t, Config{SyncPage: 2, Namespaces: map[string]Namespace{"": {Subscribe: true, Publish: true}}})
	bob := e.connect("bob")
	r := do(t, e.svc, "alice", map[string]any{"type": "create_direct", "id": "1", "peer": "bob"})
	if len(r) != 1 || r[0]["type"] != "result" {
		t.Fatalf("create_direct: %v", r)
	}
	conv := r[0]["data"].(map[string]any)["conversation"].(map[string]any)["id"].(string)
	var first map[string]any
	for i := 0; i < 3; i++ {
		r := do(t, e.svc, "alice", map[string]any{"type": "send", "id": "s", "conv": conv, "client_msg_id": fmt.Sprint("m", i), "body": "hi"})
		if len(r) != 1 || r[0]["type"] != "ack" || r[0]["seq"] != float64(i+1) {
			t.Fatalf("send %d: %v", i, r)
		}
		if i == 0 {
			first = r[0]
		}
	}
	dup := do(t, e.svc, "alice", map[string]any{"type": "send", "id": "s", "conv": conv, "client_msg_id": "m0", "body": "hi"})
	if dup[0]["seq"] != first["seq"] || dup[0]["duplicate"] != true {
		t.Fatalf("retry %v, first %v", dup, first)
	}
	bob.sink.waitCount(t, "message", 3)

	// sync is bounded per request (SyncPage); more says to go on.
	r = do(t, e.svc, "alice", map[string]any{"type": "sync", "id": "y", "conv": conv, "after": 0})
	if got := seqs(r, conv); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("sync page 1: %v", r)
	}
	if end := r[len(r)-1]; end["type"] != "sync.end" || end["seq"] != 2.0 || end["more"] != true || end["id"] != "y" {
		t.Fatalf("sync.end %v", end)
	}
	r = do(t, e.svc, "alice", map[string]any{"type": "sync", "id": "y", "conv": conv, "after": 2})
	if got := seqs(r, conv); len(got) != 1 || r[len(r)-1]["more"] != false {
		t.Fatalf("sync page 2: %v", r)
	}

	for _, tc := range []struct {
		name string
		req  map[string]any
		code string
	}{
		{"subscribe needs a session", map[string]any{"type": "subscribe", "id": "x", "channel": "a"}, "bad_request"},
		{"unsubscribe needs a session", map[string]any{"type": "unsubscribe", "id": "x", "channel": "a"}, "bad_request"},
		{"stranger's conversation", map[string]any{"type": "sync", "id": "x", "conv": conv}, "not_found"},
		{"unknown type", map[string]any{"type": "nope", "id": "x"}, "unknown_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, e.svc, "mallory", tc.req)
			if len(r) != 1 || errCode(r[0]) != tc.code || r[0]["id"] != "x" {
				t.Fatalf("got %v, want %s", r, tc.code)
			}
		})
	}
	if err := e.svc.Do(context.Background(), Identity{}, []byte(`{"type":"ping","id":"1"}`), newSink()); AsError(err).Code != protocol.CodeUnauthorized {
		t.Fatalf("Do without user: %v", err)
	}
}

// TestDoSessionForwards: subscribe through DoSession reaches the stream
// session by its id (through the broker), channel messages then reach
// its stream, and the session of another user is not found.
func TestDoSessionForwards(t *testing.T) {
	e := newEnv(t, Config{Namespaces: map[string]Namespace{"news": {Subscribe: true, Publish: true, History: 10}}})
	stream := newSink()
	sess, err := e.svc.ConnectStream(context.Background(), Identity{UserID: "alice"}, stream)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	sid := stream.snapshot()[0]["session"].(string)
	if _, err := e.svc.Publish(context.Background(), Identity{Admin: true}, "news:a", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}

	doSession := func(user, sid, frame string) []map[string]any {
		sink := newSink()
		if err := e.svc.DoSession(context.Background(), Identity{UserID: user}, sid, []byte(frame), sink); err != nil {
			t.Fatal(err)
		}
		return sink.snapshot()
	}
	r := doSession("alice", sid, `{"type":"subscribe","id":"s","channel":"news:a","since":0}`)
	if len(r) != 1 || r[0]["type"] != "result" || r[0]["data"].(map[string]any)["offset"] != 1.0 {
		t.Fatalf("subscribe reply %v", r)
	}
	stream.waitCount(t, "channel.message", 1) // the replay goes to the stream
	if _, err := e.svc.Publish(context.Background(), Identity{Admin: true}, "news:a", json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	stream.waitCount(t, "channel.message", 2)

	if r := doSession("mallory", sid, `{"type":"unsubscribe","id":"u","channel":"news:a"}`); len(r) != 1 || errCode(r[0]) != "not_found" {
		t.Fatalf("another user's session: %v", r)
	}
	if r := doSession("alice", sid, `{"type":"unsubscribe","id":"u","channel":"news:a"}`); len(r) != 1 || r[0]["type"] != "result" {
		t.Fatalf("unsubscribe %v", r)
	}
	// Requests that need no session are answered locally.
	if r := doSession("alice", sid, `{"type":"ping","id":"p"}`); len(r) != 1 || r[0]["type"] != "result" {
		t.Fatalf("ping %v", r)
	}
}

// TestPoll: the handshake gets the welcome; later polls get stored
// messages after the cursors, announce unknown conversations, skip
// strangers' conversations, wait for a live message, and time out empty.
func TestPoll(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	ctx := context.Background()
	alice := e.connect("alice")
	conv := alice.direct("bob")
	other := alice.group("private", "carol")
	alice.send(conv, "1", "one")
	alice.send(conv, "2", "two")
	alice.send(other, "x", "secret")
	bob := Identity{UserID: "bob"}
	decode := func(fs [][]byte) []map[string]any {
		var out []map[string]any
		for _, f := range fs {
			var m map[string]any
			if err := json.Unmarshal(f, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}

	fs, err := e.svc.Poll(ctx, bob, PollRequest{Handshake: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := decode(fs); len(f) != 1 || f[0]["type"] != "welcome" {
		t.Fatalf("handshake %v", f)
	}

	f := func(req PollRequest) []map[string]any {
		t.Helper()
		fs, err := e.svc.Poll(ctx, bob, req)
		if err != nil {
			t.Fatal(err)
		}
		return decode(fs)
	}
	// A cursor of a conversation bob is not in is answered with his
	// removal from it, last (TestPollRemoved), and nothing of it.
	got := f(PollRequest{Cursors: map[string]int64{conv: 1, other: 0}, Wait: time.Minute})
	if s := seqs(got, conv); len(got) != 3 || len(s) != 1 || s[0] != 2 || got[1]["type"] != "sync.end" || got[1]["more"] != false {
		t.Fatalf("poll after 1: %v", got)
	}
	if m := got[2]; m["type"] != "member" || m["conv"] != other || m["user"] != "bob" || m["action"] != "removed" {
		t.Fatalf("a stranger's conversation leaked or was not dropped: %v", got)
	}
	if got := f(PollRequest{Cursors: map[string]int64{}, Wait: 0}); len(got) != 1 || got[0]["type"] != "conversation" {
		t.Fatalf("unknown conversation not announced: %v", got)
	}

	done := make(chan []map[string]any)
	go func() {
		fs, err := e.svc.Poll(ctx, bob, PollRequest{Cursors: map[string]int64{conv: 2}, Wait: time.Minute})
		if err != nil {
			t.Error(err)
		}
		done <- decode(fs)
	}()
	// The poll registers before it reads the store: whenever the send
	// lands, it is returned once, from the store or live.
	alice.send(conv, "3", "three")
	if got := <-done; len(seqs(got, conv)) != 1 || seqs(got, conv)[0] != 3 {
		t.Fatalf("live poll: %v", got)
	}
	if got := f(PollRequest{Cursors: map[string]int64{conv: 3}, Wait: 50 * time.Millisecond}); len(got) != 0 {
		t.Fatalf("idle poll: %v", got)
	}
	for _, tc := range []struct {
		name string
		req  PollRequest
		code protocol.Code
	}{
		{"negative cursor", PollRequest{Cursors: map[string]int64{conv: -1}}, protocol.CodeBadRequest},
		{"unknown namespace", PollRequest{Channels: map[string]int64{"nope:x": 0}}, protocol.CodeNotFound},
	} {
		if _, err := e.svc.Poll(ctx, bob, tc.req); AsError(err).Code != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

// TestDoRateLimited: requests without a session share a per-user bucket:
// past the burst they are refused with rate_limited and their id, other
// users are not affected.
func TestDoRateLimited(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 0.001, RateBurst: 2})
	for i, want := range []string{"", "", "rate_limited"} {
		r := do(t, e.svc, "alice", map[string]any{"type": "ping", "id": fmt.Sprint(i)})
		if len(r) != 1 || errCode(r[0]) != want || r[0]["id"] != fmt.Sprint(i) {
			t.Fatalf("request %d: %v, want %q", i, r, want)
		}
	}
	if r := do(t, e.svc, "bob", map[string]any{"type": "ping", "id": "b"}); errCode(r[0]) != "" {
		t.Fatalf("another user limited: %v", r)
	}
}

// TestUserBucketsBounded: the buckets of idle users are forgotten when the
// table is full, so it stays bounded.
func TestUserBucketsBounded(t *testing.T) {
	var u userBuckets
	now := time.Now()
	for i := 0; i < maxUserBuckets; i++ {
		u.allow(fmt.Sprint(i), 10, 1, now)
	}
	if len(u.m) != maxUserBuckets {
		t.Fatalf("%d buckets", len(u.m))
	}
	later := now.Add(time.Second) // every bucket has refilled
	if !u.allow("new", 10, 1, later) || len(u.m) != 1 {
		t.Fatalf("after the sweep: %d buckets", len(u.m))
	}
}

// FuzzRemotePayloads feeds arbitrary broker payloads to the parsers of
// forwarded requests and their replies (another node, another version, or
// corruption): never a panic, and a parsed request is made of the input.
func FuzzRemotePayloads(f *testing.F) {
	f.Add([]byte("\x05alice\x0breply.12345{\"type\":\"ping\"}"))
	f.Add([]byte{replyFrames, 2, '{', '}', 1, '1'})
	f.Add([]byte{replyNoSession})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, p []byte) {
		if user, reply, frame, ok := parseRemote(p); ok && len(user)+len(reply)+len(frame) > len(p) {
			t.Fatalf("parsed more than the input: %q %q %q", user, reply, frame)
		}
		var l frameList
		writeRemoteReply(p, "id", &l)
	})
}
