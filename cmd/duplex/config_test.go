package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/server"
)

func TestParseFlagsPrecedence(t *testing.T) {
	env := map[string]string{
		"DUPLEX_ADDR":       "127.0.0.1:9999",
		"DUPLEX_DATA_DIR":   "/from/env",
		"DUPLEX_DEV":        "true",
		"DUPLEX_SEND_QUEUE": "17",
	}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		args    []string
		addr    string
		dataDir string
		queue   int
		devSet  bool
	}{
		{"env fills unset flags", nil, "127.0.0.1:9999", "/from/env", 17, true},
		{"flag wins", []string{"--addr", "127.0.0.1:1", "--data-dir", "/flag"}, "127.0.0.1:1", "/flag", 17, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var c config
			serveFlags(fs, &c)
			if err := parseFlags(fs, tc.args, getenv); err != nil {
				t.Fatal(err)
			}
			if c.Addr != tc.addr || c.DataDir != tc.dataDir || c.SendQueue != tc.queue || !c.Dev || flagWasSet(fs, "dev") != tc.devSet {
				t.Fatalf("got %+v", c)
			}
		})
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c config
	serveFlags(fs, &c)
	if err := parseFlags(fs, nil, func(k string) string {
		if k == "DUPLEX_SEND_QUEUE" {
			return "many"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "DUPLEX_SEND_QUEUE") {
		t.Fatalf("bad env value: err = %v", err)
	}
	if err := parseFlags(fs, []string{"extra"}, getenv); err == nil {
		t.Fatal("stray argument accepted")
	}
}

func TestDefaults(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c config
	serveFlags(fs, &c)
	if err := parseFlags(fs, nil, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "data" || c.Dev || flagWasSet(fs, "dev") {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestResolveSecurity(t *testing.T) {
	dir := t.TempDir()
	longSecret := strings.Repeat("s", 40)
	tests := []struct {
		name    string
		c       config
		dev     bool
		wantErr bool
	}{
		{"zero config loopback is dev", config{Addr: "127.0.0.1:8080"}, true, false},
		{"localhost is loopback", config{Addr: "localhost:8080"}, true, false},
		{"ipv6 loopback", config{Addr: "[::1]:8080"}, true, false},
		{"explicit --dev=false on loopback", config{Addr: "127.0.0.1:8080", devSet: true}, false, false},
		{"secret on loopback is not dev", config{Addr: "127.0.0.1:8080", JWTSecret: longSecret}, false, false},
		{"public interface without keys refused", config{Addr: "0.0.0.0:8080"}, false, true},
		{"empty host is every interface", config{Addr: ":8080"}, false, true},
		{"public interface with --dev", config{Addr: "0.0.0.0:8080", Dev: true, devSet: true}, true, false},
		{"public interface with secret", config{Addr: "0.0.0.0:8080", JWTSecret: longSecret}, false, false},
		{"short secret refused", config{Addr: "0.0.0.0:8080", JWTSecret: "short"}, false, true},
		{"missing public key file", config{Addr: "0.0.0.0:8080", JWTPublicKey: filepath.Join(dir, "nope.pem")}, false, true},
		{"bad addr", config{Addr: "nonsense"}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.DataDir = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			sec, err := resolveSecurity(&tc.c)
			if tc.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sec.dev != tc.dev || len(sec.secret) < auth.MinSecretLen {
				t.Fatalf("dev = %v (want %v), secret %d bytes", sec.dev, tc.dev, len(sec.secret))
			}
		})
	}
}

func TestSecretFileReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s1, err := loadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, secretFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	s2, err := loadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1, s2) || len(s1) < auth.MinSecretLen {
		t.Fatalf("secret not reused: %q vs %q", s1, s2)
	}
	if err := os.WriteFile(filepath.Join(dir, secretFileName), []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateSecret(dir); err == nil {
		t.Fatal("short secret file accepted")
	}
}

func TestNamespaces(t *testing.T) {
	got, err := namespaces("default=subscribe+publish+history:100, news=subscribe")
	if err != nil {
		t.Fatal(err)
	}
	if d := got[""]; !d.Subscribe || !d.Publish || d.History != 100 {
		t.Fatalf("default namespace: %+v", d)
	}
	if n := got["news"]; !n.Subscribe || n.Publish || n.History != 0 {
		t.Fatalf("news namespace: %+v", n)
	}
	for _, bad := range []string{"x=fly", "x=history:-1", "x=history:99999999", "a=subscribe,a=publish"} {
		if _, err := namespaces(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"token", "--user", "alice", "--ttl", "1h", "--data-dir", dir}, &out, &errb)
	if err != nil {
		t.Fatalf("token: %v (%s)", err, errb.String())
	}
	secret, err := loadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Verify(strings.TrimSpace(out.String()))
	if err != nil || p.UserID != "alice" || time.Until(p.ExpiresAt) > time.Hour {
		t.Fatalf("minted token: %+v, %v", p, err)
	}
	if err := run(context.Background(), []string{"token"}, &out, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("token without --user: %v", err)
	}
	if err := run(context.Background(), []string{"connect"}, &out, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v", err)
	}
}

// TestTransportsFlag: --transports defaults to every transport, takes
// DUPLEX_TRANSPORTS, and refuses unknown names.
func TestTransportsFlag(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want []string
		ok   bool
	}{
		{"", []string{"websocket", "sse", "longpoll"}, true},
		{"sse,longpoll", []string{"sse", "longpoll"}, true},
		{" LongPoll ", []string{"longpoll"}, true},
		{"websocket,carrier-pigeon", nil, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var c config
		serveFlags(fs, &c)
		getenv := func(k string) string {
			if k == "DUPLEX_TRANSPORTS" {
				return tc.env
			}
			return ""
		}
		if err := parseFlags(fs, nil, getenv); err != nil {
			t.Fatal(err)
		}
		got, err := server.ParseTransports(c.Transports)
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(got, tc.want)) {
			t.Errorf("DUPLEX_TRANSPORTS=%q: %v, %v; want %v", tc.env, got, err, tc.want)
		}
	}
}
