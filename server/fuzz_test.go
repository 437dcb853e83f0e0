package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzAPIBodies posts arbitrary bodies to every JSON endpoint of a real
// server: the answer is never a server fault, and every refusal is a
// well-formed JSON error with a code.
func FuzzAPIBodies(f *testing.F) {
	e := newEnv(f, envOpts{dev: true})
	conv := e.direct("alice", "bob")
	paths := []string{
		"/api/conversations/direct",
		"/api/conversations/group",
		"/api/conversations/" + conv.ID + "/members",
		"/api/conversations/" + conv.ID + "/messages",
		"/api/channels/lobby/publish",
		"/api/dev/login",
	}
	for _, seed := range []string{`{"peer":"bob"}`, `{"title":"t","members":["a","b"]}`, `{"user":"carol"}`,
		`{"client_msg_id":"x","body":"hi","meta":{"a":1}}`, `{"data":[1,2]}`, `{"meta":"notobject","client_msg_id":"y"}`, `[]`, `null`, "{\"body\":\"\xff\"}"} {
		for i := range paths {
			f.Add(uint8(i), []byte(seed))
		}
	}
	token := e.token("alice")
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := paths[int(route)%len(paths)]
		r := httptest.NewRequest("POST", path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var eb apiErr
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("POST %s %q: %d with body %q", path, body, w.Code, w.Body)
			}
		}
	})
}

// FuzzFallbackBodies posts arbitrary bodies to /rpc and /poll: never a
// server fault; a 200 is {"frames":[...]} of well-formed frames, anything
// else the JSON error body. Polls are cut short by the request context.
// That context also bounds the store reads before the wait, and on a
// loaded machine it can end during them: the caller gave up, and the
// answer is then 503 unavailable, which is not a server fault. Only that
// 503, written after the context ended, is excused; an internal error
// never is.
func FuzzFallbackBodies(f *testing.F) {
	e := newEnv(f, envOpts{})
	conv := e.direct("alice", "bob")
	for _, seed := range []string{`{"type":"ping","id":"1"}`, `{"type":"send","id":"1","conv":"` + conv.ID + `","client_msg_id":"x","body":"hi"}`,
		`{"type":"sync","id":"2","conv":"` + conv.ID + `","after":-1}`, `{"type":"subscribe","id":"3","channel":"a"}`,
		`{"cursors":{"` + conv.ID + `":0},"channels":{"a":0},"wait_ms":10}`, `{"cursors":{"x":-5}}`, `{"wait_ms":1e99}`,
		`{"cursors":{"` + conv.ID + `":0},"reads":{"` + conv.ID + `":{"bob":-1,"alice":9}},"wait_ms":10}`, `{"reads":{"x":null}}`,
		`[]`, `null`, `{"type":"ping","id":"` + "\xff" + `"}`} {
		f.Add(false, []byte(seed))
		f.Add(true, []byte(seed))
	}
	token := e.token("alice")
	f.Fuzz(func(t *testing.T, poll bool, body []byte) {
		path := "/rpc"
		if poll {
			path = "/poll"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		r := httptest.NewRequestWithContext(ctx, "POST", path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := &gaveUpRecorder{ResponseRecorder: httptest.NewRecorder(), ctx: ctx}
		e.srv.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusServiceUnavailable && w.gaveUp:
			var eb apiErr
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code != "unavailable" {
				t.Fatalf("POST %s %q: %d after the request context ended, with body %q", path, body, w.Code, w.Body)
			}
		case w.Code >= 500:
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		case w.Code >= 400:
			var eb apiErr
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("POST %s %q: %d with body %q", path, body, w.Code, w.Body)
			}
		default:
			var out struct{ Frames []frame }
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Frames == nil {
				t.Fatalf("POST %s %q: %d with body %q", path, body, w.Code, w.Body)
			}
			for _, fr := range out.Frames {
				if fr.Type == "" {
					t.Fatalf("POST %s %q: frame without type in %q", path, body, w.Body)
				}
			}
		}
	})
}

// gaveUpRecorder records whether the request's context had already ended
// when the handler wrote its status: the client had given up by then.
type gaveUpRecorder struct {
	*httptest.ResponseRecorder
	ctx           context.Context
	wrote, gaveUp bool
}

func (g *gaveUpRecorder) WriteHeader(code int) {
	if !g.wrote {
		g.wrote, g.gaveUp = true, g.ctx.Err() != nil
	}
	g.ResponseRecorder.WriteHeader(code)
}

// Unwrap lets http.NewResponseController reach the recorder.
func (g *gaveUpRecorder) Unwrap() http.ResponseWriter { return g.ResponseRecorder }
