package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/protocol"
)

func chatWithConns(n int) chat.Config { return chat.Config{MaxConnsPerUser: n} }

type wireConv struct {
	ID      string   `json:"id"`
	Kind    string   `json:"kind"`
	Title   string   `json:"title"`
	Role    string   `json:"role"`
	Members []string `json:"members"`
	LastSeq int64    `json:"last_seq"`
	Unread  int64    `json:"unread"`
	Reads   map[string]int64
}

type convResp struct{ Conversation wireConv }

type msgResp struct{ Message wireMsg }

// direct creates (or finds) the direct conversation of a and b.
func (e *testEnv) direct(a, b string) wireConv {
	e.t.Helper()
	var r convResp
	if st := e.call("POST", "/api/conversations/direct", a, map[string]string{"peer": b}, &r); st != 200 || r.Conversation.ID == "" {
		e.t.Fatalf("create direct %s-%s: %d %+v", a, b, st, r)
	}
	return r.Conversation
}

type wireMsg struct {
	Conv        string `json:"conv"`
	Seq         int64  `json:"seq"`
	Sender      string `json:"sender"`
	ClientMsgID string `json:"client_msg_id"`
	Body        string `json:"body"`
	Meta        map[string]any
}

func TestAPIHappyPaths(t *testing.T) {
	e := newEnv(t, envOpts{})

	direct := e.direct("alice", "bob")
	if direct.Kind != "direct" || len(direct.Members) != 2 {
		t.Fatalf("direct: %+v", direct)
	}
	again := e.direct("bob", "alice")
	if again.ID != direct.ID {
		t.Fatalf("direct conversation not reused: %s vs %s", again.ID, direct.ID)
	}

	var gr convResp
	if st := e.call("POST", "/api/conversations/group", "alice", map[string]any{"title": "team", "members": []string{"bob", "carol"}}, &gr); st != 201 {
		t.Fatalf("group: %d", st)
	}
	group := gr.Conversation
	if group.Kind != "group" || group.Title != "team" || group.Role != "owner" || len(group.Members) != 3 {
		t.Fatalf("group: %+v", group)
	}
	if st := e.call("POST", "/api/conversations/"+group.ID+"/members", "alice", map[string]string{"user": "dave"}, nil); st != 204 {
		t.Fatalf("add member: %d", st)
	}
	if st := e.call("DELETE", "/api/conversations/"+group.ID+"/members/carol", "alice", nil, nil); st != 204 {
		t.Fatalf("remove member: %d", st)
	}

	for i := 1; i <= 5; i++ {
		var r msgResp
		st := e.call("POST", "/api/conversations/"+group.ID+"/messages", "dave",
			map[string]any{"client_msg_id": fmt.Sprint("c", i), "body": fmt.Sprint("hi ", i), "meta": map[string]int{"n": i}}, &r)
		m := r.Message
		if st != 200 || m.Seq != int64(i) || m.Sender != "dave" {
			t.Fatalf("send %d: %d %+v", i, st, m)
		}
	}
	var hist struct{ Messages []wireMsg }
	if st := e.call("GET", "/api/conversations/"+group.ID+"/messages?before=5&limit=2", "bob", nil, &hist); st != 200 {
		t.Fatalf("history: %d", st)
	}
	if len(hist.Messages) != 2 || hist.Messages[0].Seq != 4 || hist.Messages[1].Seq != 3 {
		t.Fatalf("history: %+v", hist.Messages)
	}

	var list struct{ Conversations []wireConv }
	if st := e.call("GET", "/api/conversations", "bob", nil, &list); st != 200 || len(list.Conversations) != 2 {
		t.Fatalf("bob's conversations: %d %+v", st, list)
	}
	for _, c := range list.Conversations {
		if c.ID == group.ID && (c.LastSeq != 5 || c.Unread != 5) {
			t.Fatalf("group as bob sees it: %+v", c)
		}
		// Every member's read position, and only members'.
		if _, left := c.Reads["carol"]; c.ID == group.ID && (len(c.Reads) != 3 || left) {
			t.Fatalf("group reads as bob sees them: %v, want alice, bob and dave", c.Reads)
		}
	}

	var pub struct {
		Channel string
		Offset  int64
	}
	if st := e.call("POST", "/api/channels/lobby/publish", "admin", map[string]any{"data": map[string]string{"x": "y"}}, &pub); st != 200 || pub.Offset != 1 || pub.Channel != "lobby" {
		t.Fatalf("publish: %d %+v", st, pub)
	}

	bob, _ := e.dial("bob")
	_ = bob
	var pres struct {
		Presence []struct {
			User   string
			Online bool
		}
	}
	if st := e.call("GET", "/api/presence?users=bob,alice", "alice", nil, &pres); st != 200 || len(pres.Presence) != 2 {
		t.Fatalf("presence: %d %+v", st, pres)
	}
	for _, p := range pres.Presence {
		if p.Online != (p.User == "bob") {
			t.Fatalf("presence: %+v", pres.Presence)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	var gr convResp
	e.call("POST", "/api/conversations/group", "alice", map[string]any{"title": "t", "members": []string{"bob"}}, &gr)
	g := gr.Conversation
	big := strings.Repeat("x", DefaultMaxBodyBytes+1)
	tests := []struct {
		name   string
		method string
		path   string
		user   string
		body   any
		status int
		code   protocol.Code
	}{
		{"no token", "GET", "/api/conversations", "", nil, 401, protocol.CodeUnauthorized},
		{"not json", "POST", "/api/conversations/direct", "alice", []byte("{"), 400, protocol.CodeInvalidJSON},
		{"empty body", "POST", "/api/conversations/direct", "alice", nil, 400, protocol.CodeInvalidJSON},
		{"unknown field", "POST", "/api/conversations/direct", "alice", map[string]string{"per": "bob"}, 400, protocol.CodeBadRequest},
		{"wrong type", "POST", "/api/conversations/direct", "alice", map[string]int{"peer": 1}, 400, protocol.CodeBadRequest},
		{"missing peer", "POST", "/api/conversations/direct", "alice", map[string]string{}, 400, protocol.CodeMissingField},
		{"body too large", "POST", "/api/conversations/direct", "alice", map[string]string{"peer": big}, 413, protocol.CodeTooLarge},
		{"non-member history", "GET", "/api/conversations/" + g.ID + "/messages", "mallory", nil, 404, protocol.CodeNotFound},
		{"unknown conversation", "POST", "/api/conversations/nope/messages", "alice", map[string]string{"client_msg_id": "x", "body": "b"}, 404, protocol.CodeNotFound},
		{"bad before", "GET", "/api/conversations/" + g.ID + "/messages?before=x", "alice", nil, 400, protocol.CodeBadRequest},
		{"member adds member", "POST", "/api/conversations/" + g.ID + "/members", "bob", map[string]string{"user": "eve"}, 403, protocol.CodeForbidden},
		{"missing client_msg_id", "POST", "/api/conversations/" + g.ID + "/messages", "alice", map[string]string{"body": "b"}, 400, protocol.CodeMissingField},
		{"presence without users", "GET", "/api/presence", "alice", nil, 400, protocol.CodeMissingField},
		{"unknown channel namespace", "POST", "/api/channels/nowhere:x/publish", "admin", map[string]any{"data": 1}, 404, protocol.CodeNotFound},
		{"unknown route", "GET", "/api/nothing", "alice", nil, 404, protocol.CodeNotFound},
		{"dev login off", "POST", "/api/dev/login", "", map[string]string{"user": "alice"}, 404, protocol.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out apiErr
			st := e.call(tc.method, tc.path, tc.user, tc.body, &out)
			if st != tc.status || out.Error.Code != string(tc.code) || out.Error.Message == "" {
				t.Fatalf("got %d %+v; want %d %s", st, out, tc.status, tc.code)
			}
		})
	}
}

func TestDevLogin(t *testing.T) {
	e := newEnv(t, envOpts{dev: true})
	var out struct{ User, Token string }
	if st := e.call("POST", "/api/dev/login", "", map[string]string{"user": "zoe"}, &out); st != 200 || out.User != "zoe" || out.Token == "" {
		t.Fatalf("dev login: %d %+v", st, out)
	}
	req, _ := http.NewRequest("GET", e.base+"/api/conversations", nil)
	req.Header.Set("Authorization", "Bearer "+out.Token)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("minted token refused: %d", resp.StatusCode)
	}
	var bad apiErr
	if st := e.call("POST", "/api/dev/login", "", map[string]string{"user": "has space"}, &bad); st != 400 {
		t.Fatalf("bad name: %d %+v", st, bad)
	}
	if info := e.get(t, "/api/info"); !strings.Contains(info, `"dev":true`) {
		t.Fatalf("info in dev mode: %s", info)
	}
}

func (e *testEnv) get(t *testing.T, path string) string {
	t.Helper()
	st, body := e.getStatus(t, path)
	if st != 200 {
		t.Fatalf("GET %s: %d %s", path, st, body)
	}
	return body
}

func (e *testEnv) getStatus(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := e.client.Get(e.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
