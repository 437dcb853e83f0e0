package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/broker"
	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/hub"
)

// recorder is a Conn that records payloads.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Deliver(p []byte) {
	r.mu.Lock()
	r.got = append(r.got, string(p))
	r.mu.Unlock()
}

func (r *recorder) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d payloads, want %d: %v", len(got), n, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newHub(t *testing.T) (*hub.Hub, *brokermem.Broker) {
	br := brokermem.New(brokermem.Options{})
	h := hub.New(br, nil)
	t.Cleanup(func() { h.Close(); br.Close() })
	return h, br
}

func TestRouting(t *testing.T) {
	h, br := newHub(t)
	ctx := context.Background()
	a1, a2, b := &recorder{}, &recorder{}, &recorder{}
	for _, j := range []struct {
		subject string
		c       hub.Conn
	}{{hub.UserSubject("alice"), a1}, {hub.UserSubject("alice"), a2}, {hub.UserSubject("bob"), b}} {
		if _, err := h.Join(j.subject, j.c, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Count(hub.UserSubject("alice")); n != 2 {
		t.Fatalf("Count = %d", n)
	}
	br.Publish(ctx, hub.UserSubject("alice"), []byte("to alice"))
	br.Publish(ctx, hub.UserSubject("bob"), []byte("to bob"))
	if got := a1.wait(t, 1); got[0] != "to alice" {
		t.Fatalf("a1 got %v", got)
	}
	a2.wait(t, 1)
	if got := b.wait(t, 1); got[0] != "to bob" {
		t.Fatalf("b got %v", got)
	}
	// After Leave, a1 gets nothing more; a2 still does.
	h.Leave(hub.UserSubject("alice"), a1)
	h.Leave(hub.UserSubject("alice"), a1) // idempotent
	br.Publish(ctx, hub.UserSubject("alice"), []byte("second"))
	a2.wait(t, 2)
	if got := a1.wait(t, 1); len(got) != 1 {
		t.Fatalf("a1 got %v after leaving", got)
	}
	// The last one out unsubscribes; rejoining subscribes again.
	h.Leave(hub.UserSubject("alice"), a2)
	if n := h.Count(hub.UserSubject("alice")); n != 0 {
		t.Fatalf("Count after leaving = %d", n)
	}
	h.Join(hub.UserSubject("alice"), a1, 0)
	br.Publish(ctx, hub.UserSubject("alice"), []byte("third"))
	if got := a1.wait(t, 2); got[1] != "third" {
		t.Fatalf("a1 got %v", got)
	}
}

func TestJoinLimit(t *testing.T) {
	h, _ := newHub(t)
	s := hub.ChannelSubject("news:x")
	for i := 0; i < 2; i++ {
		if _, err := h.Join(s, &recorder{}, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Join(s, &recorder{}, 2); !errors.Is(err, hub.ErrFull) {
		t.Fatalf("third Join = %v, want ErrFull", err)
	}
	h.Close()
	if _, err := h.Join("x", &recorder{}, 0); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Join after Close = %v", err)
	}
}

// leaver leaves its subject from inside Deliver, as a session closing on a
// full queue would: this must not deadlock.
type leaver struct {
	h       *hub.Hub
	subject string
	n       atomic.Int32
}

func (l *leaver) Deliver([]byte) {
	l.n.Add(1)
	l.h.Leave(l.subject, l)
}

func TestLeaveFromDeliver(t *testing.T) {
	h, br := newHub(t)
	l := &leaver{h: h, subject: "user.x"}
	h.Join(l.subject, l, 0)
	r := &recorder{}
	h.Join(l.subject, r, 0)
	br.Publish(context.Background(), l.subject, []byte("a"))
	r.wait(t, 1)
	if l.n.Load() != 1 {
		t.Fatalf("leaver delivered %d times", l.n.Load())
	}
}

// TestConcurrentJoinLeave exercises the routing table under the race
// detector while events flow.
func TestConcurrentJoinLeave(t *testing.T) {
	h, br := newHub(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			br.Publish(context.Background(), fmt.Sprint("s", i%4), []byte("x"))
		}
	}()
	var joiners sync.WaitGroup
	for g := 0; g < 4; g++ {
		joiners.Add(1)
		go func() {
			defer joiners.Done()
			for i := 0; i < 200; i++ {
				r := &recorder{}
				s := fmt.Sprint("s", (g+i)%4)
				h.Join(s, r, 0)
				h.Leave(s, r)
			}
		}()
	}
	joiners.Wait()
	close(stop)
	wg.Wait()
}

// asyncOnly hides the memory broker's SubscribeSync, as a networked
// broker would: it embeds the interface, not *brokermem.Broker, whose
// SubscribeSync would be promoted.
type asyncOnly struct{ broker.Broker }

// TestSyncDelivery checks that the hub subscribes inline when the broker
// can (the event has reached the connections when Publish returns) and
// still routes through a broker that cannot.
func TestSyncDelivery(t *testing.T) {
	ctx := context.Background()
	h, br := newHub(t)
	c1, c2 := &recorder{}, &recorder{}
	for _, c := range []*recorder{c1, c2} {
		if _, err := h.Join(hub.UserSubject("alice"), c, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := br.Publish(ctx, hub.UserSubject("alice"), []byte("e1")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*recorder{c1, c2} {
		c.mu.Lock()
		got := fmt.Sprint(c.got)
		c.mu.Unlock()
		if got != "[e1]" {
			t.Errorf("right after Publish a connection holds %s, want [e1]", got)
		}
	}

	br2 := brokermem.New(brokermem.Options{})
	if _, ok := any(asyncOnly{br2}).(interface {
		SubscribeSync(string, broker.Handler) (func(), error)
	}); ok {
		t.Fatal("asyncOnly still offers SubscribeSync")
	}
	h2 := hub.New(asyncOnly{br2}, nil)
	defer func() { h2.Close(); br2.Close() }()
	c3 := &recorder{}
	if _, err := h2.Join(hub.UserSubject("bob"), c3, 0); err != nil {
		t.Fatal(err)
	}
	if err := br2.Publish(ctx, hub.UserSubject("bob"), []byte("e2")); err != nil {
		t.Fatal(err)
	}
	if got := c3.wait(t, 1); fmt.Sprint(got) != "[e2]" {
		t.Errorf("through an asynchronous broker: %v", got)
	}
}
