package web_test

// The browser harness: one headless Chromium for the whole package, started
// on first use and killed (with every helper process it started) when the
// tests end. Each simulated user gets its own browser context (separate
// cookies, storage and connections), so two users in one browser are as
// separate as two people on two machines.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

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
		if pids := reapBrowser(shared.marker); len(pids) > 0 {
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
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("DUPLEX_REQUIRE_SERVICES") == "1" {
			t.Fatalf("chromium is required (DUPLEX_REQUIRE_SERVICES=1) but %s is missing: %v", chromiumPath, err)
		}
		t.Skipf("skipping browser test: chromium not installed at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	shared.once.Do(startBrowser)
	if shared.err != nil {
		t.Fatalf("start chromium: %v", shared.err)
	}
	return shared.ctx
}

// startBrowser launches Chromium headless with a fresh profile and HOME in
// temporary directories, so it writes nothing elsewhere, and a marker
// variable by which reapBrowser finds every process it started.
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
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.Env(shared.marker, "HOME="+home, "XDG_CONFIG_HOME="+home+"/.config", "XDG_CACHE_HOME="+home+"/.cache"),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		// Pages in background tabs must keep their timers and connections
		// running at full speed: two users are two tabs of one browser.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	)
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

// reapBrowser waits until no process whose environment holds marker is
// left, killing (by PID) any still there after 10s; it returns those.
func reapBrowser(marker string) []int {
	want := append([]byte(marker), 0)
	find := func() []int {
		var pids []int
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile("/proc/" + d.Name() + "/environ")
			if err == nil && bytes.Contains(env, want) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if len(find()) == 0 {
			return nil
		}
	}
	left := find()
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return left
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
