package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
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
