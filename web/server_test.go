package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/duplexhq/duplex/internal/testserver"
	"github.com/duplexhq/duplex/server"
)

// pageURL is where env serves the chat page.
func pageURL(t *testing.T, env *testserver.Env) string { return env.URL() + "/" }

// chatServer starts a real duplex server in development mode (log in by
// name), configured further by configure when it is not nil.
func chatServer(t *testing.T, configure func(*server.Config)) *testserver.Env {
	t.Helper()
	return testserver.Start(t, testserver.Options{Dev: true, Configure: configure})
}

// storedMessage is a message as the server's HTTP API returns it.
type storedMessage struct {
	Seq         int64  `json:"seq"`
	Sender      string `json:"sender"`
	ClientMsgID string `json:"client_msg_id"`
	Body        string `json:"body"`
}

// stored returns every message of conv, oldest first, read as user through
// the HTTP API: the store's truth to compare the pages against.
func stored(t *testing.T, env *testserver.Env, user, conv string) []storedMessage {
	t.Helper()
	var body struct {
		Messages []storedMessage `json:"messages"`
	}
	apiCall(t, env, user, "GET", fmt.Sprintf("/api/conversations/%s/messages?limit=200", conv), nil, &body)
	slices.Reverse(body.Messages)
	return body.Messages
}

// sameAsStore checks that the page lists exactly the stored messages of
// its open conversation: same seqs, senders, bodies and client message ids,
// in seq order, nothing pending, nothing missing, nothing twice.
func sameAsStore(t *testing.T, p *page, want []storedMessage) {
	t.Helper()
	got := p.messages()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.Seq == fmt.Sprint(w.Seq) && g.Sender == w.Sender && g.Body == w.Body && g.ID == w.ClientMsgID && !g.Pending
	}
	if !ok {
		var gs, ws []string
		for _, g := range got {
			gs = append(gs, fmt.Sprintf("#%s %s: %q pending=%v", g.Seq, g.Sender, g.Body, g.Pending))
		}
		for _, w := range want {
			ws = append(ws, fmt.Sprintf("#%d %s: %q", w.Seq, w.Sender, w.Body))
		}
		t.Errorf("%s's page does not match the store:\npage:  %q\nstore: %q", p.user.name, gs, ws)
	}
}

// apiCall makes an HTTP API request as user with body as JSON (none if
// nil), fails the test unless it succeeds, and decodes the answer into out
// if not nil.
func apiCall(t *testing.T, env *testserver.Env, user, method, path string, body, out any) {
	t.Helper()
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, env.URL()+path, &rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.Token(user))
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s", method, path, res.Status)
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
