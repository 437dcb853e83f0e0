package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/duplexhq/duplex/store"
)

// Append implements store.Store. The message is queued to the writer and
// committed together with whatever else is waiting (group commit).
func (s *Store) Append(ctx context.Context, m store.NewMessage) (store.Message, bool, error) {
	if m.ConversationID == "" || m.Sender == "" {
		return store.Message{}, false, fmt.Errorf("sqlite: append: %w: empty conversation or sender", store.ErrInvalid)
	}
	if err := checkMeta(m.Meta); err != nil {
		return store.Message{}, false, err
	}
	r := requestPool.Get().(*request)
	r.ctx, r.msg = ctx, m
	if answered, err := s.w.do(ctx, r); err != nil {
		if answered {
			r.reset()
			requestPool.Put(r)
		}
		return store.Message{}, false, err
	}
	msg, dup := r.out, r.dup
	r.reset()
	requestPool.Put(r)
	return msg, dup, nil
}

// checkMeta accepts an absent Meta or a JSON object.
func checkMeta(meta json.RawMessage) error {
	if len(meta) == 0 {
		return nil
	}
	if t := bytes.TrimLeft(meta, " \t\r\n"); len(t) == 0 || t[0] != '{' || !json.Valid(meta) {
		return fmt.Errorf("sqlite: append: %w: meta is not a JSON object", store.ErrInvalid)
	}
	return nil
}

// appendOne runs inside the writer's transaction. It returns an error only
// for SQLite failures that doom the whole batch; outcomes for the caller go
// in r.err.
func (w *writer) appendOne(r *request) error {
	m := &r.msg
	cs, err := w.conv(m.ConversationID)
	if err != nil {
		return err
	}
	if cs == nil {
		r.err = fmt.Errorf("sqlite: append to %q: %w", m.ConversationID, store.ErrNotFound)
		return nil
	}
	switch ok, err := w.mayAppend(cs, m.Sender); {
	case err != nil:
		return err
	case !ok:
		// A sender removed after sending still gets its retry answered.
		if found, err := w.findDuplicate(r); found || err != nil {
			return err
		}
		r.err = fmt.Errorf("sqlite: append to %q by %q: %w", m.ConversationID, m.Sender, store.ErrNotMember)
		return nil
	}
	t := now()
	var meta any // NULL when absent, so it reads back as nil
	if len(m.Meta) > 0 {
		meta = []byte(m.Meta)
	}
	seq := cs.lastSeq + 1
	res, err := w.insertMsg.ExecContext(bg, m.ConversationID, seq, m.Sender, m.ClientMsgID, m.Body, meta, t.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: append: insert: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// The client ID is taken: this is a retry.
		if found, err := w.findDuplicate(r); found || err != nil {
			return err
		}
		return fmt.Errorf("sqlite: append to %q: insert ignored without a duplicate", m.ConversationID)
	}
	w.wrote(capKey{name: m.ConversationID}, cs.lastSeq, seq)
	cs.lastSeq = seq
	r.out = store.Message{ConversationID: m.ConversationID, Seq: seq, Sender: m.Sender,
		ClientMsgID: m.ClientMsgID, Body: m.Body, Meta: m.Meta, CreatedAt: t}
	return nil
}

// findDuplicate looks for the message r retries and, if found, makes it
// r's answer.
func (w *writer) findDuplicate(r *request) (found bool, err error) {
	m := &r.msg
	if m.ClientMsgID == "" {
		return false, nil
	}
	var seq, at int64
	var body string
	var meta []byte
	err = w.findDup.QueryRowContext(bg, m.ClientMsgID, m.ConversationID, m.Sender).Scan(&seq, &body, &meta, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sqlite: append: find duplicate: %w", err)
	}
	r.out = store.Message{ConversationID: m.ConversationID, Seq: seq, Sender: m.Sender,
		ClientMsgID: m.ClientMsgID, Body: body, Meta: meta, CreatedAt: fromNanos(at)}
	r.dup = true
	return true, nil
}

