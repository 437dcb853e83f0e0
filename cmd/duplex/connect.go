package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/client"
)

// connectWait bounds how long a command waits for the connection to be
// (re-)established before it is refused.
const connectWait = 10 * time.Second

// maxLine bounds one line of input: a raw frame may be large, but not
// unbounded.
const maxLine = 1 << 20

// connect runs the interactive terminal client: commands and messages from
// stdin, events to stdout. It ends at end of input, /quit, or when the
// server refuses the connection for good.
func connect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("duplex connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: duplex connect [URL] [flags]   (type /help once connected)")
		fs.PrintDefaults()
	}
	var c config
	commonFlags(fs, &c)
	wsURL := fs.String("url", "ws://127.0.0.1:8080/ws", "server WebSocket endpoint (or give it as the first argument; http:// works too)")
	tok := fs.String("token", "", "bearer token (default: minted for --user with the configured secret)")
	user := fs.String("user", "", "user to mint a token for when --token is not given")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of a minted token")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		args = append(args[1:], "--url", args[0])
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	endpoint, err := normalizeURL(*wsURL)
	if err != nil {
		return err
	}
	token := *tok
	if token == "" {
		if *user == "" {
			fmt.Fprintln(stderr, "duplex connect: give --token (or DUPLEX_TOKEN), or --user to mint one with the configured secret")
			return errUsage
		}
		secret, err := resolveSecret(&c)
		if err != nil {
			return err
		}
		if token, err = auth.Mint(secret, *user, *ttl, time.Now()); err != nil {
			return err
		}
	}
	log, err := newLogger(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		return err
	}
	t := &terminal{
		out:   stdout,
		url:   endpoint,
		token: token,
		c:     client.New(client.Options{URL: endpoint, Token: token, Logger: log}),
	}
	return t.run(ctx, stdin)
}

// normalizeURL accepts ws(s):// and http(s):// URLs and supplies the /ws
// path when none is given.
func normalizeURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("--url: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("--url %q: scheme must be ws, wss, http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--url %q: no host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// terminal is one interactive session: the resilient client, what the user
// has open, and the output every goroutine prints to.
type terminal struct {
	url, token string
	c          *client.Client

	mu  sync.Mutex // serialises output lines
	out io.Writer

	// Used by the input goroutine only.
	open string   // conversation plain text goes to
	raw  *rawConn // non-nil in raw mode
}

// printf writes one line of output.
func (t *terminal) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format+"\n", args...)
}

func (t *terminal) run(ctx context.Context, stdin io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- t.c.Run(ctx) }() // ends with ctx
	printed := make(chan struct{})
	go func() { // ends when Run closes Events
		defer close(printed)
		for ev := range t.c.Events() {
			t.printEvent(ev)
		}
	}()
	lines := make(chan string)
	inputErr := make(chan error, 1)
	go func() { // ends at end of input; at an interrupt the process exits
		inputErr <- readLines(stdin, lines)
	}()
	t.printf("* connecting to %s (/help for commands)", t.url)

	var err error
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				err = <-inputErr
				break loop
			}
			if t.command(ctx, line) {
				break loop
			}
		case e := <-runErr:
			runErr <- e // examined below
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	if t.raw != nil {
		t.raw.close()
	}
	cancel()
	runE := <-runErr
	<-printed
	var ce *client.CloseError
	switch {
	case err != nil:
		return fmt.Errorf("reading input: %w", err)
	case errors.As(runE, &ce):
		return fmt.Errorf("server closed the connection: %w", ce)
	}
	return nil
}

// readLines sends each input line to lines and closes it at the end.
func readLines(r io.Reader, lines chan<- string) error {
	defer close(lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		lines <- sc.Text()
	}
	return sc.Err()
}

// ready waits until the client is connected, so that a command typed
// during a reconnect is carried out rather than refused.
func (t *terminal) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for t.c.State() != client.StateConnected {
		if t.c.State() == client.StateClosed {
			return client.ErrStopped
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not connected after %v", connectWait)
		case <-tick.C:
		}
	}
	return nil
}
