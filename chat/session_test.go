package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/protocol"
)

// TestBadInput: every class of bad frame gets an error with the right code
// (and the request id when there is one), and the session stays usable.
func TestBadInput(t *testing.T) {
	e := newEnv(t, Config{MaxBody: 10, MaxMeta: 20, MaxFrame: 2048, MaxBadFrames: 1000})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	tests := []struct {
		name, frame, code, id string
	}{
		{"invalid json", `{"type":"send",`, "invalid_json", ""},
		{"not an object", `[1]`, "bad_request", ""},
		{"unknown type", `{"type":"nope","id":"u1"}`, "unknown_type", "u1"},
		{"missing type", `{"id":"m1"}`, "missing_field", "m1"},
		{"missing id", `{"type":"ping"}`, "missing_field", ""},
		{"missing conv", `{"type":"send","id":"s1","client_msg_id":"c","body":"x"}`, "missing_field", "s1"},
		{"wrong field type", `{"type":"read","id":"r1","conv":"c","seq":"3"}`, "bad_request", "r1"},
		{"frame too large", `{"type":"ping","id":"big","pad":"` + strings.Repeat("x", 3000) + `"}`, "too_large", ""},
		{"body too large", `{"type":"send","id":"b1","conv":"` + conv + `","client_msg_id":"c","body":"` + strings.Repeat("x", 11) + `"}`, "too_large", "b1"},
		{"meta too large", `{"type":"send","id":"b2","conv":"` + conv + `","client_msg_id":"c","body":"x","meta":{"k":"` + strings.Repeat("x", 30) + `"}}`, "too_large", "b2"},
		{"meta not object", `{"type":"send","id":"b3","conv":"` + conv + `","client_msg_id":"c","body":"x","meta":"s"}`, "bad_request", "b3"},
		{"unknown conversation", `{"type":"send","id":"n1","conv":"nope","client_msg_id":"c","body":"x"}`, "not_found", "n1"},
		{"self direct", `{"type":"create_direct","id":"d1","peer":"alice"}`, "bad_request", "d1"},
		{"bad channel name", `{"type":"subscribe","id":"c1","channel":"a b"}`, "bad_request", "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(alice.sink.snapshot())
			alice.sess.Handle(context.Background(), []byte(tt.frame))
			fs := alice.sink.snapshot()
			if len(fs) != before+1 {
				t.Fatalf("got %d frames, want exactly one error: %v", len(fs)-before, fs[before:])
			}
			f := fs[before]
			id, _ := f["id"].(string)
			if errCode(f) != tt.code || id != tt.id {
				t.Fatalf("got %v, want code %s id %q", f, tt.code, tt.id)
			}
		})
	}
	if r := alice.do("ping", nil); r["type"] != "result" {
		t.Fatalf("session unusable after bad input: %v", r)
	}
	if alice.sink.closeCode() != 0 {
		t.Fatalf("closed with %d", alice.sink.closeCode())
	}
}

func TestTooManyBadFramesCloses(t *testing.T) {
	e := newEnv(t, Config{MaxBadFrames: 3})
	alice := e.connect("alice")
	for i := 0; i < 3; i++ {
		alice.sess.Handle(context.Background(), []byte("garbage"))
	}
	if code := alice.sink.closeCode(); code != protocol.ClosePolicy {
		t.Fatalf("close code %d, want %d", code, protocol.ClosePolicy)
	}
}

