package interop

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/duplexhq/duplex/internal/testbrowser"
	"github.com/duplexhq/duplex/ws"
)

// browserPage is the page whose script drives the browser side.
//
//go:embed testdata/browser.html
var browserPage []byte

// browserCase is one message the page sends; encoding/json carries B as
// base64.
type browserCase struct {
	T string `json:"t"` // "text" or "binary"
	S string `json:"s"`
	B []byte `json:"b"`
}

func (c browserCase) typ() ws.MessageType {
	if c.T == "text" {
		return ws.MessageText
	}
	return ws.MessageBinary
}

func (c browserCase) data() []byte {
	if c.T == "text" {
		return []byte(c.S)
	}
	return c.B
}

// browserCases are the messages of the main connection: every frame-length
// class up to 100 KiB in both types (non-ASCII and emoji in the text), then
// a burst of similar messages for context takeover.
func browserCases() []browserCase {
	var cs []browserCase
	for i, n := range []int{0, 1, 125, 126, 127, 64 << 10, 100 << 10} {
		cs = append(cs, browserCase{T: "text", S: string(textPayload(n, i))})
		cs = append(cs, browserCase{T: "binary", B: binaryPayload(n, uint64(i))})
	}
	for _, m := range burstPayloads(50) {
		cs = append(cs, browserCase{T: "text", S: string(m)})
	}
	return cs
}

// browserResult is window.__result, filled in by the page.
type browserResult struct {
	Fatal       string      `json:"fatal"`
	Mode        string      `json:"mode"`
	Extensions  string      `json:"extensions"`
	Protocol    string      `json:"protocol"`
	Ping        string      `json:"ping"`
	Mismatches  []string    `json:"mismatches"`
	Echoed      int         `json:"echoed"`
	ServerClose *closeEvent `json:"serverClose"`
	ClientClose *closeEvent `json:"clientClose"`
	// Probe, ProbeEcho and ProbeClose are the outcome of a probe page.
	Probe      string `json:"probe"`
	ProbeEcho  bool   `json:"probeEcho"`
	ProbeClose int    `json:"probeClose"`
}

// closeEvent is what the page's onclose saw.
type closeEvent struct {
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
}

// browserReport is what our server saw on one connection.
type browserReport struct {
	mode, conn string
	acceptErr  error
	offered    string // the browser's Sec-WebSocket-Extensions
	compressed bool
	protocol   string // the subprotocol we selected
	received   int    // messages of the main connection that matched their case
	errs       []string
	pingErr    error
	closeErr   error // of our Close(4000, "bye")
	term       error // what ended our reading
}

// browserModes are the server's compression settings; Chromium always
// offers "permessage-deflate; client_max_window_bits".
// In stream mode the server reads through Reader and echoes through
// Writer, so its echoes reach the browser fragmented (and compressed). With
// a heartbeat the server's pings keep crossing the compressed traffic.
var browserModes = []struct {
	name      string
	opts      ws.CompressionOptions
	deflate   bool
	stream    bool
	heartbeat time.Duration
}{
	{"off", ws.CompressionOptions{}, false, false, 0},
	{"ctx", ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, true, false, 0},
	{"noctx", ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}, true, false, 0},
	{"ctx-stream", ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, true, true, 0},
	{"ctx-heartbeat", ws.CompressionOptions{Mode: ws.CompressionContextTakeover}, true, false, 5 * time.Millisecond},
}

// Endpoint modes besides browserModes: crossOriginMode admits the origin
// passed to startBrowserServer; limitMode reads at most limitModeBytes per
// message. Both have compression off.
const (
	crossOriginMode = "xorigin"
	limitMode       = "limit"
	limitModeBytes  = 1024
)

