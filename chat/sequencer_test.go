package chat

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestSequencerOrder runs appends that take seqs in ticket order but
// complete in random order, and checks deliveries come out ascending.
func TestSequencerOrder(t *testing.T) {
	q := newSequencer()
	var (
		mu        sync.Mutex
		next      int64 = 1 // the "store": seqs assigned in commit order
		delivered []int64
		wg        sync.WaitGroup
	)
	const n = 300
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := q.begin("c")
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			mu.Lock()
			seq := next
			next++
			mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			if seq%17 == 0 { // a failed append gives up its place
				q.done(tk, 0, nil)
				return
			}
			q.done(tk, seq, func() { delivered = append(delivered, seq) }) // runs under the key lock
		}()
	}
	wg.Wait()
	if len(delivered) != n-n/17 {
		t.Fatalf("delivered %d, want %d", len(delivered), n-n/17)
	}
	for i := 1; i < len(delivered); i++ {
		if delivered[i] <= delivered[i-1] {
			t.Fatalf("out of order at %d: %v", i, delivered[max(0, i-3):i+1])
		}
	}
	if len(q.keys) != 0 {
		t.Fatalf("sequencer kept %d idle keys", len(q.keys))
	}
}

// TestSequencerGap: a seq taken by another node never arrives here; the
// local one after it must not wait for it.
func TestSequencerGap(t *testing.T) {
	q := newSequencer()
	var got []int64
	tk := q.begin("c")
	q.done(tk, 5, func() { got = append(got, 5) })
	tk = q.begin("c")
	q.done(tk, 7, func() { got = append(got, 7) }) // 6 was appended elsewhere
	if len(got) != 2 || got[0] != 5 || got[1] != 7 {
		t.Fatalf("got %v, want [5 7]", got)
	}
}

// TestSequencerHoldsForInflight: a higher seq completing first waits for
// the append that was in flight when it committed.
func TestSequencerHoldsForInflight(t *testing.T) {
	q := newSequencer()
	var got []int64
	a := q.begin("c")
	b := q.begin("c")
	q.done(b, 2, func() { got = append(got, 2) })
	if len(got) != 0 {
		t.Fatalf("seq 2 delivered before the in-flight append finished: %v", got)
	}
	q.done(a, 1, func() { got = append(got, 1) })
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("got %v, want [1 2]", got)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	tests := []struct {
		kind        byte
		origin, key string
		seq         int64
		frame       string
	}{
		{kindMessage, "sess1", "conv1", 42, `{"type":"message"}`},
		{kindEvent, "", "", 0, `{}`},
		{kindChannel, "", "news:x", 1 << 40, ``},
	}
	for _, tt := range tests {
		p := appendEnvelope(nil, tt.kind, tt.origin, tt.key, tt.seq, []byte(tt.frame))
		e, ok := parseEnvelope(p)
		if !ok || e.kind != tt.kind || string(e.origin) != tt.origin || string(e.key) != tt.key || e.seq != tt.seq || string(e.frame) != tt.frame {
			t.Fatalf("round trip of %+v = %+v, %v", tt, e, ok)
		}
		for i := 0; i < len(p)-len(tt.frame); i++ { // truncations never panic
			parseEnvelope(p[:i])
		}
	}
	if _, ok := parseEnvelope([]byte{'x', 0, 0, 0}); ok {
		t.Fatal("unknown kind accepted")
	}
}
