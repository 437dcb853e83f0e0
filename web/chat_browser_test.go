package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/internal/testserver"
)

// typingJS reads the typing indicator under the message list.
const typingJS = `document.getElementById("typing").textContent`

// seenByJS is who the page says has seen the last of its user's messages.
const seenByJS = `[...document.querySelectorAll("#messages li.mine")].at(-1)?.dataset.seenBy ?? ""`

// noTyping checks that the page shows nobody typing.
func noTyping(t *testing.T, p *page) {
	t.Helper()
	var typing string
	p.eval(typingJS, &typing)
	if typing != "" {
		t.Errorf("%s's page still says %q", p.user.name, typing)
	}
}

// pair logs alice and bob in, each in a browser context of their own, and
// opens a direct conversation between them on both pages.
func pair(t *testing.T, url string, width, height int64) (alice, bob *user, a, b *page, conv string) {
	t.Helper()
	alice, bob = newUser(t, "alice"), newUser(t, "bob")
	a, b = alice.open(url, width, height), bob.open(url, width, height)
	a.login()
	b.login()
	conv = a.startChat("bob")
	b.openChat(conv) // bob learns of the conversation live
	online := fmt.Sprintf(`document.querySelector('#convs li[data-conv=%q] .dot.online')`, conv)
	a.waitFor("bob shown online", online)
	b.waitFor("alice shown online", online)
	return alice, bob, a, b, conv
}

// TestChatBothWays: two people chat through the page; each sees the other
// typing, the other's messages, and "seen by" on their own last message
// once the other has read it. Bob uses only the keyboard.
func TestChatBothWays(t *testing.T) {
	env := chatServer(t, nil)
	_, _, a, b, conv := pair(t, pageURL(t, env), desktopW, desktopH)

	// Alice types without sending: bob sees her typing.
	a.do("type", chromedp.SendKeys(chromedp.ID("composer-text"), "hello bob"))
	b.waitFor("alice is typing", typingJS+` === "alice is typing…"`)
	b.screenshot("chat-typing")
	a.do("press Enter", pressEnter)
	b.waitMessage("hello bob")
	noTyping(t, b) // her message ends her typing at once
	// Bob's page has the conversation open, so it reads it: alice sees that.
	a.waitFor("seen by bob", seenByJS+` === "bob"`)

	// Bob answers by keyboard only: from the conversation list, Tab leads
	// to the composer and Enter sends.
	// (Focused from script: a node found by the driver may be redrawn
	// away by the time it is focused.)
	convButton := fmt.Sprintf(`document.querySelector('#convs li[data-conv=%q] button')`, conv)
	b.eval(`(`+convButton+`.focus(), 1)`, new(int))
	// A message arriving redraws the list; the focus stays where it was.
	a.write("still there?")
	b.waitMessage("still there?")
	var kept bool
	b.eval(`document.activeElement === `+convButton, &kept)
	if !kept {
		t.Error("bob's page lost the keyboard focus on the conversation list when a message arrived")
	}
	for i := 0; ; i++ {
		var active string
		b.eval(`document.activeElement.id`, &active)
		if active == "composer-text" {
			break
		}
		if i == 6 {
			t.Fatalf("bob: 6 presses of Tab from the conversation list did not reach the composer (at %q)", active)
		}
		b.do("press Tab", chromedp.KeyEvent("\t"))
	}
	b.do("type and press Enter", chromedp.KeyEvent("hi alice, all good?"))
	a.waitFor("bob is typing", typingJS+` === "bob is typing…"`)
	b.do("press Enter", pressEnter)
	a.waitMessage("hi alice, all good?")
	b.waitFor("seen by alice", seenByJS+` === "alice"`)
	a.write("yes 👍 <b>not bold</b>")
	b.waitMessage("yes 👍 <b>not bold</b>")
	a.waitFor("seen by bob again", seenByJS+` === "bob"`)
	a.screenshot("chat-desktop-alice")
	b.screenshot("chat-desktop-bob")

	want := stored(t, env, "alice", conv)
	if len(want) != 4 {
		t.Fatalf("store holds %d messages, want 4", len(want))
	}
	sameAsStore(t, a, want)
	sameAsStore(t, b, want)
	for _, p := range []*page{a, b} {
		for _, m := range p.messages() {
			if m.Mine != (m.Sender == p.user.name) {
				t.Errorf("%s's page: message %q from %s shown as mine=%v", p.user.name, m.Body, m.Sender, m.Mine)
			}
		}
	}

	// A message the server refuses (over the 16 KiB body limit: 9000
	// two-byte characters fit the composer's 16000 characters) stays in
	// the list saying why, instead of pending for ever.
	a.eval(`(document.getElementById("composer-text").value = "é".repeat(9000), 1)`, new(int))
	a.do("send the oversized message", chromedp.Focus(chromedp.ID("composer-text")), pressEnter)
	a.waitFor("the refusal", messagesJS+`.some((m) => !m.pending && m.meta.startsWith("not sent:") && m.body.length === 9000)`)
	a.screenshot("chat-not-sent")
	if got := len(stored(t, env, "alice", conv)); got != 4 {
		t.Errorf("store holds %d messages after the refused one, want 4", got)
	}
}

