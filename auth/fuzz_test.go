package auth

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// FuzzAuthenticate feeds arbitrary Authorization headers and query tokens:
// Authenticate must never panic, and nothing but a token signed with the
// secret (or the admin key) may authenticate.
func FuzzAuthenticate(f *testing.F) {
	good, err := Mint(testSecret, "alice", time.Hour, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer "+good, "")
	f.Add("", good)
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "")
	f.Add("bearer  ", "a.b.c")
	f.Add("Basic Zm9vOmJhcg==", "")
	a, err := New(Config{Secret: testSecret, AdminKey: "the-admin-key"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest("GET", "/ws?access_token="+url.QueryEscape(query), nil)
		r.Header.Set("Authorization", header)
		p, err := a.Authenticate(r)
		if err != nil {
			return
		}
		tok := bearer(header)
		if tok == "" {
			tok = query
		}
		if p.Admin {
			if tok != "the-admin-key" {
				t.Fatalf("admin from %q", tok)
			}
			return
		}
		if tok != good {
			// Another valid token is possible only by re-encoding good's
			// parts; its user must still be alice.
			if p.UserID != "alice" {
				t.Fatalf("authenticated %q from %q", p.UserID, tok)
			}
		}
	})
}
