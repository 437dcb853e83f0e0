package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/client"
	"github.com/duplexhq/duplex/internal/testserver"
)

// term drives `duplex connect` through pipes, as a person at a terminal
// would: lines in, lines out.
type term struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan string
	done  chan error
	seen  []string
	// pending holds lines read but not matched yet: events and replies
	// race, so expect matches in any order.
	pending []string
}

func startTerm(t *testing.T, args ...string) *term {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	tm := &term{t: t, in: inW, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		err := connect(context.Background(), args, inR, outW, io.Discard)
		outW.Close()
		tm.done <- err
	}()
	go func() {
		defer close(tm.lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, maxLine)
		for sc.Scan() {
			tm.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		for range tm.lines { // let the command finish writing
		}
	})
	return tm
}

func (tm *term) type_(line string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.in, line+"\n"); err != nil {
		tm.t.Fatalf("typing %q: %v", line, err)
	}
}

// expect waits for an output line matching re and returns its submatches.
func (tm *term) expect(re string) []string {
	tm.t.Helper()
	rx := regexp.MustCompile(re)
	for i, l := range tm.pending {
		if m := rx.FindStringSubmatch(l); m != nil {
			tm.pending = append(tm.pending[:i], tm.pending[i+1:]...)
			return m
		}
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-tm.lines:
			if !ok {
				tm.t.Fatalf("output ended waiting for %q; saw:\n%s", re, strings.Join(tm.seen, "\n"))
			}
			tm.seen = append(tm.seen, l)
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
			tm.pending = append(tm.pending, l)
		case <-timeout:
			tm.t.Fatalf("no line matching %q; saw:\n%s", re, strings.Join(tm.seen, "\n"))
		}
	}
}

// next returns the next line not read yet, for output whose order
// matters.
func (tm *term) next() string {
	tm.t.Helper()
	select {
	case l, ok := <-tm.lines:
		if !ok {
			tm.t.Fatal("output ended")
		}
		tm.seen = append(tm.seen, l)
		return l
	case <-time.After(15 * time.Second):
		tm.t.Fatalf("no more output; saw:\n%s", strings.Join(tm.seen, "\n"))
		return ""
	}
}

// wait waits for connect to return.
func (tm *term) wait() error {
	tm.t.Helper()
	go func() {
		for l := range tm.lines {
			tm.seen = append(tm.seen, l)
		}
	}()
	select {
	case err := <-tm.done:
		return err
	case <-time.After(15 * time.Second):
		tm.t.Fatal("connect did not return")
		return nil
	}
}

// peer is a second user on the real client, to check what the terminal
// sends and to send it events.
type peer struct {
	c      *client.Client
	msgs   chan string
	cancel context.CancelFunc
	done   chan struct{}
}

