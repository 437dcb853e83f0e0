package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/duplexhq/duplex/auth"
	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/chat"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/server"
	"github.com/duplexhq/duplex/store/sqlite"
)

// dbFileName is the SQLite database inside the data directory.
const dbFileName = "duplex.db"

// serve runs the server until ctx is cancelled, then shuts down in order:
// the HTTP side (WebSockets closed with 1001 after flushing), then the chat
// service, then the store.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("duplex serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	serveFlags(fs, &c)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	c.devSet = flagWasSet(fs, "dev")
	log, err := newLogger(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		return err
	}
	sec, err := resolveSecurity(&c)
	if err != nil {
		return err
	}
	comp, err := compression(c.Compression)
	if err != nil {
		return err
	}
	nss, err := namespaces(c.Channels)
	if err != nil {
		return err
	}
	transports, err := server.ParseTransports(c.Transports)
	if err != nil {
		return err
	}
	tlsConfig, err := loadTLS(c.TLSCert, c.TLSKey)
	if err != nil {
		return err
	}
	authn, err := auth.New(auth.Config{Secret: sec.secret, PublicKey: sec.pub, AdminKey: c.AdminKey})
	if err != nil {
		return err
	}

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{
		Path:           filepath.Join(c.DataDir, dbFileName),
		Durability:     sqlite.Durability(c.Durability),
		CommitInterval: commitInterval(c.CommitInterval),
		Logger:         log,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	br := brokermem.New(brokermem.Options{Logger: log})
	defer br.Close()
	pr := presencemem.New(presencemem.Options{})
	defer pr.Close()

	metrics := server.NewMetrics()
	svc, err := chat.New(chat.Config{
		RatePerSecond:   c.Rate,
		RateBurst:       c.RateBurst,
		MaxConnsPerUser: c.MaxConnsUser,
		Namespaces:      nss,
		Metrics:         metrics,
	}, st, br, pr, log)
	if err != nil {
		return err
	}
	defer svc.Close()

	scfg := server.Config{
		Chat:           svc,
		Auth:           authn,
		Ready:          st.Ping,
		Metrics:        metrics,
		Logger:         log,
		OriginPatterns: splitList(c.AllowedOrigins),
		Compression:    comp,
		SendQueue:      c.SendQueue,
		MaxBodyBytes:   c.MaxBody,
		Transports:     transports,
	}
	if sec.dev {
		secret := sec.secret
		scfg.DevMint = func(user string) (string, error) {
			return auth.Mint(secret, user, server.DefaultDevTokenTTL, time.Now())
		}
	}
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	stopPprof, err := startPprof(c.Pprof, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	if sec.dev {
		log.Warn("DEV MODE: anyone can log in by name at the web page; do not expose this server",
			slog.String("url", scheme+"://"+ln.Addr().String()+"/"))
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("scheme", scheme),
		slog.Bool("dev", sec.dev), slog.String("data_dir", c.DataDir), slog.String("durability", c.Durability),
		slog.Duration("commit_interval", c.CommitInterval),
		slog.String("transports", strings.Join(transports, ",")))
	err = srv.Serve(ctx, ln, tlsConfig, c.ShutdownGrace)
	log.Info("shutting down", slog.Any("err", err))
	if errors.Is(err, context.DeadlineExceeded) {
		// Connections that would not flush in time were dropped; that is
		// the point of the grace period, not a failure of the process.
		err = nil
	}
	return err
}

// commitInterval maps --commit-interval to sqlite.Options.CommitInterval,
// where 0 means the default and a negative value none.
func commitInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
