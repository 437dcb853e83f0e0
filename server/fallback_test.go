package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/chat"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	event string // "" for message events
	data  string
}

// frame decodes the event's data as a duplex.v1 frame.
func (ev sseEvent) frame(t testing.TB) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal([]byte(ev.data), &f); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	return f
}

// sseClient reads an event stream on a goroutine into events; the
// channel is closed when the stream ends.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openSSE opens GET /sse as user (token in the query, as EventSource
// does) on base.
func openSSE(t testing.TB, e *testEnv, base, user string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sse?access_token="+e.token(user), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /sse: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, resp: resp, events: make(chan sseEvent, 256), cancel: cancel}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				ev.data = strings.Join(data, "\n")
				c.events <- ev
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return c
}

// next returns the next event (failing the test after 10 s or at the end
// of the stream).
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		c.t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// nextFrame skips pings and returns the next message event's frame.
func (c *sseClient) nextFrame() frame {
	c.t.Helper()
	for {
		if ev := c.next(); ev.event == "" {
			return ev.frame(c.t)
		} else if ev.event != "ping" {
			c.t.Fatalf("unexpected %s event %s", ev.event, ev.data)
		}
	}
}

// frames is the body of /rpc and /poll answers.
type frames struct {
	Frames []frame `json:"frames"`
}

// rpc posts one request frame as user to /rpc (with ?session= when sid is
// set) and returns the status and the frames.
func (e *testEnv) rpc(user, sid string, req any) (int, []frame) {
	e.t.Helper()
	path := "/rpc"
	if sid != "" {
		path += "?session=" + sid
	}
	var out frames
	st := e.call("POST", path, user, req, &out)
	return st, out.Frames
}

func (e *testEnv) poll(user string, body any) (int, []frame) {
	e.t.Helper()
	var out frames
	st := e.call("POST", "/poll", user, body, &out)
	return st, out.Frames
}

