// Package testserver runs a complete duplex server in-process for tests of
// the layers above it (the Go client, the browser tests): the real chat
// service on a real SQLite store in a temporary directory, the in-memory
// broker and presence registry, and the real HTTP server on a loopback
// port. A server can be stopped and started again on the same port and
// data, as a restart would.
package testserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/chat"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/server"
	"github.com/duplexhq/duplex/store/sqlite"
)

// Secret signs the tokens Token mints.
var Secret = []byte("testserver-secret-testserver-secret")

// Options vary the server.
type Options struct {
	Dev  bool        // dev mode: log in by name
	Chat chat.Config // zero value: defaults plus an open "" namespace
	// Transports, if set, are the client transports served (see
	// server.Config.Transports), e.g. to force a browser onto a fallback.
	Transports []string
	// Configure, if set, edits the server configuration before New.
	Configure func(*server.Config)
}

// Env is one running (or stopped) server.
type Env struct {
	t    testing.TB
	opts Options
	dir  string
	addr string // host:port, kept across restarts

	cancel context.CancelFunc
	served chan error
	close  []func() error
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	e := &Env{t: t, opts: opts, dir: t.TempDir(), addr: "127.0.0.1:0"}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	return e
}

// URL is the server's http:// base URL.
func (e *Env) URL() string { return "http://" + e.addr }

// WSURL is the WebSocket endpoint.
func (e *Env) WSURL() string { return "ws://" + e.addr + "/ws" }

// Token mints a token for user.
func (e *Env) Token(user string) string {
	tok, err := auth.Mint(Secret, user, time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// Start (re)starts the server on the same address and data directory.
func (e *Env) Start() error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("DUPLEX_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(e.dir, "duplex.db"), Logger: log})
	if err != nil {
		return err
	}
	br, pr := brokermem.New(brokermem.Options{Logger: log}), presencemem.New(presencemem.Options{})
	metrics := server.NewMetrics()
	ccfg := e.opts.Chat
	ccfg.Metrics = metrics
	if ccfg.Namespaces == nil {
		ccfg.Namespaces = map[string]chat.Namespace{"": {Subscribe: true, Publish: true, History: 100}}
	}
	svc, err := chat.New(ccfg, st, br, pr, log)
	if err != nil {
		st.Close()
		return err
	}
	a, err := auth.New(auth.Config{Secret: Secret})
	if err != nil {
		return err
	}
	cfg := server.Config{Chat: svc, Auth: a, Ready: st.Ping, Metrics: metrics, Logger: log, DrainTimeout: time.Second}
	cfg.Transports = e.opts.Transports
	if e.opts.Dev {
		cfg.DevMint = func(u string) (string, error) { return auth.Mint(Secret, u, time.Hour, time.Now()) }
	}
	if e.opts.Configure != nil {
		e.opts.Configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	var ln net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		if ln, err = net.Listen("tcp", e.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.served = make(chan error, 1)
	go func() { e.served <- srv.Serve(ctx, ln, nil, 2*time.Second) }()
	e.close = []func() error{
		func() error { svc.Close(); return nil }, br.Close, pr.Close, st.Close,
	}
	return nil
}

// Stop shuts the server down gracefully (clients get 1001) and closes the
// store. It is a no-op when stopped.
func (e *Env) Stop() error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	e.cancel = nil
	var err error
	select {
	case err = <-e.served:
	case <-time.After(15 * time.Second):
		err = errors.New("testserver: Serve did not return")
	}
	for _, f := range e.close {
		err = errors.Join(err, f())
	}
	e.close = nil
	return err
}