func startPeer(t *testing.T, env *testserver.Env, user string) *peer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{c: client.New(client.Options{URL: env.WSURL(), Token: env.Token(user)}), msgs: make(chan string, 100),
		cancel: cancel, done: make(chan struct{})}
	go func() { defer close(p.done); p.c.Run(ctx) }()
	go func() {
		for ev := range p.c.Events() {
			if ev.Message != nil {
				p.msgs <- ev.Message.Body
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	for p.c.State() != client.StateConnected {
		time.Sleep(5 * time.Millisecond)
	}
	return p
}

func TestConnectSession(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	bob := startPeer(t, env, "bob")
	tm := startTerm(t, env.URL(), "--user", "alice", "--jwt-secret", string(testserver.Secret))
	tm.expect(`^\* welcome alice: 0 conversations`)

	conv := tm.typeExpect("/direct bob", `^\* opened (c_\w+) \(direct: alice, bob\)`)[1]
	tm.typeExpect("hello bob", `^\* sent `+conv+` #1$`)
	select {
	case body := <-bob.msgs:
		if body != "hello bob" {
			t.Fatalf("bob got %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bob got nothing")
	}
	if _, err := bob.c.Send(context.Background(), conv, "", "hi alice", nil); err != nil {
		t.Fatal(err)
	}
	tm.expect(`^\[` + conv + ` #2\] bob: hi alice$`)

	tm.typeExpect("/history "+conv, `^\* history of `+conv+`: 2 messages$`)
	for _, want := range []string{"[" + conv + " #1] alice: hello bob", "[" + conv + " #2] bob: hi alice"} {
		if got := tm.next(); got != want { // oldest first
			t.Fatalf("history line %q, want %q", got, want)
		}
	}
	tm.typeExpect("/history "+conv+" 2", `^\* history of `+conv+`: 1 messages$`)
	tm.typeExpect("/sync "+conv+" 1", `^\* synced `+conv+` after #1$`)

	tm.typeExpect("/sub news", `^\* subscribed to news$`)
	tm.typeExpect(`/pub news {"n": 1}`, `^\* published to news @1$`)
	tm.expect(`^\[news @1\] \{"n": ?1\}$`)
	if _, err := bob.c.Publish(context.Background(), "news", json.RawMessage(`{"from":"bob"}`)); err != nil {
		t.Fatal(err)
	}
	tm.expect(`^\[news @2\] \{"from":"bob"\}$`)
	tm.typeExpect(`/pub news {not json`, `^! /pub: not valid JSON`)

	grp := tm.typeExpect("/group the team bob,carol", `^\* opened (c_\w+) \(group "the team": alice, bob, carol\)`)[1]
	tm.typeExpect("to the group", `^\* sent `+grp+` #1$`)
	tm.typeExpect("/open "+conv, `^\* open `+conv+`$`)
	tm.typeExpect("back to bob", `^\* sent `+conv+` #3$`)

	// Errors from the server and from the command line are shown, and the
	// session goes on.
	tm.typeExpect("/open c_nope", `^\* open c_nope$`)
	tm.typeExpect("lost", `^! send: not_found: `)
	tm.typeExpect("/history c_nope", `^! /history: not_found: `)
	tm.typeExpect("/sync", `^! usage: /sync CONV \[AFTER\]$`)
	tm.typeExpect("/history "+conv+" -3", `^! /history: BEFORE must be a non-negative integer`)
	tm.typeExpect("/frobnicate", `^! unknown command /frobnicate`)
	tm.typeExpect("/convs", `^\* 2 conversations$`)
	tm.typeExpect("/help", `^commands:$`)

	tm.type_("/quit")
	if err := tm.wait(); err != nil {
		t.Fatalf("connect returned %v", err)
	}
}

func TestConnectRawMode(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	tm := startTerm(t, "--url", env.WSURL(), "--token", env.Token("alice"))
	tm.expect(`^\* welcome alice`)
	tm.typeExpect("/raw", `^\* raw mode on`)
	tm.expect(`^< \{"type":"welcome".*"user":"alice"`) // the raw connection's own welcome
	tm.typeExpect(`{"type":"ping","id":"p1"}`, `^< \{"type":"result","id":"p1"`)
	tm.typeExpect(`{"type":"create_direct","id":"d1","peer":"bob"}`, `^< \{"type":"result","id":"d1","data":\{"conversation":\{"id":"c_`)
	tm.typeExpect(`not json at all`, `^< \{"type":"error".*"code":"invalid_json"`)
	tm.typeExpect(`{"type":"warp","id":"w1"}`, `^< \{"type":"error".*"id":"w1"`)
	tm.typeExpect("/raw", `^\* raw mode off$`)
	// Back to commands on the resilient connection, which saw the
	// conversation created on the raw one.
	tm.typeExpect("/convs", `^\* 1 conversations$`)
	tm.type_("/raw")
	tm.expect(`^\* raw mode on`)
	tm.in.Close() // end of input in raw mode ends the session cleanly
	if err := tm.wait(); err != nil {
		t.Fatalf("connect returned %v", err)
	}
}

// TestConnectReconnects: the terminal rides out a server restart and sends
// again (the client resumes).
func TestConnectReconnects(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	tm := startTerm(t, env.URL(), "--token", env.Token("alice"))
	tm.expect(`^\* welcome alice`)
	conv := tm.typeExpect("/direct bob", `^\* opened (c_\w+)`)[1]
	tm.typeExpect("before", `^\* sent `+conv+` #1$`)
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	tm.expect(`^\* disconnected \(code 1001`)
	if err := env.Start(); err != nil {
		t.Fatal(err)
	}
	tm.expect(`^\* connected$`)
	tm.typeExpect("after", `^\* sent `+conv+` #2$`)
	tm.in.Close()
	if err := tm.wait(); err != nil {
		t.Fatal(err)
	}
}

func TestConnectToken(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	t.Run("env", func(t *testing.T) {
		old := getenv
		t.Cleanup(func() { getenv = old })
		tok := env.Token("dave")
		getenv = func(k string) string {
			if k == "DUPLEX_TOKEN" {
				return tok
			}
			return ""
		}
		tm := startTerm(t, env.WSURL())
		tm.expect(`^\* welcome dave:`)
		tm.type_("/quit")
		if err := tm.wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		tm := startTerm(t, env.WSURL(), "--token", "not-a-token")
		err := tm.wait()
		var want = "server closed the connection"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v, want %q", err, want)
		}
	})
	t.Run("none", func(t *testing.T) {
		err := connect(context.Background(), []string{env.WSURL()}, strings.NewReader(""), io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Fatalf("err %v, want usage", err)
		}
	})
}

func (tm *term) typeExpect(line, re string) []string {
	tm.t.Helper()
	tm.type_(line)
	return tm.expect(re)
}

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"ws://h:1/ws", "ws://h:1/ws", ""},
		{"http://h:1", "ws://h:1/ws", ""},
		{"https://h/", "wss://h/ws", ""},
		{"wss://h/custom", "wss://h/custom", ""},
		{"ftp://h", "", "scheme"},
		{"ws://", "", "no host"},
	} {
		got, err := normalizeURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
