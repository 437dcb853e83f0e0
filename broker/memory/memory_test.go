package memory

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/broker"
)

var ctx = context.Background()

// collector records deliveries and lets a test wait for a count.
type collector struct {
	mu   sync.Mutex
	got  []string
	cond *sync.Cond
}

func newCollector() *collector {
	c := &collector{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *collector) handle(subject string, data []byte) {
	c.mu.Lock()
	c.got = append(c.got, subject+":"+string(data))
	c.mu.Unlock()
	c.cond.Broadcast()
}

// wait returns the deliveries once there are n, failing after a generous
// deadline (a hang, not a timing assertion).
func (c *collector) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.AfterFunc(10*time.Second, func() { c.cond.Broadcast() })
	defer deadline.Stop()
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.got) < n {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("got %d deliveries, want %d: %v", len(c.got), n, c.got)
		}
		c.cond.Wait()
	}
	return slices.Clone(c.got)
}

func mustSubscribe(t *testing.T, b *Broker, subject string, h broker.Handler) func() {
	t.Helper()
	cancel, err := b.Subscribe(subject, h)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", subject, err)
	}
	return cancel
}

func newBroker(t *testing.T, opts Options) *Broker {
	b := New(opts)
	t.Cleanup(func() { b.Close() })
	return b
}

