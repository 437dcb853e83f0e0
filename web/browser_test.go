package web_test

// The browser harness: one headless Chromium for the whole package, started
// on first use and killed (with every helper process it started) when the
// tests end. Each simulated user gets its own browser context (separate
// cookies, storage and connections), so two users in one browser are as
// separate as two people on two machines.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/duplexhq/duplex/internal/testbrowser"
)

// shared is the package's browser, started by the first test that needs it.
var shared struct {
	once    sync.Once
	err     error
	ctx     context.Context // the browser's root chromedp context
	cancel  func()          // kills the browser
	marker  string          // environment entry every browser process carries
	cleanup []string        // temporary directories to remove after the browser is gone
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
		if pids := testbrowser.Reap(shared.marker); len(pids) > 0 {
			fmt.Fprintf(os.Stderr, "chromium processes %v still running 10s after the browser was closed; killed them\n", pids)
			code = 1
		}
	}
	for _, d := range shared.cleanup {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// browser returns the shared browser's context, starting the browser on
// first use. It skips the test when Chromium is not installed, unless
// DUPLEX_REQUIRE_SERVICES=1, which makes that a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	testbrowser.Require(t)
	shared.once.Do(startBrowser)
	if shared.err != nil {
		t.Fatalf("start chromium: %v", shared.err)
	}
	return shared.ctx
}

// startBrowser launches Chromium headless with a fresh profile and HOME in
// temporary directories, so it writes nothing elsewhere, and a marker
// variable by which testbrowser.Reap finds every process it started.
func startBrowser() {
	profile, err := os.MkdirTemp("", "duplex-browser-profile-")
	if err != nil {
		shared.err = err
		return
	}
	home, err := os.MkdirTemp("", "duplex-browser-home-")
	if err != nil {
		os.RemoveAll(profile)
		shared.err = err
		return
	}
	shared.cleanup = []string{profile, home}
	shared.marker = "DUPLEX_WEB_BROWSER=" + profile
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), testbrowser.Options(profile, home, shared.marker,
		// Pages in background tabs must keep their timers and connections
		// running at full speed: two users are two tabs of one browser.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	)...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	shared.ctx = ctx
	shared.cancel = func() { cancelCtx(); cancelAlloc() }
	// The first action starts the browser; it must run on ctx itself (the
	// browser lives as long as the context of its first action), so a
	// watchdog bounds it instead of a deadline.
	shared.err = startTarget(ctx, shared.cancel)
}

// startTarget runs the first, empty action on a new chromedp context, which
// starts the browser or opens the tab; if that takes over 30s, cancel
// ends it.
func startTarget(ctx context.Context, cancel func()) error {
	watchdog := time.AfterFunc(30*time.Second, cancel)
	defer watchdog.Stop()
	return chromedp.Do(ctx)
}

// artifactDir is where screenshots go: $DUPLEX_ARTIFACTS, or
// testdata/artifacts/browser at the repository root (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DUPLEX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "artifacts")
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	return dir
}
