package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// TestZeroConfigDevMode runs the binary with no flags (only DUPLEX_ADDR for
// a free port and JSON logs to find it): it must create ./data with the
// database and a 0600 secret, announce development mode, let a person log
// in by name, and shut down cleanly on SIGTERM, closing WebSockets with
// 1001.
func TestZeroConfigDevMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	p := startServer(t, bin, dir, []string{"DUPLEX_ADDR=127.0.0.1:0", "DUPLEX_LOG_FORMAT=json"})
	base := "http://" + p.addr
	if !strings.Contains(p.output(), "DEV MODE") {
		t.Fatalf("no DEV MODE log line:\n%s", p.output())
	}
	fi, err := os.Stat(filepath.Join(dir, "data", secretFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret mode %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", dbFileName)); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The page shows its dev-mode banner when /api/info says so.
	if !strings.Contains(string(page), `id="devmode"`) {
		t.Fatal("page lacks the dev mode banner")
	}
	var info struct{ Dev bool }
	if st := apiCall(t, base, "GET", "/api/info", "", nil, &info); st != 200 || !info.Dev {
		t.Fatalf("/api/info: status %d, dev %v; want 200, dev mode on", st, info.Dev)
	}
	var login struct{ Token string }
	if st := apiCall(t, base, "POST", "/api/dev/login", "", map[string]string{"user": "alice"}, &login); st != 200 || login.Token == "" {
		t.Fatalf("dev login: %d", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws://"+p.addr+"/ws?access_token="+login.Token, &ws.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err != nil { // welcome
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var code ws.StatusCode
	for {
		if _, _, err := c.Read(ctx); err != nil {
			code = ws.CloseStatus(err)
			break
		}
	}
	if code != ws.StatusGoingAway {
		t.Fatalf("close code %d on SIGTERM, want 1001", code)
	}
	if ec := p.waitExit(t, 15*time.Second); ec != 0 {
		t.Fatalf("exit code %d:\n%s", ec, p.output())
	}

	// `duplex token` with the same data directory mints tokens the server
	// accepts: start again (the secret is reused) and use one.
	out, err := exec.Command(bin, "token", "--user", "bob", "--data-dir", filepath.Join(dir, "data")).Output()
	if err != nil {
		t.Fatal(err)
	}
	p2 := startServer(t, bin, dir, []string{"DUPLEX_ADDR=127.0.0.1:0", "DUPLEX_LOG_FORMAT=json"})
	var convs struct{ Conversations []any }
	if st := apiCall(t, "http://"+p2.addr, "GET", "/api/conversations", strings.TrimSpace(string(out)), nil, &convs); st != 200 {
		t.Fatalf("token from `duplex token` refused: %d", st)
	}
}

// TestPublicAddressNeedsKeys checks that binding a non-loopback address
// without keys is refused unless --dev is explicit.
func TestPublicAddressNeedsKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, "serve", "--addr", "0.0.0.0:0", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("started without keys on 0.0.0.0: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--jwt-secret") {
		t.Fatalf("error does not say what to do: %s", out)
	}
}