// startBrowserServer serves the page, its cases and our echo endpoint
// /ws/{mode}/{conn} on 127.0.0.1. Pages from other origins are refused,
// except that mode crossOriginMode admits allowedOrigin (a host:port).
func startBrowserServer(t *testing.T, cases []browserCase, allowedOrigin string) (*httptest.Server, <-chan browserReport) {
	casesJSON, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan browserReport, 16)
	ctx := t.Context()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(browserPage)
	})
	mux.HandleFunc("GET /cases.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(casesJSON)
	})
	mux.HandleFunc("GET /ws/{mode}/{conn}", func(w http.ResponseWriter, r *http.Request) {
		rep := browserReport{mode: r.PathValue("mode"), conn: r.PathValue("conn"), offered: r.Header.Get("Sec-WebSocket-Extensions")}
		defer func() {
			select {
			case reports <- rep:
			default:
			}
		}()
		opts := ws.AcceptOptions{Subprotocols: []string{"duplex.v1"}}
		stream := false
		for _, m := range browserModes {
			if m.name == rep.mode {
				opts.Compression, stream = m.opts, m.stream
				opts.PingInterval, opts.PongTimeout = m.heartbeat, time.Minute
			}
		}
		switch rep.mode {
		case crossOriginMode:
			opts.OriginPatterns = []string{allowedOrigin}
		case limitMode:
			opts.ReadLimit = limitModeBytes
		}
		c, err := ws.Accept(w, r, &opts)
		if err != nil {
			rep.acceptErr = err
			return
		}
		defer c.CloseNow()
		rep.compressed = c.Compressed()
		rep.protocol = c.Subprotocol()
		serveBrowser(ctx, c, stream, cases, &rep)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, reports
}

// serveBrowser echoes, checks what the page sent against cases on the main
// connection, pings the browser when the page asks (and tells it how that
// went), and closes with 4000 "bye" when the page asks.
func serveBrowser(ctx context.Context, c *ws.Conn, stream bool, cases []browserCase, rep *browserReport) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var pinged chan error
	i := 0
	for {
		typ, p, err := readMessage(ctx, c, stream)
		if err != nil {
			rep.term = err
			break
		}
		if typ == ws.MessageText && string(p) == "close-me" {
			rep.closeErr = c.Close(4000, "bye")
			continue // the next Read reports the end
		}
		if typ == ws.MessageText && string(p) == "ping-me" && pinged == nil {
			// The page waits for the answer, so this loop's next Read
			// is what takes in the pong.
			pinged = make(chan error, 1)
			go func() {
				err := c.Ping(ctx)
				reply := "pinged:ok"
				if err != nil {
					reply = "pinged:" + err.Error()
				}
				if werr := c.Write(ctx, ws.MessageText, []byte(reply)); err == nil {
					err = werr
				}
				pinged <- err
			}()
			continue
		}
		if rep.conn == "main" {
			switch {
			case i >= len(cases):
				rep.errs = append(rep.errs, fmt.Sprintf("message %d: more messages than cases", i))
			case typ != cases[i].typ() || !bytes.Equal(p, cases[i].data()):
				rep.errs = append(rep.errs, fmt.Sprintf("message %d: got %v of %d bytes, want %v of %d bytes (%s)",
					i, typ, len(p), cases[i].typ(), len(cases[i].data()), firstDiff(p, cases[i].data())))
			default:
				rep.received++
			}
			i++
		}
		if err := writeMessage(ctx, c, typ, p, stream); err != nil {
			rep.errs = append(rep.errs, fmt.Sprintf("echo message %d: %v", i, err))
		}
	}
	switch {
	case pinged == nil && rep.conn == "main":
		rep.pingErr = errors.New("the page never asked for a ping")
	case pinged != nil:
		select {
		case rep.pingErr = <-pinged:
		case <-time.After(10 * time.Second):
			rep.pingErr = errors.New("Ping still waiting 10s after the connection ended")
		}
	}
}

