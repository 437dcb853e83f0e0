package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
)

// convState is what Append needs to know about a conversation, kept by the
// writer between appends so the hot path runs one INSERT instead of three
// statements. Only the writer changes last_seq and membership, so the
// cache stays exact as long as the writer drops it whenever SQLite might
// disagree: after a batch is rolled back (forgetAll) and after a
// membership change (forget). That is also why one database file must be
// written by one Store only.
type convState struct {
	id      string
	lastSeq int64 // including appends of the current batch not yet flushed
	lastAt  int64
	dirty   bool            // lastSeq/lastAt not yet written to conversations
	senders map[string]bool // user -> member, as far as looked up
}

// convCacheMax bounds the cache; past it the writer starts over, which
// costs one lookup per conversation and sender.
const convCacheMax = 100_000

// conv returns the state of convID, loading it on first use; nil if the
// conversation does not exist.
func (w *writer) conv(convID string) (*convState, error) {
	if cs, ok := w.convs[convID]; ok {
		return cs, nil
	}
	cs := &convState{id: convID}
	err := w.readSeq.QueryRowContext(bg, convID).Scan(&cs.lastSeq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("sqlite: read last seq: %w", err)
	}
	w.convs[convID] = cs
	return cs, nil
}

// mayAppend reports whether sender is a member of cs.
func (w *writer) mayAppend(cs *convState, sender string) (bool, error) {
	if ok, known := cs.senders[sender]; known {
		return ok, nil
	}
	ok, err := w.isMember(cs.id, sender)
	if err != nil {
		return false, fmt.Errorf("sqlite: look up member: %w", err)
	}
	if cs.senders == nil {
		cs.senders = make(map[string]bool)
	}
	cs.senders[sender] = ok
	return ok, nil
}

// advance records an append to cs, to be written by flush.
func (w *writer) advance(cs *convState, at int64) {
	cs.lastSeq++
	cs.lastAt = at
	if !cs.dirty {
		cs.dirty = true
		w.dirty = append(w.dirty, cs)
	}
}

// flush writes the last_seq and last_at of every conversation appended to
// since the last flush: once per conversation per batch, and before any
// other write, which may read them (cursor clamping, new members' cursors).
func (w *writer) flush() error {
	for i, cs := range w.dirty {
		if _, err := w.setSeq.ExecContext(bg, cs.lastSeq, cs.lastAt, cs.id); err != nil {
			return fmt.Errorf("sqlite: advance last_seq: %w", err)
		}
		cs.dirty = false
		w.dirty[i] = nil
	}
	w.dirty = w.dirty[:0]
	return nil
}

// forget drops what is cached about convID (its membership changed).
func (w *writer) forget(convID string) {
	if cs, ok := w.convs[convID]; ok && !cs.dirty {
		delete(w.convs, convID)
	} else if ok {
		cs.senders = nil // keep the unflushed seq; only membership is stale
	}
}

// forgetAll drops the whole cache (after a rollback, or when too large).
func (w *writer) forgetAll() {
	clear(w.convs)
	clear(w.dirty)
	w.dirty = w.dirty[:0]
}
