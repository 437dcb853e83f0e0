package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/loadgen"
)

// bench runs the load generator against a running server and prints its
// progress every second and the summary at the end. Tokens are minted with
// the configured secret (--jwt-secret or the data directory's, as `duplex
// token` does), so the server must use the same one. On the server's own
// machine, run it with GOMAXPROCS=1 (bench/run-serve.sh does): 1,000 users
// need about half a core, and on one P it costs ~20% less CPU per message,
// which the server then has.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("duplex bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	commonFlags(fs, &c)
	var cfg loadgen.Config
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws", "server WebSocket endpoint")
	fs.IntVar(&cfg.Users, "users", 100, "connected users (one connection each)")
	fs.IntVar(&cfg.GroupSize, "group-size", 5, "members per group conversation (at least 3)")
	fs.Float64Var(&cfg.GroupShare, "group-share", 0.2, "fraction (0..1) of messages sent to groups; the rest go to direct conversations")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total messages per second; 0 sends as fast as acks come back (see --window)")
	fs.IntVar(&cfg.Window, "window", 4, "sends in flight per user when --rate is 0")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured phase")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "load before measuring")
	fs.IntVar(&cfg.BodySize, "body", 64, "message body size in bytes")
	fs.BoolVar(&cfg.Compression, "compression", false, "negotiate permessage-deflate (no context takeover)")
	fs.StringVar(&cfg.Prefix, "prefix", "", `user id prefix (default "bench-<time>-", unique per run)`)
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 50, "connections and conversations set up at once")
	fs.BoolVar(&cfg.Poller, "poller", true, "read all connections with one event-driven ws.Poller instead of a goroutine each (cheaper per message for the generator)")
	quiet := fs.Bool("quiet", false, "no per-second progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator (warmup and measured phase) to this file")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if cfg.Users < 2 {
		fmt.Fprintln(stderr, "duplex bench: --users must be at least 2")
		return errUsage
	}
	if cfg.GroupShare < 0 || cfg.GroupShare > 1 {
		fmt.Fprintln(stderr, "duplex bench: --group-share must be within 0..1")
		return errUsage
	}
	secret, err := resolveSecret(&c)
	if err != nil {
		return err
	}
	// Tokens outlive the run comfortably so reconnects late in a long run
	// still authenticate.
	ttl := cfg.Warmup + cfg.Duration + time.Hour
	cfg.Token = func(user string) (string, error) { return auth.Mint(secret, user, ttl, time.Now()) }
	if !*quiet {
		cfg.Progress = stdout
	}
	fmt.Fprintf(stdout, "duplex bench: %d users against %s, group size %d, group share %.2f, rate %s, body %d B, warmup %v, measuring %v, poller %v\n",
		cfg.Users, cfg.URL, cfg.GroupSize, cfg.GroupShare, rateText(cfg.Rate, cfg.Window), cfg.BodySize, cfg.Warmup, cfg.Duration, cfg.Poller)
	if *cpuProfile != "" {
		// The generator shares the machine with the server: its own CPU
		// per message is part of what a run measures.
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("bench interrupted: %w", err)
		}
		return fmt.Errorf("bench: %w", err)
	}
	res.Summary(stdout)
	return nil
}

// rateText describes the send pacing for the banner.
func rateText(rate float64, window int) string {
	if rate > 0 {
		return fmt.Sprintf("%.0f/s", rate)
	}
	return fmt.Sprintf("max (window %d per user)", window)
}
