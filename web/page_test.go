package web_test

// Driving the chat page as a person would: type into its forms, press keys,
// click, and read what it shows. Every wait is bounded; a failed wait
// reports what the page showed at that moment.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// waitTimeout bounds every wait for the page; generous because the race
// detector and a shared two-core machine slow everything down.
const waitTimeout = 20 * time.Second

// Viewports.
const (
	desktopW, desktopH = 1280, 800
	phoneW, phoneH     = 390, 844
)

// user is one person: a browser context of their own (storage, cookies and
// connections are not shared with other users).
type user struct {
	t    *testing.T
	name string
	ctx  context.Context // a blank tab that keeps the browser context alive
}

func newUser(t *testing.T, name string) *user {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := startTarget(ctx, cancel); err != nil {
		t.Fatalf("%s: new browser context: %v", name, err)
	}
	return &user{t: t, name: name, ctx: ctx}
}

// page is one tab of a user showing the chat page.
type page struct {
	t      *testing.T
	user   *user
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool // no more logging once the page or test is done
}

// open loads url in a new tab of the user's browser context at the given
// viewport size.
func (u *user) open(url string, width, height int64) *page {
	u.t.Helper()
	ctx, cancel := chromedp.NewContext(u.ctx)
	p := &page{t: u.t, user: u, ctx: ctx, cancel: cancel}
	u.t.Cleanup(p.close)
	if err := startTarget(ctx, cancel); err != nil {
		u.t.Fatalf("%s: open a tab: %v", u.name, err)
	}
	if err := chromedp.Listen(ctx, p.onEvent); err != nil {
		u.t.Fatalf("%s: listen to the page: %v", u.name, err)
	}
	p.do("load "+url, chromedp.EmulateViewport(width, height), chromedp.Navigate(url))
	return p
}

// close closes the tab, as a person closing it would: its connections end.
func (p *page) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
}

// onEvent logs the page's console errors and uncaught exceptions.
func (p *page) onEvent(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "uncaught: " + d.Text
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.t.Logf("%s's page %s", p.user.name, line)
	}
}

// do runs actions with a bounded time, failing the test on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v\n%s", p.user.name, what, err, p.describe())
	}
}

// click clicks the element sel selects, with the mouse. The page redraws
// lists as events arrive, which can replace the element between finding
// and clicking it: then it finds the new one and clicks again.
func (p *page) click(what, sel string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, time.Until(deadline))
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			p.t.Fatalf("%s: %s: %v\n%s", p.user.name, what, err, p.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eval evaluates a JavaScript expression in the page into out.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
	if err == nil {
		err = json.Unmarshal([]byte(raw), out)
	}
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.user.name, expr, err)
	}
}

// waitFor waits until the JavaScript expression is truthy in the page.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		left := time.Until(deadline)
		ctx, cancel := context.WithTimeout(p.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(left)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			p.t.Fatalf("%s: waiting for %s: %v\n%s", p.user.name, what, err, p.describe())
		}
		// The page navigated (the app reloads itself after its session
		// ended): poll the new document.
		time.Sleep(100 * time.Millisecond)
	}
}