// TestSSEStream: welcome first (with the session id), live messages, ping
// events, and a close event with 1001 when the server shuts down.
func TestSSEStream(t *testing.T) {
	e := newEnv(t, envOpts{ssePing: 50 * time.Millisecond})
	conv := e.direct("alice", "bob").ID
	bob := openSSE(t, e, e.base, "bob")
	w := bob.nextFrame()
	if w.Type != "welcome" || w.User != "bob" || len(w.Conversations) != 1 {
		t.Fatalf("first event %+v", w)
	}
	if st, fs := e.rpc("alice", "", map[string]any{"type": "send", "id": "1", "conv": conv, "client_msg_id": "m1", "body": "hi\nthere"}); st != 200 || len(fs) != 1 || fs[0].Type != "ack" {
		t.Fatalf("send: %d %+v", st, fs)
	}
	if m := bob.nextFrame(); m.Type != "message" || m.Seq != 1 || m.Body != "hi\nthere" {
		t.Fatalf("live message %+v", m)
	}
	for ev := bob.next(); ev.event != "ping"; ev = bob.next() {
		t.Fatalf("unexpected event %+v", ev)
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	for {
		ev := bob.next()
		if ev.event == "ping" {
			continue
		}
		if ev.event != "close" || !strings.Contains(ev.data, `"code":1001`) {
			t.Fatalf("last event %+v", ev)
		}
		break
	}
	if _, ok := <-bob.events; ok {
		t.Fatal("stream goes on after the close event")
	}
}

// TestSSEOutlivesServerTimeouts: an event stream keeps working past the
// http.Server's read and write timeouts (it extends its deadlines).
func TestSSEOutlivesServerTimeouts(t *testing.T) {
	e := newEnv(t, envOpts{ssePing: 100 * time.Millisecond})
	conv := e.direct("alice", "bob").ID
	ts := httptest.NewUnstartedServer(e.srv)
	ts.Config.ReadTimeout = 300 * time.Millisecond
	ts.Config.WriteTimeout = 300 * time.Millisecond
	ts.Start()
	defer ts.Close()
	bob := openSSE(t, e, ts.URL, "bob")
	if w := bob.nextFrame(); w.Type != "welcome" {
		t.Fatalf("first event %+v", w)
	}
	time.Sleep(time.Second) // several timeouts
	if st, _ := e.rpc("alice", "", map[string]any{"type": "send", "id": "1", "conv": conv, "client_msg_id": "m1", "body": "late"}); st != 200 {
		t.Fatalf("send: %d", st)
	}
	if m := bob.nextFrame(); m.Type != "message" || m.Body != "late" {
		t.Fatalf("after the timeouts: %+v", m)
	}
	bob.cancel()
}

// TestRPC: the frames a WebSocket session would reply, for send (and its
// retry), sync, and refusals; HTTP errors for what is not a frame.
func TestRPC(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := e.direct("alice", "bob").ID
	send := func(cmid string) frame {
		t.Helper()
		st, fs := e.rpc("alice", "", map[string]any{"type": "send", "id": "s-" + cmid, "conv": conv, "client_msg_id": cmid, "body": "b"})
		if st != 200 || len(fs) != 1 || fs[0].Type != "ack" || fs[0].ID != "s-"+cmid {
			t.Fatalf("send %s: %d %+v", cmid, st, fs)
		}
		return fs[0]
	}
	first := send("m1")
	send("m2")
	send("m3")
	if again := send("m1"); again.Seq != first.Seq || !again.Duplicate {
		t.Fatalf("retry %+v, first %+v", again, first)
	}

	st, fs := e.rpc("bob", "", map[string]any{"type": "sync", "id": "y", "conv": conv, "after": 1})
	if st != 200 || len(fs) != 3 || fs[0].Seq != 2 || fs[1].Seq != 3 || fs[2].Type != "sync.end" || fs[2].Seq != 3 || fs[2].ID != "y" {
		t.Fatalf("sync: %d %+v", st, fs)
	}

	for _, tc := range []struct {
		name string
		user string
		body any
		want int
		code string
	}{
		{"not JSON", "bob", []byte("{nope"), 400, "invalid_json"},
		{"empty", "bob", []byte(""), 400, "invalid_json"},
		{"too large", "bob", []byte(`{"type":"ping","id":"1","pad":"` + strings.Repeat("x", DefaultReadLimit) + `"}`), 413, "too_large"},
		{"no token", "", map[string]any{"type": "ping", "id": "1"}, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ae apiErr
			if st := e.call("POST", "/rpc", tc.user, tc.body, &ae); st != tc.want || ae.Error.Code != tc.code {
				t.Fatalf("%d %+v, want %d %s", st, ae, tc.want, tc.code)
			}
		})
	}
	// Refusals of valid frames are error frames, as on a WebSocket.
	for _, tc := range []struct {
		req  map[string]any
		code string
	}{
		{map[string]any{"type": "subscribe", "id": "x", "channel": "c"}, "bad_request"},
		{map[string]any{"type": "sync", "id": "x", "conv": conv}, "not_found"},
		{map[string]any{"type": "teleport", "id": "x"}, "unknown_type"},
	} {
		if st, fs := e.rpc("mallory", "", tc.req); st != 200 || len(fs) != 1 || fs[0].Code != tc.code || fs[0].ID != "x" {
			t.Errorf("%v: %d %+v, want %s", tc.req, st, fs, tc.code)
		}
	}
}

// TestFallbackAuth: every fallback endpoint refuses missing or bad
// credentials with 401 and the JSON error body.
func TestFallbackAuth(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tc := range []struct{ method, path, auth string }{
		{"GET", "/sse", ""},
		{"GET", "/sse?access_token=garbage", ""},
		{"POST", "/rpc", ""},
		{"POST", "/rpc", "Bearer garbage"},
		{"POST", "/poll", ""},
		{"POST", "/poll", "Bearer garbage"},
	} {
		req, _ := http.NewRequest(tc.method, e.base+tc.path, strings.NewReader(`{"type":"ping","id":"1"}`))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ae apiErr
		json.NewDecoder(resp.Body).Decode(&ae)
		resp.Body.Close()
		if resp.StatusCode != 401 || ae.Error.Code != "unauthorized" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s (%q): %d %+v", tc.method, tc.path, tc.auth, resp.StatusCode, ae)
		}
	}
}