// TestBrowser runs the page in headless Chromium against our server with
// each compression setting.
func TestBrowser(t *testing.T) {
	testbrowser.Require(t)
	cases := browserCases()
	// other serves the same page from another origin (another port).
	other, _ := startBrowserServer(t, cases, "")
	srv, reports := startBrowserServer(t, cases, strings.TrimPrefix(other.URL, "http://"))

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	// The browser gets its own HOME (where its crash reporter keeps its
	// database) besides its profile, so it writes nothing outside temporary
	// directories, and a marker variable by which testbrowser.Reap finds every
	// process it started.
	profile, home := t.TempDir(), t.TempDir()
	marker := "DUPLEX_INTEROP_BROWSER=" + profile
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, testbrowser.Options(profile, home, marker)...)
	defer func() {
		cancelAlloc() // kills the browser and waits for its main process
		// Its helper processes (zygote, renderers, crash reporter) exit a
		// moment later; wait for them before the directories are removed.
		for _, pid := range testbrowser.Reap(marker) {
			t.Errorf("chromium helper process %d still running 10s after the browser was closed; killed it", pid)
		}
	}()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(browser, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			for _, a := range ev.Args {
				t.Logf("page console.%s: %s", ev.Type, a.Value)
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			if d.Exception != nil {
				t.Logf("page exception: %s", d.Exception.Description)
			} else {
				t.Logf("page exception: %s", d.Text)
			}
		}
	})
	if err != nil {
		t.Fatalf("listen to the page: %v", err)
	}

	for _, mode := range browserModes {
		t.Run(mode.name, func(t *testing.T) {
			res := runPage(t, browser, srv.URL+"/?mode="+mode.name)
			checkBrowserResult(t, res, len(cases), mode.deflate)
			for range 2 {
				checkBrowserReport(t, nextReport(t, reports), len(cases), mode.deflate)
			}
		})
	}

	// Cross-site WebSocket hijacking defence, seen from a real browser: a
	// page from another origin is refused unless OriginPatterns admits it.
	wsBase := "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Run("cross-origin-refused", func(t *testing.T) {
		res := runPage(t, browser, other.URL+"/?probe="+url.QueryEscape(wsBase+"/ws/off/second"))
		if res.Probe != "refused" || res.ProbeClose != 1006 {
			t.Errorf("browser: probe %q with close code %d, want refused with 1006", res.Probe, res.ProbeClose)
		}
		rep := nextReport(t, reports)
		if !errors.Is(rep.acceptErr, ws.ErrOriginRefused) {
			t.Errorf("server: ws.Accept returned %v, want ErrOriginRefused", rep.acceptErr)
		}
	})
	t.Run("cross-origin-allowed", func(t *testing.T) {
		res := runPage(t, browser, other.URL+"/?probe="+url.QueryEscape(wsBase+"/ws/"+crossOriginMode+"/second"))
		if res.Probe != "opened" || !res.ProbeEcho {
			t.Errorf("browser: probe %q, echoed %v, want an opened connection and an echo", res.Probe, res.ProbeEcho)
		}
		checkBrowserReport(t, nextReport(t, reports), len(cases), false)
	})
	// A message over the read limit fails the connection with 1009, which
	// the page must see as its close code.
	t.Run("read-limit", func(t *testing.T) {
		res := runPage(t, browser, fmt.Sprintf("%s/?size=%d&probe=%s", srv.URL, limitModeBytes+1,
			url.QueryEscape(wsBase+"/ws/"+limitMode+"/second")))
		if res.Probe != "opened" || res.ProbeEcho || res.ProbeClose != int(ws.StatusMessageTooBig) {
			t.Errorf("browser: probe %q, echoed %v, close code %d; want opened, no echo, %d",
				res.Probe, res.ProbeEcho, res.ProbeClose, ws.StatusMessageTooBig)
		}
		rep := nextReport(t, reports)
		if ws.CloseStatus(rep.term) != ws.StatusMessageTooBig || !errors.Is(rep.term, ws.ErrMessageTooBig) {
			t.Errorf("server: Read ended with %v, want ErrMessageTooBig with status 1009", rep.term)
		}
	})
}

