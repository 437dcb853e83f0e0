// Command duplex runs the duplex real-time messaging server.
//
// Usage:
//
//	duplex [serve] [flags]                 run the server (the default)
//	duplex token --user alice [--ttl 24h]  print an HS256 token for alice
//	duplex connect URL --user alice        interactive terminal client
//	duplex bench [--users 1000 ...]        load-test a running server
//
// Every flag can also be given as a DUPLEX_* environment variable; a flag
// on the command line wins over the environment, which wins over the
// default.
//
//	flag                  environment                default
//	--addr                DUPLEX_ADDR                127.0.0.1:8080
//	--data-dir            DUPLEX_DATA_DIR            data (database duplex.db, secret jwt-secret)
//	--jwt-secret          DUPLEX_JWT_SECRET          generated into the data directory
//	--jwt-public-key      DUPLEX_JWT_PUBLIC_KEY      none (PEM file: RS256, ES256/ES384, EdDSA)
//	--admin-key           DUPLEX_ADMIN_KEY           none (no admin access)
//	--allowed-origins     DUPLEX_ALLOWED_ORIGINS     none (same origin only)
//	--tls-cert, --tls-key DUPLEX_TLS_CERT, _TLS_KEY  none (plain HTTP)
//	--dev                 DUPLEX_DEV                 on for loopback without keys
//	--durability          DUPLEX_DURABILITY          full (or normal)
//	--commit-interval     DUPLEX_COMMIT_INTERVAL     1ms (writes within it share a commit; 0: none)
//	--compression         DUPLEX_COMPRESSION         off (no-context-takeover, context-takeover)
//	--channels            DUPLEX_CHANNELS            none (e.g. default=subscribe+publish+history:100)
//	--rate, --rate-burst  DUPLEX_RATE, _RATE_BURST   20 frames/s, burst 40, per connection
//	--max-conns-per-user  DUPLEX_MAX_CONNS_PER_USER  10
//	--send-queue          DUPLEX_SEND_QUEUE          256 frames per connection
//	--max-body            DUPLEX_MAX_BODY            1 MiB (HTTP API request bodies)
//	--shutdown-grace      DUPLEX_SHUTDOWN_GRACE      10s
//	--log-level           DUPLEX_LOG_LEVEL           info
//	--log-format          DUPLEX_LOG_FORMAT          text (or json)
//
// With no configuration at all, duplex listens on 127.0.0.1:8080, keeps its
// SQLite database and a generated token secret (mode 0600, reused on the
// next start) in ./data, and runs in development mode: the web page lets
// anyone log in by name and the server mints their token. A non-loopback
// --addr refuses to start without --jwt-secret or --jwt-public-key unless
// --dev is given explicitly.
//
// SIGINT or SIGTERM shuts down gracefully: no new connections, every
// WebSocket closed with 1001 after its queued frames were flushed (within
// --shutdown-grace), then the chat service and the store are closed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "duplex:", err)
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

// run dispatches to a subcommand; ctx is cancelled by SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr)
	case "token":
		return token(args, stdout, stderr)
	case "connect":
		return connect(ctx, args, os.Stdin, stdout, stderr)
	case "bench":
		return bench(ctx, args, stdout, stderr)
	case "help":
		usage(stderr)
		return nil
	}
	fmt.Fprintf(stderr, "duplex: unknown command %q\n", cmd)
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  duplex [serve] [flags]                 run the server (default)
  duplex token --user NAME [--ttl 24h]   print an HS256 token for NAME
  duplex connect [URL] [flags]           interactive client (--token, or --user to mint one)
  duplex bench [flags]                   load-test a running server (-h lists flags)

Flags may also be set as DUPLEX_* environment variables (--data-dir is
DUPLEX_DATA_DIR); flags win. "duplex serve -h" lists them.
`)
}
