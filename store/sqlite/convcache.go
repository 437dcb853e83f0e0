package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
)

// convState is what Append needs to know about a conversation, kept by the
// writer between appends so the hot path runs one INSERT instead of three
// statements. Only the writer appends and changes membership, so the
// cache stays exact as long as the writer drops it whenever SQLite might
// disagree: after a batch is rolled back (forgetAll) and after a
// membership change (forget). That is also why one database file must be
// written by one Store only.
type convState struct {
	id      string
	lastSeq int64           // the newest message's seq, this batch's appends included
	senders map[string]bool // user -> member, as far as looked up
}

// convCacheMax bounds the cache; past it the writer starts over, which
// costs one lookup per conversation and sender.
const convCacheMax = 100_000

// conv returns the state of convID, loading it on first use (its newest
// seq, read inside the writer's transaction, so counting this batch's
// appends); nil if the conversation does not exist.
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

// forget drops what is cached about convID (its membership changed).
func (w *writer) forget(convID string) {
	delete(w.convs, convID)
}

// forgetAll drops the whole cache (after a rollback, or when too large).
func (w *writer) forgetAll() {
	clear(w.convs)
}
