// Command echo is a WebSocket echo server built on package ws: every text
// and binary message is sent back unchanged. It is the target for
// conformance suites such as the Autobahn fuzzingclient:
//
//	go run ./examples/echo -addr 127.0.0.1:9001
//
// permessage-deflate is accepted with every parameter a client may offer,
// and the read limit is large enough for 16 MiB test messages. The Origin
// check is off by default because conformance tools send no Origin or an
// arbitrary one; -check-origin turns on the same-host policy.
//
// SIGINT or SIGTERM stops accepting, closes every connection with 1001
// (going away) and waits for them to finish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/duplexhq/duplex/ws"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	compression := flag.String("compression", "context-takeover", "permessage-deflate: context-takeover, no-context-takeover or off")
	level := flag.Int("level", 1, "deflate level, 1 (fastest) to 9 (smallest)")
	readLimit := flag.Int64("read-limit", 64<<20, "largest message accepted, in bytes (after decompression)")
	checkOrigin := flag.Bool("check-origin", false, "refuse browser requests from other hosts")
	verbose := flag.Bool("v", false, "log every connection")
	flag.Parse()

	logLevel := slog.LevelInfo
	if *verbose {
		logLevel = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	mode, err := parseMode(*compression)
	if err != nil {
		log.Error("bad flag", "err", err)
		os.Exit(2)
	}
	opts := &ws.AcceptOptions{
		Compression:              ws.CompressionOptions{Mode: mode, Level: *level},
		ReadLimit:                *readLimit,
		InsecureSkipVerifyOrigin: !*checkOrigin,
	}
	if err := run(*addr, opts, log); err != nil {
		log.Error("echo server failed", "err", err)
		os.Exit(1)
	}
}

func parseMode(s string) (ws.CompressionMode, error) {
	switch s {
	case "context-takeover":
		return ws.CompressionContextTakeover, nil
	case "no-context-takeover":
		return ws.CompressionNoContextTakeover, nil
	case "off":
		return ws.CompressionDisabled, nil
	}
	return 0, fmt.Errorf("-compression %q: want context-takeover, no-context-takeover or off", s)
}

// run serves until SIGINT or SIGTERM, then shuts down gracefully.
func run(addr string, opts *ws.AcceptOptions, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	conns := &tracker{}
	srv := &http.Server{
		Handler:           echoHandler(ctx, opts, conns, log),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("echo server listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown stops the listener and waits for plain HTTP requests;
	// WebSockets are hijacked, so they are closed by their handlers (ctx is
	// done) and waited for by the tracker.
	err = srv.Shutdown(shutdownCtx)
	if werr := conns.closeAndWait(shutdownCtx); err == nil {
		err = werr
	}
	<-serveErr
	return err
}

// echoHandler accepts WebSockets and echoes every message. When ctx ends,
// each connection is closed with 1001.
func echoHandler(ctx context.Context, opts *ws.AcceptOptions, conns *tracker, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, opts)
		if err != nil {
			log.Debug("handshake refused", "remote", r.RemoteAddr, "err", err)
			return
		}
		defer c.CloseNow()
		if !conns.add() {
			c.Close(ws.StatusGoingAway, "server shutting down")
			return
		}
		defer conns.done()
		stopClose := context.AfterFunc(ctx, func() { c.Close(ws.StatusGoingAway, "server shutting down") })
		defer stopClose()

		log.Debug("connected", "remote", r.RemoteAddr, "compressed", c.Compressed())
		n, err := echo(c)
		log.Debug("disconnected", "remote", r.RemoteAddr, "messages", n, "status", ws.CloseStatus(err), "err", err)
	})
}

// echo sends every message back until the connection ends and returns how
// many it echoed and why it stopped.
func echo(c *ws.Conn) (int, error) {
	// The connection's own close and failure handling bounds these calls;
	// shutdown goes through Close, which performs the close handshake.
	ctx := context.Background()
	for n := 0; ; n++ {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return n, err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return n, err
		}
	}
}

// tracker counts live connections so that shutdown can wait for them, and
// refuses new ones once shutdown began.
type tracker struct {
	mu      sync.Mutex
	closing bool
	n       int
	idle    chan struct{} // closed when closing and n reaches 0
}

func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.closing && t.n == 0 {
		close(t.idle)
	}
}

// closeAndWait refuses new connections and waits until the live ones are
// gone or ctx ends.
func (t *tracker) closeAndWait(ctx context.Context) error {
	t.mu.Lock()
	t.closing = true
	t.idle = make(chan struct{})
	if t.n == 0 {
		close(t.idle)
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return errors.New("connections still open after the shutdown timeout")
	}
}