// TestPollEndpoint: the handshake gets the welcome, a poll returns what
// its cursors miss at once, waits for and returns a live message, times
// out with no frames, and corrects the presence the client shows.
func TestPollEndpoint(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := e.direct("alice", "bob").ID
	st, fs := e.poll("bob", map[string]any{"cursors": map[string]int64{}, "wait_ms": 0})
	if st != 200 || len(fs) != 1 || fs[0].Type != "welcome" || len(fs[0].Conversations) != 1 {
		t.Fatalf("handshake: %d %+v", st, fs)
	}
	for i := 0; i < 2; i++ {
		e.rpc("alice", "", map[string]any{"type": "send", "id": "s", "conv": conv, "client_msg_id": string(rune('a' + i)), "body": "b"})
	}
	st, fs = e.poll("bob", map[string]any{"cursors": map[string]int64{conv: 0}, "wait_ms": 20000})
	if st != 200 || len(fs) != 3 || fs[0].Seq != 1 || fs[1].Seq != 2 || fs[2].Type != "sync.end" || fs[2].More {
		t.Fatalf("missed messages: %d %+v", st, fs)
	}

	type result struct {
		st int
		fs []frame
	}
	got := make(chan result, 1)
	go func() {
		var out frames
		st := e.call("POST", "/poll", "bob", map[string]any{"cursors": map[string]int64{conv: 2}, "wait_ms": 20000}, &out)
		got <- result{st, out.Frames}
	}()
	e.rpc("alice", "", map[string]any{"type": "send", "id": "s", "conv": conv, "client_msg_id": "live", "body": "now"})
	r := <-got
	if r.st != 200 || len(r.fs) == 0 || r.fs[0].Type != "message" || r.fs[0].Seq != 3 || r.fs[0].Body != "now" {
		t.Fatalf("live: %d %+v", r.st, r.fs)
	}

	st, fs = e.poll("bob", map[string]any{"cursors": map[string]int64{conv: 3}, "wait_ms": 100})
	if st != 200 || len(fs) != 0 {
		t.Fatalf("timeout: %d %+v", st, fs)
	}
	// bob shows alice online, but she has no connection: told at once.
	st, fs = e.poll("bob", map[string]any{"cursors": map[string]int64{conv: 3}, "presence": map[string]bool{"alice": true}, "wait_ms": 20000})
	if st != 200 || len(fs) != 1 || fs[0].Type != "presence" || fs[0].User != "alice" {
		t.Fatalf("presence: %d %+v", st, fs)
	}
	var ae apiErr
	if st := e.call("POST", "/poll", "bob", map[string]any{"cursors": map[string]int64{}, "wait_ms": -1}, &ae); st != 400 {
		t.Fatalf("negative wait: %d %+v", st, ae)
	}
	if st := e.call("POST", "/poll", "bob", map[string]any{"channels": map[string]int64{"nope:x": 0}, "wait_ms": 0}, &ae); st != 404 || ae.Error.Code != "not_found" {
		t.Fatalf("unknown channel namespace: %d %+v", st, ae)
	}
}

