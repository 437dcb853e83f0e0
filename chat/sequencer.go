package chat

import (
	"slices"
	"sync"
)

// sequencer releases the deliveries of one key (a conversation, or a
// channel with history) in seq order although the appends that assigned the
// seqs complete concurrently and in any order.
//
// Every append takes a ticket before calling the store. When an append
// completes with seq s, only appends that were already in flight can still
// produce a seq below s (an append that starts after s committed gets a
// higher one), so s waits until either it is the next expected seq or
// every ticket issued up to its completion has finished. Waits are bounded
// by the store calls in flight; gaps left by other nodes or failed appends
// do not stall delivery.
//
// Lock order: sequencer.mu, then seqKey.mu. Deliveries run under
// seqKey.mu, which is what keeps them in order.
type sequencer struct {
	mu   sync.Mutex
	keys map[string]*seqKey
}

type seqKey struct {
	refs int // tickets not yet done; guarded by sequencer.mu

	mu       sync.Mutex
	issued   uint64   // last ticket issued
	inflight []uint64 // tickets not done, ascending
	next     int64    // seq expected next, 0 if unknown
	pending  []pendingDelivery
}

type pendingDelivery struct {
	seq     int64
	wait    uint64 // tickets up to this one must finish first
	deliver func()
}

// ticket is one append's place in line.
type ticket struct {
	key string
	k   *seqKey
	n   uint64
}

func newSequencer() *sequencer { return &sequencer{keys: make(map[string]*seqKey)} }

// begin takes a ticket for an append to key; done must follow.
func (q *sequencer) begin(key string) ticket {
	q.mu.Lock()
	k := q.keys[key]
	if k == nil {
		k = seqKeyPool.Get().(*seqKey)
		q.keys[key] = k
	}
	k.refs++
	q.mu.Unlock()

	k.mu.Lock()
	k.issued++
	n := k.issued
	k.inflight = append(k.inflight, n)
	k.mu.Unlock()
	return ticket{key: key, k: k, n: n}
}

// done finishes t. With seq > 0 deliver runs, under the key's lock, once
// every lower seq this node knows of has been delivered; seq 0 (failed or
// duplicate append) only gives up the place in line.
func (q *sequencer) done(t ticket, seq int64, deliver func()) {
	k := t.k
	k.mu.Lock()
	if i := slices.Index(k.inflight, t.n); i >= 0 {
		k.inflight = slices.Delete(k.inflight, i, i+1)
	}
	if seq > 0 && len(k.pending) == 0 && (seq == k.next || len(k.inflight) == 0) {
		// Nothing waits and nothing before seq can still come: the usual
		// case, delivered without queueing. (The loop below would deliver
		// it too, after an Insert into pending.)
		deliver()
		k.next = seq + 1
	} else if seq > 0 {
		i, _ := slices.BinarySearchFunc(k.pending, seq, func(p pendingDelivery, s int64) int {
			switch {
			case p.seq < s:
				return -1
			case p.seq > s:
				return 1
			}
			return 0
		})
		k.pending = slices.Insert(k.pending, i, pendingDelivery{seq: seq, wait: k.issued, deliver: deliver})
	}
	for len(k.pending) > 0 {
		p := k.pending[0]
		if p.seq != k.next && len(k.inflight) > 0 && k.inflight[0] <= p.wait {
			break
		}
		k.pending[0] = pendingDelivery{}
		k.pending = k.pending[1:]
		p.deliver()
		k.next = p.seq + 1
	}
	k.mu.Unlock()

	q.mu.Lock()
	free := false
	if k.refs--; k.refs == 0 {
		delete(q.keys, t.key)
		free = true
	}
	q.mu.Unlock()
	if free {
		// Out of the map with no ticket left, nothing refers to k: reuse
		// it (and its slices) for the next key that starts from idle.
		*k = seqKey{inflight: k.inflight[:0], pending: k.pending[:0]}
		seqKeyPool.Put(k)
	}
}

// seqKeyPool recycles the state of keys gone idle: most appends find
// their conversation idle, and would otherwise allocate it afresh.
var seqKeyPool = sync.Pool{New: func() any { return new(seqKey) }}
