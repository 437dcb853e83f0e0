package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/duplexhq/duplex/server"
)

// envPrefix prefixes the environment variable of every flag: --data-dir is
// DUPLEX_DATA_DIR.
const envPrefix = "DUPLEX_"

// config is everything `duplex serve` and `duplex token` are configured with.
type config struct {
	Addr           string
	DataDir        string
	JWTSecret      string
	JWTPublicKey   string
	AdminKey       string
	AllowedOrigins string
	TLSCert        string
	TLSKey         string
	Dev            bool
	Durability     string
	CommitInterval time.Duration
	Compression    string
	LogLevel       string
	LogFormat      string
	SendQueue      int
	Channels       string
	Rate           float64
	RateBurst      int
	MaxConnsUser   int
	MaxBody        int64
	ShutdownGrace  time.Duration
	Pprof          string
	Transports     string

	// devSet records whether --dev (or DUPLEX_DEV) was given at all, so an
	// explicit --dev=false turns off the automatic development mode.
	devSet bool
}

// commonFlags registers the flags `serve` and `token` share.
func commonFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.DataDir, "data-dir", "data", "directory for the database and the generated secret")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret for tokens (default: generated into the data directory)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
}

// serveFlags registers the flags of `duplex serve`.
func serveFlags(fs *flag.FlagSet, c *config) {
	commonFlags(fs, c)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.JWTPublicKey, "jwt-public-key", "", "PEM public key file for RS256/ES256/EdDSA tokens")
	fs.StringVar(&c.AdminKey, "admin-key", "", "API key for server-side callers (Authorization: Bearer or X-Duplex-Admin-Key)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated Origin patterns allowed for WebSocket (e.g. https://*.example.com); same-origin is always allowed")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS/WSS")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.BoolVar(&c.Dev, "dev", false, "development mode: log in by name without a token (default on for a loopback address without configured keys)")
	fs.StringVar(&c.Durability, "durability", "full", "store durability: full (fsync every commit) or normal (fsync at checkpoints)")
	fs.DurationVar(&c.CommitInterval, "commit-interval", time.Millisecond, "least time between two store commits while writes keep coming: writes in it share a commit (0: commit at once)")
	fs.StringVar(&c.Compression, "compression", "off", "WebSocket permessage-deflate: off, no-context-takeover, context-takeover")
	fs.StringVar(&c.Channels, "channels", "", `channel namespaces, e.g. "default=subscribe+publish+history:100,news=subscribe"`)
	fs.Float64Var(&c.Rate, "rate", 20, "inbound frames per second allowed per connection")
	fs.IntVar(&c.RateBurst, "rate-burst", 40, "burst of inbound frames allowed per connection")
	fs.IntVar(&c.MaxConnsUser, "max-conns-per-user", 10, "simultaneous connections per user (negative: unlimited)")
	fs.IntVar(&c.SendQueue, "send-queue", 256, "outbound frames buffered per connection before it counts as a slow consumer")
	fs.Int64Var(&c.MaxBody, "max-body", 1<<20, "largest HTTP API request body in bytes")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "time allowed for flushing connections on shutdown")
	fs.StringVar(&c.Pprof, "pprof", "", "serve net/http/pprof on this loopback host:port (off by default)")
	fs.StringVar(&c.Transports, "transports", strings.Join(server.AllTransports, ","),
		"client transports served, comma-separated: websocket (/ws), sse (/sse + /rpc), longpoll (/poll + /rpc); the others answer 404")
}

// parseFlags parses args into fs and then fills every flag not given on the
// command line from its DUPLEX_* environment variable: a flag wins over
// the environment, which wins over the default.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v := getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

// flagWasSet reports whether name was given by flag or environment (after
// parseFlags, which calls Set for environment values too).
func flagWasSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newLogger builds the process logger from --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// isLoopback reports whether addr (host:port) only listens on loopback.
// An empty host means every interface, so it is not loopback.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--addr: %w", err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// splitList splits a comma-separated flag value, dropping empty elements.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// errUsage means the command line was wrong; the message has been printed.
var errUsage = errors.New("usage")

// getenv is os.Getenv, replaceable in tests.
var getenv = os.Getenv
