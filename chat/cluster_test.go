package chat

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	brokermem "github.com/duplexhq/duplex/broker/memory"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/store/sqlite"
)

// TestTwoNodes runs two services on one store, broker and presence
// registry, as two nodes of a cluster: delivery, receipts and presence
// cross nodes through the broker alone.
func TestTwoNodes(t *testing.T) {
	nodes := twoNodeEnvs(t, Config{PresenceGrace: -1})
	alice := nodes[0].connect("alice")
	conv := alice.group("g", "bob")
	bob := nodes[1].connect("bob")
	alice.sink.waitFor(t, "bob online", func(fs []map[string]any) bool { return len(presenceEvents(fs, "bob")) == 1 })
	bobA := nodes[0].connect("bob") // bob's second device, on the other node
	for i := 0; i < 5; i++ {
		alice.send(conv, fmt.Sprint(i), "x")
	}
	for _, c := range []*client{bob, bobA} {
		if got := seqs(c.sink.waitCount(t, "message", 5), conv); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
			t.Fatalf("cross-node delivery %v", got)
		}
	}
	bob.must("read", map[string]any{"conv": conv, "seq": 5})
	alice.sink.waitCount(t, "receipt", 1)
	bobA.sink.waitCount(t, "receipt", 1)
	bob.close()
	bobA.close()
	alice.sink.waitFor(t, "bob offline", func(fs []map[string]any) bool { return len(presenceEvents(fs, "bob")) == 2 })
}

// TestDeliveredCursor: the delivered cursor follows live delivery and sync,
// written in batches.
func TestDeliveredCursor(t *testing.T) {
	e := newEnv(t, Config{DeliveredFlush: 5 * time.Millisecond})
	alice, bob := e.connect("alice"), e.connect("bob")
	conv := alice.direct("bob")
	for i := 0; i < 3; i++ {
		alice.send(conv, fmt.Sprint(i), "x")
	}
	bob.sink.waitCount(t, "message", 3)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ucs, err := e.svc.Conversations(context.Background(), Identity{UserID: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ucs) == 1 && ucs[0].DeliveredSeq == 3 && ucs[0].ReadSeq == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered cursor not flushed: %+v", ucs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recMetrics counts what the service reports.
type recMetrics struct {
	mu                    sync.Mutex
	in, out, acks, delivs int
	store                 map[string]int
}

func (m *recMetrics) MessageIn()                  { m.mu.Lock(); m.in++; m.mu.Unlock() }
func (m *recMetrics) MessageOut()                 { m.mu.Lock(); m.out++; m.mu.Unlock() }
func (m *recMetrics) SendToAck(time.Duration)     { m.mu.Lock(); m.acks++; m.mu.Unlock() }
func (m *recMetrics) SendToDeliver(time.Duration) { m.mu.Lock(); m.delivs++; m.mu.Unlock() }
func (m *recMetrics) Drop(string)                 {}
func (m *recMetrics) StoreLatency(op string, _ time.Duration) {
	m.mu.Lock()
	m.store[op]++
	m.mu.Unlock()
}

func TestMetrics(t *testing.T) {
	m := &recMetrics{store: map[string]int{}}
	e := newEnv(t, Config{Metrics: m})
	alice, bob1, bob2 := e.connect("alice"), e.connect("bob"), e.connect("bob")
	conv := alice.direct("bob")
	alice.send(conv, "1", "x")
	alice.send(conv, "1", "x") // duplicate: not counted in
	bob1.sink.waitCount(t, "message", 1)
	bob2.sink.waitCount(t, "message", 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.in != 1 || m.out != 2 || m.acks != 1 || m.delivs != 1 || m.store["Append"] != 2 {
		t.Fatalf("metrics in=%d out=%d acks=%d delivers=%d store=%v", m.in, m.out, m.acks, m.delivs, m.store)
	}
}

// twoNodes starts two Services with cfg on one store, broker and presence
// registry, as two nodes of a cluster, and closes everything when the test
// ends.
func twoNodes(t *testing.T, cfg Config) [2]*Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "duplex.db")})
	if err != nil {
		t.Fatal(err)
	}
	br, pr := brokermem.New(brokermem.Options{}), presencemem.New(presencemem.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes [2]*Service
	for i := range nodes {
		if nodes[i], err = New(cfg, st, br, pr, log); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		nodes[0].Close()
		nodes[1].Close()
		br.Close()
		pr.Close()
		st.Close()
	})
	return nodes
}

// twoNodeEnvs is twoNodes wrapped in the test env of this package.
func twoNodeEnvs(t *testing.T, cfg Config) [2]*env {
	svcs := twoNodes(t, cfg)
	return [2]*env{{t: t, svc: svcs[0]}, {t: t, svc: svcs[1]}}
}
