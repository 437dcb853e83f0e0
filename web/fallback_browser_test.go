package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/duplexhq/duplex/server"
)

// TestFallbackTransports: with WebSocket refused by the server, the chat
// works over Server-Sent Events, and with only long-polling served, over
// long-polling; the banner says which.
func TestFallbackTransports(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transports []string // what the server serves
		query      string   // page URL query
		want       string   // the transport the page ends up on
		banner     string
		// typing: whether typing indicators must get through. A long-poll
		// client is not listening between two polls, and typing is
		// ephemeral: the server does not replay it (fallback.md).
		// Receipts always get through: polls carry the read positions
		// the client holds and get the receipts it missed.
		typing bool
		// fallbacks: the transports the page may reconnect on after a
		// restart.
		fallbacks []string
	}{
		// The page is told to try WebSocket first anyway, as a page that
		// does not know what the server serves would: the real server
		// refuses it and the client falls back by itself.
		{"sse", []string{server.TransportSSE, server.TransportLongPoll}, "?transports=websocket,sse,longpoll", "sse",
			"Connected via Server-Sent Events", true, []string{"sse", "longpoll"}},
		// The page takes the transports from GET /api/info.
		{"longpoll", []string{server.TransportLongPoll}, "", "longpoll", "Connected via long-polling", false, []string{"longpoll"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := chatServer(t, func(c *server.Config) { c.Transports = tc.transports })
			for _, path := range []string{"/ws", "/sse"} {
				if path == "/sse" && tc.want == "sse" {
					continue
				}
				res, err := (&http.Client{Timeout: 10 * time.Second}).Get(env.URL() + path)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound {
					t.Fatalf("GET %s: %s, want 404 from a server serving only %v", path, res.Status, tc.transports)
				}
			}

			_, _, a, b, conv := pair(t, pageURL(t, env)+tc.query, desktopW, desktopH)
			for _, p := range []*page{a, b} {
				p.waitConnected(tc.want)
				var banner string
				p.eval(`document.getElementById("banner").textContent`, &banner)
				if banner != tc.banner {
					t.Errorf("%s's banner says %q, want %q", p.user.name, banner, tc.banner)
				}
			}
			a.write("hello over " + tc.name)
			b.waitMessage("hello over " + tc.name)
			a.waitFor("seen by bob", seenByJS+` === "bob"`)
			if tc.typing {
				b.do("type", sendKeys("composer-text", "typing over "+tc.name))
				a.waitFor("bob is typing", typingJS+` === "bob is typing…"`)
				b.do("press Enter", pressEnter)
			} else {
				b.write("typing over " + tc.name)
			}
			a.waitMessage("typing over " + tc.name)
			noTyping(t, a)
			b.waitFor("seen by alice", seenByJS+` === "alice"`)
			// A page loaded after the read shows it too, from the
			// welcome's read positions.
			b.do("reload", chromedp.Reload())
			b.waitConnected(tc.want)
			b.openChat(conv)
			b.waitFor("seen by alice after a reload", seenByJS+` === "alice"`)
			a.screenshot("fallback-" + tc.name)

			// A restart: the fallback reconnects by itself, sends what was
			// written meanwhile and resumes the other side.
			if err := env.Stop(); err != nil {
				t.Fatalf("stop the server: %v", err)
			}
			a.waitFor("the reconnecting banner", `document.getElementById("banner").dataset.state !== "connected"`)
			a.write("written while down over " + tc.name)
			if err := env.Start(); err != nil {
				t.Fatalf("restart the server: %v", err)
			}
			// Each reconnect tries the transports in order, and the server
			// may come back between a page's SSE attempt and its long-poll
			// one: it then stays on long-polling until its next upgrade
			// probe (upgradeProbeMs, 60 s; client-js.md). Which fallback it
			// lands on is not the point here; that it reconnects and
			// resumes is.
			a.waitConnectedOn(tc.fallbacks)
			b.waitConnectedOn(tc.fallbacks)
			b.waitMessage("written while down over " + tc.name)
			a.waitMessage("written while down over " + tc.name)

			want := stored(t, env, "alice", conv)
			if len(want) != 3 {
				t.Fatalf("store holds %d messages, want 3", len(want))
			}
			sameAsStore(t, a, want)
			sameAsStore(t, b, want)
		})
	}
}
