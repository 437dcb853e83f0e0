package main

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/internal/testserver"
)

// TestBenchCommand runs a tiny load against a real in-process server and
// checks that the flags reach the load generator and its figures are
// printed.
func TestBenchCommand(t *testing.T) {
	// Closed-loop senders would trip the default per-connection rate limit.
	env := testserver.Start(t, testserver.Options{Chat: chat.Config{RatePerSecond: 1e6, RateBurst: 1 << 20}})
	var out strings.Builder
	err := bench(context.Background(), []string{
		"--url", env.WSURL(), "--jwt-secret", string(testserver.Secret),
		"--users", "6", "--group-size", "3", "--group-share", "0.5",
		"--duration", "1500ms", "--warmup", "200ms", "--body", "16", "--window", "2",
	}, &out, io.Discard)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"6 users against " + env.WSURL(), "group size 3", "body 16 B", "send-to-ack", "send-to-deliver"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// Progress lines come every second; which phase the first one falls
	// in depends on how fast set-up went.
	if !regexp.MustCompile(`(?m)^\s+\d+s (warmup|measure) +sent`).MatchString(s) {
		t.Errorf("no progress line:\n%s", s)
	}
	m := regexp.MustCompile(`acked (\d+) .*errors (\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no summary line:\n%s", s)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 || m[2] != "0" {
		t.Fatalf("acked %s, errors %s:\n%s", m[1], m[2], s)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--users", "1"},
		{"--group-share", "1.5"},
		{"--rate", "x"},
	} {
		if err := bench(context.Background(), append(args, "--jwt-secret", string(testserver.Secret)), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
