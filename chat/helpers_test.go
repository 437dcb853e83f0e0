package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	brokermem "github.com/duplexhq/duplex/broker/memory"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/store/sqlite"
)

// recSink is a Sink that records frames. With limit > 0 its "queue" holds
// limit frames and Send fails after that, like a transport whose client
// stopped reading.
type recSink struct {
	mu     sync.Mutex
	frames []map[string]any
	raw    [][]byte
	limit  int
	code   int
	reason string
	notify chan struct{}
}

func newSink() *recSink { return &recSink{notify: make(chan struct{}, 1)} }

func (s *recSink) Send(frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && len(s.raw) >= s.limit {
		return false
	}
	var m map[string]any
	if err := json.Unmarshal(frame, &m); err != nil {
		m = map[string]any{"type": "<invalid json>", "raw": string(frame)}
	}
	s.frames = append(s.frames, m)
	s.raw = append(s.raw, frame)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return true
}

func (s *recSink) Close(code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 {
		s.code, s.reason = code, reason
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *recSink) closeCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

// snapshot returns the frames recorded so far.
func (s *recSink) snapshot() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.frames...)
}

// of returns the recorded frames of one type.
func (s *recSink) of(typ string) []map[string]any {
	var out []map[string]any
	for _, f := range s.snapshot() {
		if f["type"] == typ {
			out = append(out, f)
		}
	}
	return out
}

// waitFor waits until pred holds for the recorded frames.
func (s *recSink) waitFor(t testing.TB, what string, pred func([]map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		fs := s.snapshot()
		if pred(fs) {
			return fs
		}
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; frames: %v", what, fs)
		}
	}
}

// waitCount waits until at least n frames of typ were recorded.
func (s *recSink) waitCount(t testing.TB, typ string, n int) []map[string]any {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d %s frames", n, typ), func(fs []map[string]any) bool {
		c := 0
		for _, f := range fs {
			if f["type"] == typ {
				c++
			}
		}
		return c >= n
	})
	return s.of(typ)
}

// reply returns the reply frame with request id, waiting for it: an ack
// that must follow earlier deliveries is routed through the broker, after
// Handle returns.
func (s *recSink) reply(t testing.TB, id string) map[string]any {
	t.Helper()
	var reply map[string]any
	s.waitFor(t, fmt.Sprintf("reply with id %q", id), func(fs []map[string]any) bool {
		for _, f := range fs {
			if f["id"] == id {
				reply = f
				return true
			}
		}
		return false
	})
	return reply
}

type env struct {
	t   testing.TB
	svc *Service
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "duplex.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	br := brokermem.New(brokermem.Options{})
	pr := presencemem.New(presencemem.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	svc, err := New(cfg, st, br, pr, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		svc.Close()
		br.Close()
		pr.Close()
		st.Close()
	})
	return &env{t: t, svc: svc}
}

// client is one connected device in a test.
type client struct {
	t    testing.TB
	user string
	sess Session
	sink *recSink
	n    int
}

func (e *env) connect(user string) *client {
	e.t.Helper()
	sink := newSink()
	sess, err := e.svc.Connect(context.Background(), Identity{UserID: user}, sink)
	if err != nil {
		e.t.Fatalf("Connect(%s): %v", user, err)
	}
	if fs := sink.snapshot(); len(fs) == 0 || fs[0]["type"] != "welcome" {
		e.t.Fatalf("first frame is not welcome: %v", fs)
	}
	return &client{t: e.t, user: user, sess: sess, sink: sink}
}

// do sends a request (fields merged with type and a fresh id) and returns
// its reply.
func (c *client) do(typ string, fields map[string]any) map[string]any {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("%s-%d", c.user, c.n)
	req := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sess.Handle(context.Background(), b)
	return c.sink.reply(c.t, id)
}

// must is do that fails the test on an error reply.
func (c *client) must(typ string, fields map[string]any) map[string]any {
	c.t.Helper()
	r := c.do(typ, fields)
	if r["type"] == "error" {
		c.t.Fatalf("%s %v: %v", typ, fields, r)
	}
	return r
}

func (c *client) send(conv, cmid, body string) int64 {
	c.t.Helper()
	r := c.must("send", map[string]any{"conv": conv, "client_msg_id": cmid, "body": body})
	if r["type"] != "ack" {
		c.t.Fatalf("send reply %v, want ack", r)
	}
	return int64(r["seq"].(float64))
}

func (c *client) group(title string, members ...string) string {
	c.t.Helper()
	r := c.must("create_group", map[string]any{"title": title, "members": members})
	return r["data"].(map[string]any)["conversation"].(map[string]any)["id"].(string)
}

func (c *client) direct(peer string) string {
	c.t.Helper()
	r := c.must("create_direct", map[string]any{"peer": peer})
	return r["data"].(map[string]any)["conversation"].(map[string]any)["id"].(string)
}

func (c *client) close() { c.sess.Close() }

// seqs returns the seqs of the message events of conv, in arrival order.
func seqs(fs []map[string]any, conv string) []int64 {
	var out []int64
	for _, f := range fs {
		if f["type"] == "message" && f["conv"] == conv {
			out = append(out, int64(f["seq"].(float64)))
		}
	}
	return out
}

func countMessages(fs []map[string]any, conv string) int { return len(seqs(fs, conv)) }

func errCode(f map[string]any) string {
	if f["type"] != "error" {
		return ""
	}
	return f["code"].(string)
}