// TestAuthorization: a non-member can neither act on nor learn about a
// conversation, and gets the same not_found as for a nonexistent one.
func TestAuthorization(t *testing.T) {
	e := newEnv(t, Config{})
	alice, mallory := e.connect("alice"), e.connect("mallory")
	conv := alice.group("secret", "bob")
	alice.send(conv, "1", "private")
	for _, conv := range []string{conv, "does-not-exist"} {
		reqs := []struct {
			typ    string
			fields map[string]any
		}{
			{"send", map[string]any{"conv": conv, "client_msg_id": "x", "body": "hi"}},
			{"sync", map[string]any{"conv": conv}},
			{"history", map[string]any{"conv": conv}},
			{"read", map[string]any{"conv": conv, "seq": 1}},
			{"typing", map[string]any{"conv": conv}},
			{"add_member", map[string]any{"conv": conv, "user": "mallory"}},
			{"remove_member", map[string]any{"conv": conv, "user": "bob"}},
		}
		for _, r := range reqs {
			f := mallory.do(r.typ, r.fields)
			if errCode(f) != "not_found" || f["message"] != "conversation not found" && r.typ != "send" {
				t.Errorf("%s on %s: %v, want not_found", r.typ, conv, f)
			}
		}
	}
	if n := countMessages(mallory.sink.snapshot(), conv); n != 0 {
		t.Fatalf("non-member received %d messages", n)
	}
	ctx := context.Background()
	mid := Identity{UserID: "mallory"}
	if _, err := e.svc.Send(ctx, mid, conv, "x", "hi", nil); AsError(err).Code != protocol.CodeNotFound {
		t.Fatalf("API send: %v", err)
	}
	if _, err := e.svc.History(ctx, mid, conv, 0, 10); AsError(err).Code != protocol.CodeNotFound {
		t.Fatalf("API history: %v", err)
	}
	if _, err := e.svc.Conversations(ctx, Identity{}); AsError(err).Code != protocol.CodeUnauthorized {
		t.Fatalf("no identity: %v", err)
	}
}

// TestRateLimit: frames beyond the token bucket are refused with
// rate_limited; persistent abuse closes with 4008.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 0.001, RateBurst: 3, RateStrikes: 2})
	alice := e.connect("alice")
	for i := 0; i < 3; i++ {
		if r := alice.do("ping", nil); r["type"] != "result" {
			t.Fatalf("ping %d within burst: %v", i, r)
		}
	}
	if code := errCode(alice.do("ping", nil)); code != "rate_limited" {
		t.Fatalf("over the burst: %q", code)
	}
	alice.do("ping", nil)
	alice.sess.Handle(context.Background(), []byte(`{"type":"ping","id":"last"}`))
	if code := alice.sink.closeCode(); code != protocol.CloseRateLimited {
		t.Fatalf("close code %d, want %d", code, protocol.CloseRateLimited)
	}
}

func TestTypingRateLimit(t *testing.T) {
	e := newEnv(t, Config{TypingInterval: time.Hour, TypingTTL: 3 * time.Second})
	alice, bob := e.connect("alice"), e.connect("bob")
	conv := alice.direct("bob")
	r := alice.must("typing", map[string]any{"conv": conv})
	if r["data"].(map[string]any)["ttl_ms"] != 3000.0 {
		t.Fatalf("typing result %v", r)
	}
	if code := errCode(alice.do("typing", map[string]any{"conv": conv})); code != "rate_limited" {
		t.Fatalf("second typing: %q, want rate_limited", code)
	}
	ev := bob.sink.waitCount(t, "typing", 1)[0]
	if ev["user"] != "alice" || ev["conv"] != conv || ev["ttl_ms"] != 3000.0 {
		t.Fatalf("typing event %v", ev)
	}
	alice.send(conv, "barrier", "x")
	bob.sink.waitCount(t, "message", 1)
	if n := len(bob.sink.of("typing")); n != 1 {
		t.Fatalf("bob got %d typing events, want 1", n)
	}
	if n := len(alice.sink.of("typing")); n != 0 {
		t.Fatalf("the typist got its own typing event")
	}
}

func TestConnectionsPerUser(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerUser: 2})
	a1 := e.connect("alice")
	e.connect("alice")
	_, err := e.svc.Connect(context.Background(), Identity{UserID: "alice"}, newSink())
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != protocol.CodeTooManyConnections || ce.CloseCode() != protocol.CloseTooManyConns {
		t.Fatalf("third connection: %v", err)
	}
	a1.close()
	e.connect("alice") // room again
	e.connect("bob")   // per user, not global
}

func TestTokenExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	_, err := e.svc.Connect(context.Background(), Identity{UserID: "alice", ExpiresAt: time.Now().Add(-time.Second)}, newSink())
	if ce := AsError(err); ce.Code != protocol.CodeUnauthorized || ce.CloseCode() != protocol.CloseTokenExpired {
		t.Fatalf("expired token: %v", err)
	}
	sink := newSink()
	if _, err := e.svc.Connect(context.Background(), Identity{UserID: "alice", ExpiresAt: time.Now().Add(50 * time.Millisecond)}, sink); err != nil {
		t.Fatal(err)
	}
	sink.waitFor(t, "close on expiry", func([]map[string]any) bool { return sink.closeCode() == protocol.CloseTokenExpired })
}

// TestSlowConsumer: a sink that stops taking frames is closed with 4009;
// reconnecting and syncing recovers every message.
func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, Config{RatePerSecond: 1e6, RateBurst: 1e6})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	slow := newSink()
	slow.limit = 4 // welcome + 3 frames
	if _, err := e.svc.Connect(context.Background(), Identity{UserID: "bob"}, slow); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		alice.send(conv, fmt.Sprint(i), "x")
	}
	slow.waitFor(t, "close 4009", func([]map[string]any) bool { return slow.closeCode() == protocol.CloseSlowConsumer })
	bob := e.connect("bob")
	end := bob.must("sync", map[string]any{"conv": conv, "after": 3})
	if end["seq"] != 10.0 {
		t.Fatalf("sync.end %v", end)
	}
	got := append(seqs(slow.snapshot(), conv), seqs(bob.sink.snapshot(), conv)...)
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("recovered seqs %v", got)
		}
	}
	if len(got) != 10 {
		t.Fatalf("recovered %d of 10", len(got))
	}
}

// flowSink is a recSink whose SendWait waits for room like a transport's
// bounded queue; the test drains it.
type flowSink struct {
	*recSink
	room chan struct{}
}

func (f *flowSink) SendWait(ctx context.Context, frame []byte) error {
	select {
	case <-f.room:
	case <-ctx.Done():
		return ctx.Err()
	}
	f.recSink.Send(frame)
	return nil
}

// TestSyncUsesFlowControl: with a FlowSink a sync larger than any queue
// waits for room instead of closing the connection.
func TestSyncUsesFlowControl(t *testing.T) {
	e := newEnv(t, Config{SyncPage: 4, RatePerSecond: 1e6, RateBurst: 1e6})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	for i := 0; i < 12; i++ {
		alice.send(conv, fmt.Sprint(i), "x")
	}
	fs := &flowSink{recSink: newSink(), room: make(chan struct{})}
	sess, err := e.svc.Connect(context.Background(), Identity{UserID: "bob"}, fs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sess.Handle(context.Background(), []byte(`{"type":"sync","id":"s","conv":"`+conv+`"}`))
	}()
	for i := 0; i < 13; i++ { // the messages, then sync.end (flow-controlled too)
		fs.room <- struct{}{}
	}
	<-done
	if got := seqs(fs.snapshot(), conv); len(got) != 12 || fs.closeCode() != 0 {
		t.Fatalf("got %v, close %d", got, fs.closeCode())
	}
}

// TestCloseGoingAway: closing the service closes sessions with 1001 and
// later connects are refused as unavailable.
func TestCloseGoingAway(t *testing.T) {
	e := newEnv(t, Config{})
	alice := e.connect("alice")
	e.svc.Close()
	if code := alice.sink.closeCode(); code != protocol.CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
	if _, err := e.svc.Connect(context.Background(), Identity{UserID: "bob"}, newSink()); AsError(err).Code != protocol.CodeUnavailable {
		t.Fatalf("connect after close: %v", err)
	}
}