// TestOfflineCatchUp: alice closes her page (bob sees her go offline); bob
// writes N messages; alice comes back on her phone (new tab, logs in again)
// and sees the unread badge with N, then every message once, and bob sees
// her online again and that she read them.
func TestOfflineCatchUp(t *testing.T) {
	const n = 7
	// A short presence grace, so that bob's page sees alice go offline.
	env := testserver.Start(t, testserver.Options{Dev: true, Chat: chat.Config{PresenceGrace: 100 * time.Millisecond}})
	alice, _, a, b, conv := pair(t, pageURL(t, env), desktopW, desktopH)
	a.write("see you later")
	b.waitMessage("see you later")

	a.close()
	online := fmt.Sprintf(`document.querySelector('#convs li[data-conv=%q] .dot.online')`, conv)
	b.waitFor("alice shown offline", "!"+online)
	for i := 1; i <= n; i++ {
		b.write(fmt.Sprintf("while you were away %d", i))
	}
	b.waitFor("every message acknowledged", messagesJS+`.every((m) => !m.pending)`)
	if got := len(stored(t, env, "bob", conv)); got != n+1 {
		t.Fatalf("store holds %d messages, want %d", got, n+1)
	}

	a = alice.open(pageURL(t, env), phoneW, phoneH)
	a.waitFor("the login form", `!document.getElementById("login").hidden`)
	a.screenshot("login-phone")
	a.login()
	b.waitFor("alice shown online again", online)
	badge := fmt.Sprintf(`document.querySelector('#convs li[data-conv=%q] .badge')`, conv)
	a.waitFor(fmt.Sprintf("an unread badge of %d", n), fmt.Sprintf(`%s?.textContent === "%d"`, badge, n))
	a.screenshot("offline-unread-phone")
	a.openChat(conv)
	a.waitMessage(fmt.Sprintf("while you were away %d", n))
	sameAsStore(t, a, stored(t, env, "alice", conv))
	b.waitFor("seen by alice", seenByJS+` === "alice"`)
	a.click("go back to the list", "#back")
	a.waitFor("the badge gone", `!`+badge)
	a.openChat(conv)
	a.screenshot("offline-caught-up-phone")
}

// TestServerRestart: the server goes down in the middle of a conversation
// and comes back on the same address and data. Both pages show that they
// are reconnecting, keep what is written meanwhile as pending, reconnect by
// themselves, send it, and end up with exactly the stored conversation.
func TestServerRestart(t *testing.T) {
	env := chatServer(t, nil)
	_, _, a, b, conv := pair(t, pageURL(t, env), desktopW, desktopH)
	a.write("before the restart")
	b.waitMessage("before the restart")
	b.write("me too")
	a.waitMessage("me too")

	if err := env.Stop(); err != nil {
		t.Fatalf("stop the server: %v", err)
	}
	reconnecting := `["reconnecting", "offline"].includes(document.getElementById("banner").dataset.state)`
	a.waitFor("the reconnecting banner", reconnecting)
	b.waitFor("the reconnecting banner", reconnecting)
	a.write("written while down 1")
	a.write("written while down 2")
	b.write("bob wrote while down")
	a.waitFor("two pending messages", messagesJS+`.filter((m) => m.pending).length === 2`)
	b.waitFor("one pending message", messagesJS+`.filter((m) => m.pending).length === 1`)
	a.screenshot("restart-pending")

	if err := env.Start(); err != nil {
		t.Fatalf("restart the server: %v", err)
	}
	a.waitConnected("")
	b.waitConnected("")
	for _, p := range []*page{a, b} {
		p.waitMessage("written while down 1")
		p.waitMessage("written while down 2")
		p.waitMessage("bob wrote while down")
	}
	a.screenshot("restart-recovered")
	want := stored(t, env, "alice", conv)
	if len(want) != 5 {
		t.Errorf("store holds %d messages, want 5: %+v", len(want), want)
	}
	sameAsStore(t, a, want)
	sameAsStore(t, b, want)
}
