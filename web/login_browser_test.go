package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/internal/testserver"
)

// expiredToken is a token for user that expired an hour ago.
func expiredToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.Mint(testserver.Secret, user, time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenLogin: without dev mode the page asks for a token. An expired
// one brings the login form back saying why (the server refuses it on every
// transport); a valid one logs in.
func TestTokenLogin(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	p := newUser(t, "alice").open(pageURL(t, env), phoneW, phoneH)
	p.waitFor("the token form", `!document.getElementById("login").hidden && !document.getElementById("login-token").hidden && document.getElementById("login-name").hidden`)
	submit := chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`))
	p.do("log in with an expired token", chromedp.SetValue(chromedp.ID("login-token"), expiredToken(t, "alice")), submit)
	p.waitFor("the login form again, saying why", `!document.getElementById("login").hidden && document.getElementById("login-error").textContent === "Your session has ended: log in again."`)
	p.screenshot("login-session-ended-phone")
	p.do("log in with a valid token", chromedp.SetValue(chromedp.ID("login-token"), env.Token("alice")), submit)
	p.waitConnected("")
	var me string
	p.eval(`document.getElementById("me-name").textContent`, &me)
	if me != "alice" {
		t.Errorf("logged in as %q, want alice", me)
	}
}

// TestDevTokenRenewed: in dev mode a page whose token has expired (a tab
// left open for days) logs in again by itself, as the same user.
func TestDevTokenRenewed(t *testing.T) {
	env := chatServer(t, nil)
	p := newUser(t, "alice").open(pageURL(t, env), desktopW, desktopH)
	p.login()
	expired := expiredToken(t, "alice")
	p.eval(fmt.Sprintf(`(sessionStorage.setItem("duplex.token", %q), 1)`, expired), new(int))
	p.do("reload", chromedp.Reload())
	p.waitConnected("")
	var state struct {
		Me    string `json:"me"`
		Token string `json:"token"`
		Login bool   `json:"login"`
	}
	p.eval(`({me: document.getElementById("me-name").textContent, token: sessionStorage.getItem("duplex.token"),
		login: !document.getElementById("login").hidden})`, &state)
	if state.Me != "alice" || state.Token == expired || state.Token == "" || state.Login {
		t.Errorf("after renewal: user %q, token renewed %v, login form shown %v; want alice, renewed, no form",
			state.Me, state.Token != expired && state.Token != "", state.Login)
	}
}