// describe is what the page shows, for failure messages.
func (p *page) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href,
		connection: document.body.dataset.connection, transport: document.body.dataset.transport,
		banner: document.getElementById("banner")?.textContent,
		login: !document.getElementById("login")?.hidden, loginError: document.getElementById("login-error")?.textContent,
		convs: [...document.querySelectorAll("#convs li")].map((li) => li.textContent),
		title: document.getElementById("chat-title")?.textContent,
		typing: document.getElementById("typing")?.textContent,
		messages: [...document.querySelectorAll("#messages li")].map((li) => li.textContent),
	}, null, 1)`))
	if err != nil {
		return fmt.Sprintf("(the page could not be read: %v)", err)
	}
	return p.user.name + "'s page: " + s
}

// login logs in by name through the dev-mode form, by keyboard (type the
// name, press Enter), and waits until the page is connected.
func (p *page) login() {
	p.t.Helper()
	p.waitFor("the login form", `!document.getElementById("login").hidden && !document.getElementById("login-name").hidden`)
	p.do("type the name and press Enter", chromedp.SendKeys(chromedp.ID("login-name"), p.user.name), pressEnter)
	p.waitConnected("")
}

// waitConnected waits for the banner to say connected (over transport,
// when given).
func (p *page) waitConnected(transport string) {
	p.t.Helper()
	cond := `document.getElementById("banner").dataset.state === "connected"`
	if transport != "" {
		cond += fmt.Sprintf(` && document.getElementById("banner").dataset.transport === %q`, transport)
	}
	p.waitFor("the connected banner "+transport, cond)
}

// waitConnectedOn waits until the page is connected over one of transports.
func (p *page) waitConnectedOn(transports []string) {
	p.t.Helper()
	list, _ := json.Marshal(transports)
	p.waitFor(fmt.Sprintf("the connected banner on one of %v", transports), fmt.Sprintf(
		`document.getElementById("banner").dataset.state === "connected" && %s.includes(document.getElementById("banner").dataset.transport)`, list))
}

// startChat starts a direct conversation with peer through the sidebar
// form and returns its id once it is open.
func (p *page) startChat(peer string) string {
	p.t.Helper()
	p.do("start a chat with "+peer, chromedp.SendKeys(chromedp.ID("new-direct-peer"), peer), pressEnter)
	p.waitFor("the chat with "+peer+" open", fmt.Sprintf(
		`document.getElementById("chat-title").textContent === %q && !document.getElementById("composer").hidden`, peer))
	var id string
	p.eval(`document.querySelector('#convs li[aria-current="true"]').dataset.conv`, &id)
	return id
}

// openChat clicks the conversation in the sidebar.
func (p *page) openChat(conv string) {
	p.t.Helper()
	sel := fmt.Sprintf(`#convs li[data-conv=%q] button`, conv)
	p.waitFor("conversation "+conv+" in the list", fmt.Sprintf(`document.querySelector(%q)`, sel))
	p.click("open conversation "+conv, sel)
	p.waitFor("conversation "+conv+" open", fmt.Sprintf(
		`document.querySelector('#convs li[aria-current="true"]')?.dataset.conv === %q && !document.getElementById("composer").hidden`, conv))
}

// write types text into the composer key by key (so the page sees input
// events, as from a person) and presses Enter.
func (p *page) write(text string) {
	p.t.Helper()
	p.do("write "+text, chromedp.SendKeys(chromedp.ID("composer-text"), text), pressEnter)
	p.waitFor("the composer to clear", `document.getElementById("composer-text").value === ""`)
}

// sendKeys types text into the element with this id, key by key.
func sendKeys(id, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.ID(id), text)
}

// pressEnter presses Enter in the focused element as a keyboard does: one
// keydown carrying the text "\r" (which the browser turns into keypress
// and input unless the keydown is cancelled), then keyup. chromedp's
// KeyEvent sends the character as a separate event that a cancelled
// keydown does not suppress, which no real keyboard does.
var pressEnter = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	down := input.DispatchKeyEventParams{
		Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", Text: "\r", UnmodifiedText: "\r",
		WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
	}
	if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
		return err
	}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
	return err
})

// domMessage is one message as the page lists it.
type domMessage struct {
	Seq     string `json:"seq"`
	ID      string `json:"id"`
	Sender  string `json:"sender"`
	Body    string `json:"body"`
	Meta    string `json:"meta"`
	Pending bool   `json:"pending"`
	Mine    bool   `json:"mine"`
	SeenBy  string `json:"seenBy"`
}

const messagesJS = `[...document.querySelectorAll("#messages li[data-client-msg-id]")].map((li) => ({
	seq: li.dataset.seq, id: li.dataset.clientMsgId,
	sender: li.querySelector(".from")?.textContent ?? "", body: li.querySelector(".body")?.textContent ?? "",
	meta: li.querySelector(".meta")?.textContent ?? "",
	pending: li.classList.contains("pending"), mine: li.classList.contains("mine"), seenBy: li.dataset.seenBy ?? "",
}))`

// messages is the open conversation's message list as shown.
func (p *page) messages() []domMessage {
	p.t.Helper()
	var ms []domMessage
	p.eval(messagesJS, &ms)
	return ms
}

// waitMessage waits until a message with this body is listed (and not
// pending).
func (p *page) waitMessage(body string) {
	p.t.Helper()
	p.waitFor("message "+body, fmt.Sprintf(`%s.some((m) => m.body === %q && !m.pending)`, messagesJS, body))
}

// bodies lists the bodies of msgs.
func bodies(msgs []domMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Body
	}
	return out
}

// screenshot saves what the tab shows as a PNG artifact.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot %s: %v", p.user.name, name, err)
	}
	path := filepath.Join(artifactDir(p.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("write screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", path)
}
