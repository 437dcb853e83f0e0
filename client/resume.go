package client

import (
	"sync"

	"github.com/duplexhq/duplex/protocol"
)

// tracker holds, per conversation, the highest seq delivered with nothing
// missing before it, and messages held back behind a gap. The connection's
// reader goroutine updates it; Seqs reads it from other goroutines.
type tracker struct {
	mu      sync.Mutex // Seqs reads from other goroutines
	held    map[string]int64
	waiting map[string]map[int64]*protocol.Message
	limit   int
}

func newTracker(seqs map[string]int64) *tracker {
	t := &tracker{held: make(map[string]int64), waiting: make(map[string]map[int64]*protocol.Message), limit: 10000}
	for k, v := range seqs {
		t.held[k] = v
	}
	return t
}

// welcome returns the conversations to sync and from which seq. A
// conversation never seen starts at its last seq unless fromStart is set.
// The welcome lists every conversation of the user: one it does not list
// the user was removed from while away, and is forgotten.
func (t *tracker) welcome(convs []protocol.Conversation, fromStart bool) map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	listed := make(map[string]bool, len(convs))
	for _, c := range convs {
		listed[c.ID] = true
	}
	for id := range t.held {
		if !listed[id] {
			delete(t.held, id)
			delete(t.waiting, id)
		}
	}
	syncs := make(map[string]int64)
	for _, c := range convs {
		held, ok := t.held[c.ID]
		switch {
		case !ok && fromStart:
			t.held[c.ID] = 0
			if c.LastSeq > 0 {
				syncs[c.ID] = 0
			}
		case !ok:
			t.held[c.ID] = c.LastSeq
		case c.LastSeq > held:
			syncs[c.ID] = held
		}
	}
	return syncs
}

// forget drops a conversation the user was removed from.
func (t *tracker) forget(conv string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.held, conv)
	delete(t.waiting, conv)
}

// track starts a conversation that appeared after the welcome.
func (t *tracker) track(conv string, seq int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.held[conv]; !ok {
		t.held[conv] = seq
	}
}

// accept appends to deliver the messages to deliver now, in order (m and
// any held back behind it), and reports whether a sync is needed from
// gapAfter (gap true). deliver is the caller's reused slice, so the usual
// case (the next seq, nothing held back) allocates nothing.
func (t *tracker) accept(m *protocol.Message, deliver []*protocol.Message) (_ []*protocol.Message, gapAfter int64, gap bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	held, ok := t.held[m.Conv]
	if !ok {
		held = m.Seq - 1
	}
	if m.Seq <= held {
		return deliver, 0, false
	}
	if m.Seq > held+1 {
		w := t.waiting[m.Conv]
		if w == nil {
			w = make(map[int64]*protocol.Message)
			t.waiting[m.Conv] = w
		}
		if len(w) < t.limit {
			w[m.Seq] = m
		}
		t.held[m.Conv] = held
		return deliver, held, true
	}
	deliver = append(deliver, m)
	held = m.Seq
	if w := t.waiting[m.Conv]; w != nil {
		for {
			next, ok := w[held+1]
			if !ok {
				break
			}
			deliver = append(deliver, next)
			delete(w, held+1)
			held++
		}
		for s := range w {
			if s <= held {
				delete(w, s)
			}
		}
		if len(w) == 0 {
			delete(t.waiting, m.Conv)
		}
	}
	t.held[m.Conv] = held
	return deliver, 0, false
}

func (t *tracker) hasGap(conv string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.waiting[conv]) > 0
}

func (t *tracker) seq(conv string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held[conv]
}

func (t *tracker) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.held))
	for k, v := range t.held {
		out[k] = v
	}
	return out
}