// TestPollEndsAtShutdown: a waiting poll answers (with nothing) when the
// server shuts down instead of holding the shutdown for its wait.
func TestPollEndsAtShutdown(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := e.direct("alice", "bob").ID
	type answer struct {
		st  int
		err error
	}
	got := make(chan answer, 1)
	req, _ := http.NewRequest("POST", e.base+"/poll", strings.NewReader(`{"cursors":{"`+conv+`":0},"wait_ms":30000}`))
	req.Header.Set("Authorization", "Bearer "+e.token("bob"))
	go func() {
		resp, err := e.client.Do(req) // e.client gives up after 10s
		if err != nil {
			got <- answer{err: err}
			return
		}
		resp.Body.Close()
		got <- answer{st: resp.StatusCode}
	}()
	// A running poll is one of bob's connections: once he is online the
	// server holds the poll (in its store read or its wait; either way it
	// must end), so the shutdown cannot come before the request is sent.
	for deadline := time.Now().Add(10 * time.Second); !e.online("alice", "bob"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the poll never made bob online")
		}
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.err != nil || a.st != 200 && a.st != 503 {
			t.Fatalf("poll at shutdown: %d %v", a.st, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("poll still waiting after shutdown")
	}
}

// online reports whether /api/presence, asked by asker, shows user online.
func (e *testEnv) online(asker, user string) bool {
	e.t.Helper()
	var pres struct {
		Presence []struct {
			User   string
			Online bool
		}
	}
	if st := e.call("GET", "/api/presence?users="+user, asker, nil, &pres); st != 200 || len(pres.Presence) != 1 {
		e.t.Fatalf("presence of %s: %d %+v", user, st, pres)
	}
	return pres.Presence[0].Online
}

// TestSubscribeThroughSession: subscribe over /rpc with the SSE session's
// id makes channel publications reach that stream; without a session the
// request is refused; another user cannot use the session.
func TestSubscribeThroughSession(t *testing.T) {
	e := newEnv(t, envOpts{})
	alice := openSSE(t, e, e.base, "alice")
	w := alice.nextFrame()
	session := w.Session
	if w.Type != "welcome" || session == "" {
		t.Fatalf("welcome %+v", w)
	}
	if st, fs := e.rpc("mallory", session, map[string]any{"type": "subscribe", "id": "s", "channel": "room"}); st != 200 || len(fs) != 1 || fs[0].Code != "not_found" {
		t.Fatalf("subscribe on another user's session: %d %+v", st, fs)
	}
	if st, fs := e.rpc("alice", session, map[string]any{"type": "subscribe", "id": "s", "channel": "room"}); st != 200 || len(fs) != 1 || fs[0].Type != "result" || fs[0].ID != "s" {
		t.Fatalf("subscribe: %d %+v", st, fs)
	}
	var pub map[string]any
	if st := e.call("POST", "/api/channels/room/publish", "admin", map[string]any{"data": map[string]string{"hello": "room"}}, &pub); st != 200 {
		t.Fatalf("publish %d", st)
	}
	if f := alice.nextFrame(); f.Type != "channel.message" || !bytes.Contains(f.Data, []byte("room")) {
		t.Fatalf("channel message %+v", f)
	}
}

// TestTransportsOption: disabled transports answer 404 with a JSON error
// and /api/info lists the enabled ones.
func TestTransportsOption(t *testing.T) {
	fallbacksOnly := newEnv(t, envOpts{transports: []string{TransportSSE, TransportLongPoll}})
	var ae apiErr
	if st := fallbacksOnly.call("GET", "/ws", "bob", nil, &ae); st != 404 || ae.Error.Code != "not_found" {
		t.Fatalf("/ws disabled: %d %+v", st, ae)
	}
	var info struct {
		Dev        bool     `json:"dev"`
		Transports []string `json:"transports"`
		Version    string   `json:"version"`
	}
	if st := fallbacksOnly.call("GET", "/api/info", "", nil, &info); st != 200 || strings.Join(info.Transports, ",") != "sse,longpoll" || info.Version == "" {
		t.Fatalf("info %d %+v", st, info)
	}
	if st, fs := fallbacksOnly.rpc("bob", "", map[string]any{"type": "ping", "id": "1"}); st != 200 || len(fs) != 1 {
		t.Fatalf("/rpc with fallbacks on: %d", st)
	}

	wsOnly := newEnv(t, envOpts{transports: []string{TransportWebSocket}})
	for _, tc := range []struct{ method, path string }{{"GET", "/sse"}, {"POST", "/poll"}, {"POST", "/rpc"}} {
		var ae apiErr
		if st := wsOnly.call(tc.method, tc.path, "bob", map[string]any{}, &ae); st != 404 || ae.Error.Code != "not_found" {
			t.Errorf("%s %s disabled: %d %+v", tc.method, tc.path, st, ae)
		}
	}
	if _, err := New(Config{Chat: fallbacksOnly.srv.cfg.Chat, Auth: fallbacksOnly.srv.cfg.Auth, Ready: fallbacksOnly.srv.cfg.Ready, Transports: []string{"pigeon"}}); err == nil {
		t.Fatal("unknown transport accepted")
	}
}

// TestWebClient: the page and its assets come from the binary with their
// content types, no-cache and a CSP without inline script.
func TestWebClient(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `src="/chat.js"`},
		{"/duplex.js", "text/javascript; charset=utf-8", "export class Duplex"},
		{"/chat.js", "text/javascript; charset=utf-8", "/duplex.js"},
		{"/chat.css", "text/css; charset=utf-8", ""},
		{"/duplex.d.ts", "text/plain; charset=utf-8", ""},
	} {
		resp, err := e.client.Get(e.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != tc.ctype || h.Get("Cache-Control") != "no-cache" ||
			!strings.Contains(string(body), tc.contains) || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", tc.path, resp.StatusCode, h)
		}
		if tc.path == "/" {
			csp := h.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "connect-src 'self' ws: wss:") {
				t.Errorf("CSP %q", csp)
			}
		}
		// Revalidation by ETag.
		req, _ := http.NewRequest("GET", e.base+tc.path, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		resp, err = e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidation: %d", tc.path, resp.StatusCode)
		}
	}
	if st := e.call("GET", "/nope.js", "", nil, nil); st != 404 {
		t.Fatalf("unknown file: %d", st)
	}
}

