// Package testbrowser starts headless Chromium for browser tests (web/ and
// the interop module): it finds the browser, supplies the launch flags they
// share and reaps every process a browser started once it is closed.
package testbrowser

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Require skips t when Chromium is not installed, unless
// DUPLEX_REQUIRE_SERVICES=1, which makes that a failure: CI must not pass
// by skipping the browser tests.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("DUPLEX_REQUIRE_SERVICES") == "1" {
			t.Fatalf("chromium is required (DUPLEX_REQUIRE_SERVICES=1) but %s is missing: %v", ChromiumPath, err)
		}
		t.Skipf("skipping browser test: chromium not installed at %s (apt-get install chromium): %v", ChromiumPath, err)
	}
}

// Options are the allocator options for a headless Chromium with its
// profile in profile and HOME in home (where its crash reporter keeps its
// database), so it writes nothing outside those directories, and marker
// ("NAME=value") in the environment of every process it starts, by which
// Reap finds them. Network features a test does not exercise (QUIC,
// background fetches, component updates, sync, proxies) are off so the
// only traffic is the test's own. extra are appended.
func Options(profile, home, marker string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	return append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.Env(marker, "HOME="+home, "XDG_CONFIG_HOME="+home+"/.config", "XDG_CACHE_HOME="+home+"/.cache"),
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
	}, extra...)
}

// Reap waits until no process whose environment holds marker is left,
// killing (by PID) any still there after 10s, and returns those: a closed
// browser's helper processes (zygote, renderers, crash reporter) exit a
// moment after its main process, and one that does not is a leak.
func Reap(marker string) []int {
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
