package server

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSSEEventFormat: frames become data fields, one per line of the
// frame (raw client JSON may hold line breaks), pings and closes are named
// events with JSON data.
func TestSSEEventFormat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*sseWriter) error
		want  string
	}{
		{"one line", func(e *sseWriter) error { return e.data([]byte(`{"type":"x"}`)) }, "data: {\"type\":\"x\"}\n\n"},
		{"LF", func(e *sseWriter) error { return e.data([]byte("{\"meta\":{\n\"a\":1}}")) }, "data: {\"meta\":{\ndata: \"a\":1}}\n\n"},
		{"CRLF and CR", func(e *sseWriter) error { return e.data([]byte("{\r\n1\r2}")) }, "data: {\ndata: 1\ndata: 2}\n\n"},
		{"trailing LF", func(e *sseWriter) error { return e.data([]byte("{}\n")) }, "data: {}\ndata: \n\n"},
		{"ping", func(e *sseWriter) error { return e.ping() }, "event: ping\ndata: {}\n\n"},
		{"close", func(e *sseWriter) error { return e.close(4009, `slow "consumer"`) },
			"event: close\ndata: {\"code\":4009,\"reason\":\"slow \\\"consumer\\\"\"}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e := &sseWriter{w: bufio.NewWriter(rec), rc: http.NewResponseController(rec), timeout: time.Second}
			if err := tc.write(e); err != nil {
				t.Fatal(err)
			}
			if err := e.flush(); err != nil {
				t.Fatal(err)
			}
			if got := rec.Body.String(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSSEConnQueue: the sink's queue is bounded (Send fails when full,
// counted as a queue drop), SendWait waits for room, and after Close both
// refuse; the first close code wins.
func TestSSEConnQueue(t *testing.T) {
	s := &Server{metrics: NewMetrics()}
	c := &sseConn{outbox: newOutbox(2, s.metrics.queueDrops, true), s: s}
	if !c.Send([]byte("1")) || !c.Send([]byte("2")) || c.Send([]byte("3")) {
		t.Fatal("queue of 2 did not refuse the third frame")
	}
	waited := make(chan error, 1)
	go func() { waited <- c.SendWait(context.Background(), []byte("3")) }()
	c.take(nil, 1, 0) // room for the waiting frame
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.SendWait(ctx, []byte("4")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendWait on a full queue: %v", err)
	}
	c.Close(4009, "slow consumer")
	c.Close(1001, "later")
	if c.Send([]byte("5")) || c.SendWait(context.Background(), []byte("5")) != errConnClosing || c.code != 4009 {
		t.Fatalf("after close: code %d", c.code)
	}
}

// discardWriter is a ResponseWriter that drops the body, for benchmarks.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// SetWriteDeadline is what http.ResponseController finds on a real
// response.
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkSSEEvent measures writing and flushing one message event on an
// event stream: the per-message path allocates nothing.
func BenchmarkSSEEvent(b *testing.B) {
	w := &discardWriter{h: http.Header{}}
	e := &sseWriter{w: bufio.NewWriterSize(w, 4096), rc: http.NewResponseController(w), timeout: time.Second}
	f := []byte(`{"type":"message","conv":"c_9f2","seq":43,"sender":"bob","client_msg_id":"b-19","body":"hey","ts":1763710000456}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if e.data(f) != nil || e.flush() != nil {
			b.Fatal("write failed")
		}
	}
}
