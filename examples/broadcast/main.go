// Command broadcast is a small WebSocket broadcast server built on package
// ws: each message from one client goes to all the others. Messages are
// framed (and compressed) once with ws.PreparedMessage whatever the number
// of receivers, each client has a bounded send queue, and a client too slow
// to keep up is disconnected instead of slowing the others.
//
//	go run ./examples/broadcast -addr 127.0.0.1:8080
//
// then open http://127.0.0.1:8080/ in several browser tabs. Browsers must
// come from the server's own host or match -origins.
package main

import (
	"context"
	_ "embed"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/duplexhq/duplex/ws"
)

//go:embed index.html
var indexHTML []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	origins := flag.String("origins", "", "comma-separated Origin host patterns allowed besides the server's own host, e.g. *.example.com")
	verbose := flag.Bool("v", false, "log every connection")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := &ws.AcceptOptions{
		// Each message is compressed once per window size, not per client.
		Compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover},
		ReadLimit:   64 << 10,
		// Detect vanished peers so their queues do not linger.
		PingInterval: 30 * time.Second,
	}
	if *origins != "" {
		opts.OriginPatterns = strings.Split(*origins, ",")
	}
	if err := run(*addr, opts, log); err != nil {
		log.Error("broadcast server failed", "err", err)
		os.Exit(1)
	}
}

// run serves until SIGINT or SIGTERM, then closes every connection with
// 1001 and waits for them.
func run(addr string, opts *ws.AcceptOptions, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := newHub(log, 32)
	srv := &http.Server{
		Handler:           routes(h, opts, log),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("broadcast server listening", "url", "http://"+ln.Addr().String()+"/")

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if herr := h.closeAndWait(shutdownCtx); err == nil {
		err = herr
	}
	<-serveErr
	return err
}

// routes serves the page at / and the WebSocket endpoint at /ws.
func routes(h *hub, opts *ws.AcceptOptions, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexHTML)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, opts)
		if err != nil {
			log.Info("handshake refused", "remote", r.RemoteAddr, "err", err)
			return
		}
		defer c.CloseNow()
		log.Debug("client joined", "remote", r.RemoteAddr)
		h.serve(c, r.RemoteAddr)
	})
	return mux
}
