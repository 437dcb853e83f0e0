package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

func TestWSRefusals(t *testing.T) {
	e := newEnv(t, envOpts{origins: []string{"https://app.example.com"}})
	expired, err := auth.Mint(testSecret, "alice", time.Second, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := auth.Mint([]byte("another-secret-another-secret-another"), "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := e.token("alice")
	tests := []struct {
		name     string
		query    string
		header   http.Header
		protos   []string
		status   int
		code     protocol.Code
		accepted bool
		// closed: the upgrade is accepted and closed at once with this
		// code (refused credentials: a browser sees only the close code).
		closed int
	}{
		{name: "no token", closed: protocol.CloseAuthFailed},
		{name: "garbage token", header: http.Header{"Authorization": {"Bearer abc.def.ghi"}}, closed: protocol.CloseAuthFailed},
		{name: "wrong secret", header: http.Header{"Authorization": {"Bearer " + wrongKey}}, closed: protocol.CloseAuthFailed},
		{name: "expired", header: http.Header{"Authorization": {"Bearer " + expired}}, closed: protocol.CloseTokenExpired},
		{name: "expired in query", query: "?access_token=" + expired, closed: protocol.CloseTokenExpired},
		{name: "bad token, foreign origin", header: http.Header{"Authorization": {"Bearer abc.def.ghi"}, "Origin": {"https://evil.example.net"}}, status: 403},
		{name: "admin without user", header: http.Header{auth.AdminKeyHeader: {testAdminKey}}, status: 400, code: protocol.CodeBadRequest},
		{name: "foreign origin", header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://evil.example.net"}}, status: 403},
		{name: "other subprotocol only", header: http.Header{"Authorization": {"Bearer " + good}}, protos: []string{"chat.v2"}, status: 400, code: protocol.CodeBadRequest},
		{name: "allowed origin", header: http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://app.example.com"}}, accepted: true},
		{name: "token in query", query: "?access_token=" + good, accepted: true},
		{name: "no subprotocol defaults to duplex.v1", header: http.Header{"Authorization": {"Bearer " + good}}, protos: []string{}, accepted: true},
		{name: "admin acting as a user", header: http.Header{auth.AdminKeyHeader: {testAdminKey}, auth.ActAsHeader: {"alice"}}, accepted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			protos := tc.protos
			if protos == nil {
				protos = []string{protocol.Subprotocol}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := ws.Dial(ctx, e.wsBase+"/ws"+tc.query, &ws.DialOptions{Header: tc.header, Subprotocols: protos})
			if tc.closed != 0 {
				if err != nil {
					t.Fatalf("refused before the upgrade: %v", err)
				}
				defer c.CloseNow()
				_, _, err := c.Read(ctx)
				var ce *ws.CloseError
				if !errors.As(err, &ce) || int(ce.Code) != tc.closed || ce.Reason == "" {
					t.Fatalf("read: %v, want a close with %d and a reason", err, tc.closed)
				}
				return
			}
			if tc.accepted {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				tc := startClient(t, c, "alice")
				if w := tc.waitType("welcome"); w.User != "alice" {
					t.Fatalf("welcome for %q", w.User)
				}
				c.Close(ws.StatusNormalClosure, "")
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("accepted")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("resp = %v, err = %v; want status %d", resp, err, tc.status)
			}
			if tc.code != "" {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), `"code":"`+string(tc.code)+`"`) {
					t.Fatalf("body %q lacks code %s", body, tc.code)
				}
			}
		})
	}
}

// TestWSRefusalNotUpgrade: a plain GET of /ws with refused credentials is
// answered like the HTTP API, 401 with the JSON error body.
func TestWSRefusalNotUpgrade(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, err := e.client.Get(e.base + "/ws?access_token=garbage")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"code":"unauthorized"`) {
		t.Fatalf("%d %q, want 401 unauthorized", resp.StatusCode, body)
	}
}

func TestWSMessaging(t *testing.T) {
	e := newEnv(t, envOpts{})
	conv := e.direct("alice", "bob")
	alice, w := e.dial("alice")
	if len(w.Conversations) != 1 || w.Conversations[0].ID != conv.ID {
		t.Fatalf("alice's welcome conversations: %+v", w.Conversations)
	}
	bob, _ := e.dial("bob")

	id := alice.request(map[string]any{"type": "send", "conv": conv.ID, "client_msg_id": "m1", "body": "hello bob"})
	ack := alice.reply(id)
	if ack.Type != "ack" || ack.Seq != 1 || ack.ClientMsgID != "m1" {
		t.Fatalf("ack: %+v", ack)
	}
	m := bob.waitType("message")
	if m.Conv != conv.ID || m.Seq != 1 || m.Sender != "alice" || m.Body != "hello bob" {
		t.Fatalf("bob got %+v", m)
	}
	// The same client_msg_id again is acknowledged as the same message.
	id = alice.request(map[string]any{"type": "send", "conv": conv.ID, "client_msg_id": "m1", "body": "hello bob"})
	if dup := alice.reply(id); dup.Type != "ack" || dup.Seq != 1 || !dup.Duplicate {
		t.Fatalf("duplicate ack: %+v", dup)
	}
	// A binary frame is not duplex.v1: closed with 1003.
	if err := bob.c.Write(context.Background(), ws.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if code := bob.closed(); code != ws.StatusUnsupportedData {
		t.Fatalf("binary frame: close code %d, want 1003", code)
	}
	// Bad JSON is an error frame, and the connection stays usable.
	if err := alice.c.Write(context.Background(), ws.MessageText, []byte("{nope")); err != nil {
		t.Fatal(err)
	}
	if f := alice.waitType("error"); f.Code != string(protocol.CodeInvalidJSON) {
		t.Fatalf("bad JSON: %+v", f)
	}
	id = alice.request(map[string]any{"type": "ping"})
	if f := alice.reply(id); f.Type != "result" {
		t.Fatalf("ping: %+v", f)
	}
}

func TestWSConnectionLimit(t *testing.T) {
	e := newEnv(t, envOpts{chat: chatWithConns(2)})
	e.dial("alice")
	e.dial("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, e.wsBase+"/ws", e.dialOpts("alice"))
	if err != nil {
		t.Fatal(err)
	}
	tc := startClient(t, c, "alice")
	if code := tc.closed(); code != protocol.CloseTooManyConns {
		t.Fatalf("third connection closed with %d, want %d", code, protocol.CloseTooManyConns)
	}
}

func TestWSCompression(t *testing.T) {
	e := newEnv(t, envOpts{compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}})
	conv := e.direct("alice", "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := e.dialOpts("alice")
	opts.Compression = ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}
	c, _, err := ws.Dial(ctx, e.wsBase+"/ws", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Compressed() {
		t.Fatal("permessage-deflate not negotiated")
	}
	alice := startClient(t, c, "alice")
	alice.waitType("welcome")
	body := strings.Repeat("compressible ", 100)
	id := alice.request(map[string]any{"type": "send", "conv": conv.ID, "client_msg_id": "z1", "body": body})
	if ack := alice.reply(id); ack.Type != "ack" {
		t.Fatalf("ack: %+v", ack)
	}
	// An uncompressed client is served too.
	bob, _ := e.dial("bob")
	if bob.c.Compressed() {
		t.Fatal("compression negotiated without an offer")
	}
	id = bob.request(map[string]any{"type": "sync", "conv": conv.ID})
	if m := bob.waitType("message"); m.Body != body {
		t.Fatalf("bob synced %q", m.Body)
	}
	bob.reply(id)
}

func TestWSTokenExpiryClosesSession(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok, err := auth.Mint(testSecret, "alice", 2*time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, e.wsBase+"/ws?access_token="+tok, &ws.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	alice := startClient(t, c, "alice")
	alice.waitType("welcome")
	if code := alice.closed(); code != protocol.CloseTokenExpired {
		t.Fatalf("close code %d when the token expired, want %d", code, protocol.CloseTokenExpired)
	}
}

// TestWSDeadPeer checks the heartbeat: a client that never reads never
// answers pings, and the server drops it.
func TestWSDeadPeer(t *testing.T) {
	e := newEnv(t, envOpts{pingInterval: 100 * time.Millisecond, pongTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, e.wsBase+"/ws", e.dialOpts("alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitMetric := func(line string) {
		for !strings.Contains(e.get(t, "/metrics"), line+"\n") {
			select {
			case <-ctx.Done():
				t.Fatalf("metrics never showed %q", line)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitMetric("duplex_connections 1")
	// It never reads, so it never answers a ping: the server drops it.
	waitMetric("duplex_connections 0")
}