// whyNotMember explains why userID may not write to convID: ErrNotFound
// or ErrNotMember (first result), or an SQLite failure (second).
func (w *writer) whyNotMember(convID, userID string) (reason, fatal error) {
	var kind string
	err := w.convExists.QueryRowContext(bg, convID).Scan(&kind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound, nil
	case err != nil:
		return nil, fmt.Errorf("sqlite: look up conversation: %w", err)
	}
	switch ok, err := w.isMember(convID, userID); {
	case err != nil:
		return nil, fmt.Errorf("sqlite: look up member: %w", err)
	case ok:
		// The caller's write matched no row although userID is a member
		// (and, for Append, no duplicate exists): the schema should make
		// this impossible, so fail loudly rather than misreport.
		return nil, fmt.Errorf("sqlite: write to %q by member %q matched nothing", convID, userID)
	}
	return store.ErrNotMember, nil
}

// reset clears a request before it returns to the pool, so the pool does
// not pin message bodies or contexts.
func (r *request) reset() {
	done := r.done
	*r = request{done: done}
}

const messageColumns = "seq, sender, client_msg_id, body, meta, created_at"

// MessagesAfter implements store.Store.
func (s *Store) MessagesAfter(ctx context.Context, convID string, after int64, limit int) ([]store.Message, error) {
	return s.messages(ctx, "SELECT "+messageColumns+
		" FROM messages WHERE conversation_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?", convID, after, limit)
}

// MessagesBefore implements store.Store.
func (s *Store) MessagesBefore(ctx context.Context, convID string, before int64, limit int) ([]store.Message, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	return s.messages(ctx, "SELECT "+messageColumns+
		" FROM messages WHERE conversation_id = ? AND seq < ? AND seq <= ? ORDER BY seq DESC LIMIT ?", convID, before, limit)
}

