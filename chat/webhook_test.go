package chat

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingMetrics records drops for the webhook tests.
type countingMetrics struct {
	NopMetrics
	mu    sync.Mutex
	drops map[string]int
}

func (m *countingMetrics) Drop(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drops[reason]++
}

func (m *countingMetrics) count(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drops[reason]
}

// TestWebhookOffline: a message for an offline member is POSTed, signed,
// and retried after a failure; online members are not included.
func TestWebhookOffline(t *testing.T) {
	const secret = "s3cret"
	var calls atomic.Int32
	got := make(chan WebhookNotification, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(Sign(secret, body))) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // first try fails
			return
		}
		var n WebhookNotification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		got <- n
	}))
	defer srv.Close()
	e := newEnv(t, Config{Webhook: Webhook{URL: srv.URL, Secret: secret, Backoff: time.Millisecond, Workers: 1}})
	alice := e.connect("alice")
	e.connect("carol")
	conv := alice.group("g", "bob", "carol") // bob offline, carol online
	seq := alice.send(conv, "w1", "wake up")
	select {
	case n := <-got:
		if n.Event != "message.offline" || len(n.Users) != 1 || n.Users[0] != "bob" || n.Conv != conv ||
			n.Seq != seq || n.Sender != "alice" || n.Body != "wake up" || n.Attempt != 2 {
			t.Fatalf("notification %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook notification")
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls, want 2 (one retry)", calls.Load())
	}
}

// TestWebhookGivesUpAndDrops: permanent failures are counted after the
// last attempt; a full queue drops (counted) without blocking sends.
func TestWebhookGivesUpAndDrops(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusBadRequest) // not retried
	}))
	defer srv.Close()
	defer close(release)
	m := &countingMetrics{drops: map[string]int{}}
	e := newEnv(t, Config{Metrics: m, RatePerSecond: 1e6, RateBurst: 1e6,
		Webhook: Webhook{URL: srv.URL, Secret: "k", QueueSize: 1, Workers: 1, Timeout: 5 * time.Second}})
	alice := e.connect("alice")
	conv := alice.direct("bob")
	for i := 0; i < 5; i++ { // one in flight, one queued, the rest dropped
		alice.send(conv, string(rune('a'+i)), "x")
	}
	if d := m.count("webhook_queue"); d < 2 {
		t.Fatalf("queue drops %d, want at least 2", d)
	}
	release <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for m.count("webhook_failed") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a 400 was not counted as failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = context.Background
}