func TestRouting(t *testing.T) {
	b := newBroker(t, Options{})
	a1, a2, other := newCollector(), newCollector(), newCollector()
	mustSubscribe(t, b, "conv.a", a1.handle)
	mustSubscribe(t, b, "conv.a", a2.handle)
	mustSubscribe(t, b, "conv.b", other.handle)
	for _, p := range []struct{ subject, data string }{
		{"conv.a", "1"}, {"conv.b", "2"}, {"conv.c", "nobody listens"}, {"conv.a", "3"},
	} {
		if err := b.Publish(ctx, p.subject, []byte(p.data)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"conv.a:1", "conv.a:3"}
	for i, c := range []*collector{a1, a2} {
		if got := c.wait(t, 2); !slices.Equal(got, want) {
			t.Errorf("subscriber %d of conv.a got %v, want %v", i, got, want)
		}
	}
	if got := other.wait(t, 1); !slices.Equal(got, []string{"conv.b:2"}) {
		t.Errorf("conv.b subscriber got %v", got)
	}
}

func TestOrderPerPublisher(t *testing.T) {
	b := newBroker(t, Options{QueueLen: 4096})
	const publishers, each = 4, 500
	var mu sync.Mutex
	last := make([]int, publishers)
	for i := range last {
		last[i] = -1
	}
	var errs []string
	done := make(chan struct{})
	received := 0
	mustSubscribe(t, b, "s", func(_ string, data []byte) {
		p, n := int(data[0]), int(binary.BigEndian.Uint32(data[1:]))
		mu.Lock()
		defer mu.Unlock()
		if n != last[p]+1 {
			errs = append(errs, fmt.Sprintf("publisher %d: got %d after %d", p, n, last[p]))
		}
		last[p] = n
		if received++; received == publishers*each {
			close(done)
		}
	})
	publishNumbered(t, b, publishers, each)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("received %d of %d", received, publishers*each)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
	if st := b.Stats(); st.Dropped != 0 || st.Published != publishers*each {
		t.Errorf("Stats = %+v, want %d published and none dropped", st, publishers*each)
	}
}

func TestSlowSubscriberDropsAlone(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	b := newBroker(t, Options{QueueLen: 2, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))})
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := newCollector()
	mustSubscribe(t, b, "s", func(subject string, data []byte) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		slow.handle(subject, data)
	})
	fast := newCollector()
	mustSubscribe(t, b, "s", fast.handle)
	publish := func(data string) {
		t.Helper()
		if err := b.Publish(ctx, "s", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	publish("0")
	<-entered // the slow handler now holds "0"; its queue takes two more
	const more = 40
	for i := 1; i <= more; i++ {
		publish(fmt.Sprint(i))
		fast.wait(t, i+1) // the fast subscriber is never held back
	}
	if st := b.Stats(); st.Dropped != more-2 || st.Published != more+1 {
		t.Errorf("Stats = %+v, want %d published, %d dropped", st, more+1, more-2)
	}
	close(release)
	if got, want := slow.wait(t, 3), []string{"s:0", "s:1", "s:2"}; !slices.Equal(got, want) {
		t.Errorf("slow subscriber got %v, want %v", got, want)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "payload dropped") {
		t.Errorf("drops were not logged: %q", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestCancel(t *testing.T) {
	b := newBroker(t, Options{})
	c := newCollector()
	cancel := mustSubscribe(t, b, "s", c.handle)
	var selfCanceled int
	var selfCancel func()
	ran := make(chan struct{}, 3)
	selfCancel = mustSubscribe(t, b, "s", func(string, []byte) {
		selfCanceled++
		selfCancel() // cancel from inside the handler must not deadlock
		ran <- struct{}{}
	})
	if err := b.Publish(ctx, "s", []byte("1")); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 1)
	// Its own goroutine may not have taken "1" yet; Close would discard
	// it then, and the count below would say nothing about cancelling.
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("self-canceling handler never ran")
	}
	cancel()
	cancel() // idempotent
	if err := b.Publish(ctx, "s", []byte("2")); err != nil {
		t.Fatal(err)
	}
	probe := newCollector()
	mustSubscribe(t, b, "s", probe.handle)
	if err := b.Publish(ctx, "s", []byte("3")); err != nil {
		t.Fatal(err)
	}
	probe.wait(t, 1) // a later subscriber saw "3", so "2" and "3" were processed
	b.Close()
	if got := c.wait(t, 1); len(got) != 1 {
		t.Errorf("canceled subscriber got %v, want only the first payload", got)
	}
	if selfCanceled != 1 {
		t.Errorf("self-canceling handler ran %d times, want 1", selfCanceled)
	}
}

func TestClosed(t *testing.T) {
	b := New(Options{})
	c := newCollector()
	mustSubscribe(t, b, "s", c.handle)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Publish(ctx, "s", []byte("x")); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe("s", c.handle); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestInvalid(t *testing.T) {
	b := newBroker(t, Options{})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"publish empty subject", b.Publish(ctx, "", nil), ErrEmptySubject},
		{"publish canceled", b.Publish(canceled, "s", nil), context.Canceled},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := b.Subscribe("", func(string, []byte) {}); !errors.Is(err, ErrEmptySubject) {
		t.Errorf("subscribe empty subject: %v", err)
	}
	if _, err := b.Subscribe("s", nil); err == nil {
		t.Error("subscribe with nil handler succeeded")
	}
}

// TestConcurrentChurn publishes while subscriptions come and go; run with
// -race it checks the copy-on-write subscriber lists and payload pooling.
func TestConcurrentChurn(t *testing.T) {
	b := newBroker(t, Options{QueueLen: 8, Logger: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := range 4 {
		wg.Go(func() {
			buf := []byte("payload")
			for {
				select {
				case <-stop:
					return
				default:
				}
				buf[0] = byte(p)
				if err := b.Publish(ctx, fmt.Sprint("s", p%2), buf); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 200 {
		cancel := mustSubscribe(t, b, fmt.Sprint("s", i%2), func(_ string, data []byte) {
			if len(data) != 7 || string(data[1:]) != "ayload" {
				t.Errorf("corrupt payload %q", data)
			}
		})
		if i%3 != 0 {
			cancel()
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkPublish(b *testing.B) {
	for _, subs := range []int{1, 8} {
		b.Run(fmt.Sprint(subs, "subs"), func(b *testing.B) {
			br := New(Options{QueueLen: 1 << 16})
			defer br.Close()
			for range subs {
				if _, err := br.Subscribe("conv.x", func(string, []byte) {}); err != nil {
					b.Fatal(err)
				}
			}
			data := []byte(`{"type":"message","conv":"c_1","seq":42,"body":"hello"}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Publish(ctx, "conv.x", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSubscribeSync checks the inline subscription: each payload is
// delivered before Publish returns, in order, beside a queued subscriber
// of the same subject, never dropped however small the queues, and a
// handler may cancel itself and publish from inside the call.
func TestSubscribeSync(t *testing.T) {
	b := newBroker(t, Options{QueueLen: 1, Logger: slog.New(slog.DiscardHandler)})
	var got []string // written by the handler on this goroutine only
	cancel, err := b.SubscribeSync("s", func(subject string, data []byte) {
		got = append(got, subject+":"+string(data))
	})
	if err != nil {
		t.Fatal(err)
	}
	queued := newCollector()
	mustSubscribe(t, b, "s", queued.handle)
	const n = 100
	for i := range n {
		if err := b.Publish(ctx, "s", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if len(got) != i+1 || got[i] != fmt.Sprintf("s:%d", i) {
			t.Fatalf("after Publish %d the inline handler has %v", i, got)
		}
	}
	queued.wait(t, 1) // the queued subscriber is served as before (and may drop)

	cancel()
	cancel() // idempotent
	if err := b.Publish(ctx, "s", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("canceled inline handler got %v", got[n:])
	}

	// From inside the handler: publishing (to another subject) and
	// cancelling must not deadlock.
	other := newCollector()
	otherCancel, err := b.SubscribeSync("t", other.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer otherCancel()
	var calls int
	var self func()
	self, err = b.SubscribeSync("u", func(string, []byte) {
		calls++
		if err := b.Publish(ctx, "t", []byte("relayed")); err != nil {
			t.Error(err)
		}
		self()
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Publish(ctx, "u", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("self-canceling inline handler ran %d times, want 1", calls)
	}
	if got := other.wait(t, 1); !slices.Equal(got, []string{"t:relayed"}) {
		t.Errorf("relayed = %v", got)
	}
	if st := b.Stats(); st.Published != n+1+2+1 {
		t.Errorf("Stats = %+v, want %d published", st, n+1+2+1)
	}

	b.Close()
	if _, err := b.SubscribeSync("s", func(string, []byte) {}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("SubscribeSync after Close: %v, want broker.ErrClosed", err)
	}
}

// TestSubscribeSyncConcurrent publishes from many goroutines to inline
// and queued subscribers at once (for the race detector) and checks that
// every payload reaches the inline one exactly once, each publisher's in
// order.
func TestSubscribeSyncConcurrent(t *testing.T) {
	b := newBroker(t, Options{QueueLen: 4, Logger: slog.New(slog.DiscardHandler)})
	const publishers, each = 8, 500
	var mu sync.Mutex
	last := make([]int, publishers)
	for i := range last {
		last[i] = -1
	}
	var total int
	if _, err := b.SubscribeSync("s", func(_ string, data []byte) {
		p, i := int(data[0]), int(binary.BigEndian.Uint32(data[1:]))
		mu.Lock()
		defer mu.Unlock()
		if i != last[p]+1 {
			t.Errorf("publisher %d: got %d after %d", p, i, last[p])
		}
		last[p] = i
		total++
	}); err != nil {
		t.Fatal(err)
	}
	mustSubscribe(t, b, "s", func(string, []byte) {})
	publishNumbered(t, b, publishers, each)
	if total != publishers*each {
		t.Errorf("inline handler got %d payloads, want %d", total, publishers*each)
	}
}

// publishNumbered publishes each payloads to "s" from each of publishers
// goroutines and returns when all are published: payload i of publisher p
// is the byte p and i as a big-endian uint32.
func publishNumbered(t *testing.T, b *Broker, publishers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			buf := make([]byte, 5) // reused: Publish must copy
			for i := range each {
				buf[0] = byte(p)
				binary.BigEndian.PutUint32(buf[1:], uint32(i))
				if err := b.Publish(ctx, "s", buf); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