// messages runs query with convID, bound, the highest seq readers may see
// (see readCap) and limit.
func (s *Store) messages(ctx context.Context, query, convID string, bound int64, limit int) ([]store.Message, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	if convID == "" || limit < 1 {
		return nil, fmt.Errorf("sqlite: messages: %w: empty conversation or limit < 1", store.ErrInvalid)
	}
	st, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, convID, bound, s.visibleUpTo(capKey{name: convID}), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: messages of %q: %w", convID, err)
	}
	defer rows.Close()
	var out []store.Message
	for rows.Next() {
		m := store.Message{ConversationID: convID}
		var at int64
		var meta []byte
		if err := rows.Scan(&m.Seq, &m.Sender, &m.ClientMsgID, &m.Body, &meta, &at); err != nil {
			return nil, fmt.Errorf("sqlite: messages of %q: %w", convID, err)
		}
		m.Meta, m.CreatedAt = meta, fromNanos(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: messages of %q: %w", convID, err)
	}
	if len(out) == 0 {
		// Distinguish an empty page from a conversation that never existed.
		if _, err := s.Conversation(ctx, convID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MarkDelivered implements store.Store.
func (s *Store) MarkDelivered(ctx context.Context, userID, convID string, seq int64) (int64, error) {
	return s.mark(ctx, userID, convID, seq, `UPDATE members
		SET delivered_seq = MAX(delivered_seq, MIN(?1, `+lastSeqOfParam+`))
		WHERE conversation_id = ?2 AND user_id = ?3 RETURNING delivered_seq`)
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, userID, convID string, seq int64) (int64, error) {
	// In an UPDATE every right-hand side sees the old row, so the new
	// delivered cursor is computed from the same clamped target.
	return s.mark(ctx, userID, convID, seq, `UPDATE members
		SET read_seq = MAX(read_seq, MIN(?1, `+lastSeqOfParam+`)),
		    delivered_seq = MAX(delivered_seq, read_seq, MIN(?1, `+lastSeqOfParam+`))
		WHERE conversation_id = ?2 AND user_id = ?3 RETURNING read_seq`)
}

// deliveredChunk bounds the cursors MarkDeliveredBatch applies in one
// writer request, and cursorsPerAppend is how many of them weigh as much
// as one append in the writer's batches (request.weight): BenchmarkMarkDeliveredBatch
// measures about 4.5 µs per sorted cursor, an append costs the writer 40-60.
// A transaction thus holds at most about MaxBatch appends' worth of work
// (4,096 cursors, ~20 ms), so a large flush cannot hold up the appends
// queued beside it for long, while a usual one (a few thousand cursors)
// rides along in one or two commits instead of adding commits of its own:
// at DurabilityFull every commit is an fsync, which is what limits appends.
const (
	deliveredChunk   = 256
	cursorsPerAppend = 8
)

// MarkDeliveredBatch implements store.Store. The cursors are sorted in key
// order, so that a chunk updates a few adjacent pages of the members table
// rather than one page per cursor, and all chunks are queued at once: one
// wait in the writer's queue for the whole batch, which matters when
// appends keep that queue long.
func (s *Store) MarkDeliveredBatch(ctx context.Context, cursors []store.DeliveredCursor) error {
	if len(cursors) == 0 {
		return nil
	}
	// A copy: the caller's slice stays as it was, and the chunks the
	// writer may still hold after ctx ends are ours alone.
	cursors = slices.Clone(cursors)
	slices.SortFunc(cursors, func(a, b store.DeliveredCursor) int {
		if c := strings.Compare(a.ConversationID, b.ConversationID); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	n := (len(cursors) + deliveredChunk - 1) / deliveredChunk
	fns := make([]func(w *writer) error, 0, n)
	weights := make([]int, 0, n)
	for len(cursors) > 0 {
		chunk := cursors[:min(len(cursors), deliveredChunk)]
		cursors = cursors[len(chunk):]
		fns = append(fns, func(w *writer) error { return w.markDelivered(chunk) })
		weights = append(weights, max(1, len(chunk)/cursorsPerAppend))
	}
	if err := s.w.execWeighted(ctx, fns, weights); err != nil {
		return fmt.Errorf("sqlite: mark delivered (batch): %w", err)
	}
	return nil
}

// markDelivered applies cursors, skipping those that match no membership.
// The clamp to LastSeq uses the writer's conversation cache, and a row is
// only written if its cursor moves, so re-applying a flush costs no page
// writes.
func (w *writer) markDelivered(cursors []store.DeliveredCursor) error {
	st, err := w.stmt(`UPDATE members SET delivered_seq = ?1
		WHERE conversation_id = ?2 AND user_id = ?3 AND delivered_seq < ?1`)
	if err != nil {
		return err
	}
	for _, c := range cursors {
		if c.UserID == "" || c.ConversationID == "" || c.Seq <= 0 {
			continue
		}
		cs, err := w.conv(c.ConversationID)
		if err != nil {
			return err
		}
		if cs == nil {
			continue // no such conversation
		}
		seq := min(c.Seq, cs.lastSeq)
		if seq <= 0 {
			continue
		}
		// A non-member matches no row: nothing to do, as documented.
		if _, err := st.ExecContext(bg, seq, c.ConversationID, c.UserID); err != nil {
			return fmt.Errorf("sqlite: update delivered cursor: %w", err)
		}
	}
	return nil
}

// lastSeqOfParam is lastSeqOf for the conversation bound to ?2. The
// writer runs it inside its transaction, so it counts the appends of the
// current batch too.
const lastSeqOfParam = "COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.conversation_id = ?2), 0)"

func (s *Store) mark(ctx context.Context, userID, convID string, seq int64, query string) (int64, error) {
	if userID == "" || convID == "" {
		return 0, fmt.Errorf("sqlite: mark: %w: empty user or conversation", store.ErrInvalid)
	}
	var cur int64
	err := s.w.exec(ctx, func(w *writer) error {
		err := w.queryRow(query, []any{seq, convID, userID}, &cur)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		reason, err := w.whyNotMember(convID, userID)
		if err != nil {
			return err
		}
		return fmt.Errorf("sqlite: mark %q in %q: %w", userID, convID, reason)
	})
	return cur, err
}