// runPage loads url and waits for the page's window.__result.
func runPage(t *testing.T, browser context.Context, url string) browserResult {
	t.Helper()
	if err := chromedp.Do(browser, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load page: %v", err)
	}
	raw, err := chromedp.Run(browser, chromedp.Poll[string](
		`window.__result && JSON.stringify(window.__result)`,
		chromedp.WithPollingTimeout(2*time.Minute)))
	if err != nil {
		t.Fatalf("wait for the page's result: %v", err)
	}
	var res browserResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("page result %q: %v", raw, err)
	}
	if res.Fatal != "" {
		t.Fatalf("page failed: %s", res.Fatal)
	}
	return res
}

func nextReport(t *testing.T, reports <-chan browserReport) browserReport {
	t.Helper()
	select {
	case rep := <-reports:
		return rep
	case <-time.After(30 * time.Second):
		t.Fatalf("our server did not report the connection")
		return browserReport{}
	}
}

func checkBrowserResult(t *testing.T, res browserResult, ncases int, deflate bool) {
	t.Helper()
	t.Logf("browser: extensions %q, close by server %+v, close by browser %+v", res.Extensions, res.ServerClose, res.ClientClose)
	for _, m := range res.Mismatches {
		t.Errorf("browser: %s", m)
	}
	if res.Echoed != ncases {
		t.Errorf("browser: %d of %d echoes matched", res.Echoed, ncases)
	}
	if res.Ping != "pinged:ok" {
		t.Errorf("browser: got %q after asking for a ping, want pinged:ok", res.Ping)
	}
	if res.Protocol != "duplex.v1" {
		t.Errorf("browser: WebSocket.protocol = %q, want duplex.v1", res.Protocol)
	}
	if got := strings.HasPrefix(res.Extensions, "permessage-deflate"); got != deflate {
		t.Errorf("browser: WebSocket.extensions = %q, want permessage-deflate %v", res.Extensions, deflate)
	}
	if want := (closeEvent{4000, "bye", true}); res.ServerClose == nil || *res.ServerClose != want {
		t.Errorf("browser: close by server seen as %+v, want %+v", res.ServerClose, want)
	}
	if res.ClientClose == nil || !res.ClientClose.WasClean {
		t.Errorf("browser: its own close seen as %+v, want a clean close", res.ClientClose)
	}
}

func checkBrowserReport(t *testing.T, rep browserReport, ncases int, deflate bool) {
	t.Helper()
	if rep.acceptErr != nil {
		t.Fatalf("server %s/%s: ws.Accept: %v", rep.mode, rep.conn, rep.acceptErr)
	}
	t.Logf("server %s/%s: browser offered %q, compressed %v, ended by %v", rep.mode, rep.conn, rep.offered, rep.compressed, rep.term)
	if rep.compressed != deflate {
		t.Errorf("server %s/%s: Compressed() = %v, want %v", rep.mode, rep.conn, rep.compressed, deflate)
	}
	for _, e := range rep.errs {
		t.Errorf("server %s/%s: %s", rep.mode, rep.conn, e)
	}
	if rep.pingErr != nil {
		t.Errorf("server %s/%s: Ping: %v", rep.mode, rep.conn, rep.pingErr)
	}
	switch rep.conn {
	case "main":
		if rep.protocol != "duplex.v1" {
			t.Errorf("server: Subprotocol() = %q, want duplex.v1", rep.protocol)
		}
		if rep.received != ncases {
			t.Errorf("server: %d of %d messages from the browser matched", rep.received, ncases)
		}
		if rep.closeErr != nil {
			t.Errorf("server: Close(4000, \"bye\"): %v", rep.closeErr)
		}
	case "second":
		var ce *ws.CloseError
		if !errors.As(rep.term, &ce) || ce.Code != 4001 || ce.Reason != "client-bye ✓" {
			t.Errorf("server: browser's close seen as %v, want close 4001 %q", rep.term, "client-bye ✓")
		}
	}
}