// TestSSESlowConsumer: a stream whose client stops reading overflows its
// bounded queue and is ended by the slow-consumer policy, announced with
// a close event carrying 4009 once the client reads again.
func TestSSESlowConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("fills loopback socket buffers")
	}
	e := newEnv(t, envOpts{sendQueue: 4, writeTimeout: time.Minute,
		chat: chatConfigOpenChannels()})
	req, _ := http.NewRequest("GET", e.base+"/sse?access_token="+e.token("bob"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `data: {"type":"welcome"`) {
		t.Fatalf("first line %q %v", line, err)
	}
	var w frame
	json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &w)
	if st, fs := e.rpc("bob", w.Session, map[string]any{"type": "subscribe", "id": "s", "channel": "flood"}); st != 200 || len(fs) != 1 || fs[0].Type != "result" {
		t.Fatalf("subscribe: %d %+v", st, fs)
	}
	// bob reads nothing while up to 32 MiB are published: far more than
	// loopback socket buffers hold, so the queue overflows. Publishing
	// stops once it did: the stream's writer is blocked meanwhile, and
	// all 2000 publications under -race on a loaded machine can outlast
	// its write timeout, which ends the stream without the close event.
	data := map[string]string{"pad": strings.Repeat("x", 16000)}
	for i := 0; i < 2000; i++ {
		if st := e.call("POST", "/api/channels/flood/publish", "admin", map[string]any{"data": data}, nil); st != 200 {
			t.Fatalf("publish %d: %d", i, st)
		}
		if i%20 == 19 && !strings.Contains(e.get(t, "/metrics"), "duplex_queue_drops_total 0\n") {
			break
		}
	}
	done := make(chan string, 1)
	go func() {
		var last string
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				done <- last
				return
			}
			if strings.HasPrefix(l, "event: close") {
				l2, _ := rd.ReadString('\n')
				done <- l2
				return
			}
			last = l[:min(len(l), 40)]
		}
	}()
	select {
	case got := <-done:
		if !strings.Contains(got, `"code":4009`) {
			t.Fatalf("stream ended without the 4009 close event; last line %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stream not closed")
	}
}

// chatConfigOpenChannels lets clients subscribe and publish to channels
// without history (publishing costs no store write).
func chatConfigOpenChannels() chat.Config {
	return chat.Config{Namespaces: map[string]chat.Namespace{"": {Subscribe: true, Publish: true}}}
}
