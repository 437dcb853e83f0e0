package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/duplexhq/duplex/store"
)

// conversationColumns selects a conversation row (from conversations c).
// last_seq is the newest message's seq: only the writer appends, and in
// the same transaction, so it is exact in any snapshot.
const conversationColumns = "c.id, c.kind, c.title, c.created_by, c.created_at, " + lastSeqOf

// lastSeqOf is the seq of conversation c's newest message, 0 if none: one
// seek to the end of its range of the messages primary key.
const lastSeqOf = "COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.conversation_id = c.id), 0)"

// directKey identifies the unordered pair {a, b}. The length prefix keeps
// pairs distinct whatever bytes the user IDs contain.
func directKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return strconv.Itoa(len(a)) + ":" + a + b
}

// CreateDirect implements store.Store.
func (s *Store) CreateDirect(ctx context.Context, a, b string) (store.Conversation, error) {
	if a == "" || b == "" || a == b {
		return store.Conversation{}, fmt.Errorf("sqlite: create direct %q-%q: %w: need two distinct users", a, b, store.ErrInvalid)
	}
	if err := s.readable(); err != nil {
		return store.Conversation{}, err
	}
	key := directKey(a, b)
	// Almost always the pair already has its conversation: answer from a
	// reader without queueing behind writes.
	st, err := s.readStmt(ctx, "SELECT "+conversationColumns+" FROM conversations c WHERE c.direct_key = ?")
	if err != nil {
		return store.Conversation{}, err
	}
	c, err := scanConversation(st.QueryRowContext(ctx, key))
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return c, wrap(err, "create direct")
	}
	err = s.w.exec(ctx, func(w *writer) error {
		st, err := w.stmt("SELECT " + conversationColumns + " FROM conversations c WHERE c.direct_key = ?")
		if err != nil {
			return err
		}
		c, err = scanConversation(st.QueryRowContext(bg, key))
		if !errors.Is(err, store.ErrNotFound) {
			return err // found (a racing call created it) or failed
		}
		t := now()
		c = store.Conversation{ID: newID(), Kind: store.KindDirect, CreatedBy: a, CreatedAt: t}
		if err := w.insertConversation(c, key); err != nil {
			return err
		}
		for _, u := range []string{a, b} {
			if err := w.insertMember(c.ID, u, store.RoleMember, t, 0); err != nil {
				return err
			}
		}
		return nil
	})
	return c, wrap(err, "create direct")
}

// CreateGroup implements store.Store.
func (s *Store) CreateGroup(ctx context.Context, owner, title string, members []string) (store.Conversation, error) {
	if owner == "" || slices.Contains(members, "") {
		return store.Conversation{}, fmt.Errorf("sqlite: create group: %w: empty user ID", store.ErrInvalid)
	}
	others := slices.Clone(members)
	slices.Sort(others)
	others = slices.Compact(others)
	if i := slices.Index(others, owner); i >= 0 {
		others = slices.Delete(others, i, i+1)
	}
	var c store.Conversation
	err := s.w.exec(ctx, func(w *writer) error {
		t := now()
		c = store.Conversation{ID: newID(), Kind: store.KindGroup, Title: title, CreatedBy: owner, CreatedAt: t}
		if err := w.insertConversation(c, ""); err != nil {
			return err
		}
		if err := w.insertMember(c.ID, owner, store.RoleOwner, t, 0); err != nil {
			return err
		}
		for _, u := range others {
			if err := w.insertMember(c.ID, u, store.RoleMember, t, 0); err != nil {
				return err
			}
		}
		return nil
	})
	return c, wrap(err, "create group")
}

func (w *writer) insertConversation(c store.Conversation, directKey string) error {
	var key any // NULL for groups: the unique index ignores NULLs
	if directKey != "" {
		key = directKey
	}
	_, err := w.execStmt(`INSERT INTO conversations (id, kind, title, created_by, created_at, direct_key)
		VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, string(c.Kind), c.Title, c.CreatedBy, c.CreatedAt.UnixNano(), key)
	return err
}

func (w *writer) insertMember(convID, userID string, role store.Role, t time.Time, cursor int64) error {
	_, err := w.execStmt(`INSERT INTO members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq)
		VALUES (?, ?, ?, ?, ?, ?)`, convID, userID, string(role), t.UnixNano(), cursor, cursor)
	return err
}

// groupFor checks, inside the writer, that convID is a group.
func (w *writer) groupFor(convID string) (lastSeq int64, err error) {
	var kind string
	err = w.queryRow("SELECT c.kind, "+lastSeqOf+" FROM conversations c WHERE c.id = ?", []any{convID}, &kind, &lastSeq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, store.ErrNotFound
	case err != nil:
		return 0, err
	case store.Kind(kind) != store.KindGroup:
		return 0, fmt.Errorf("%w: %s is a direct conversation", store.ErrConflict, convID)
	}
	return lastSeq, nil
}

func (w *writer) isMember(convID, userID string) (bool, error) {
	var one int
	err := w.memberExists.QueryRowContext(bg, convID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// AddMember implements store.Store.
func (s *Store) AddMember(ctx context.Context, convID, userID string, role store.Role) error {
	if convID == "" || userID == "" || (role != store.RoleOwner && role != store.RoleMember) {
		return fmt.Errorf("sqlite: add member: %w: empty ID or unknown role %q", store.ErrInvalid, role)
	}
	err := s.w.execFor(ctx, convID, func(w *writer) error {
		lastSeq, err := w.groupFor(convID)
		if err != nil {
			return err
		}
		switch ok, err := w.isMember(convID, userID); {
		case err != nil:
			return err
		case ok:
			return fmt.Errorf("%w: %s is already a member", store.ErrConflict, userID)
		}
		return w.insertMember(convID, userID, role, now(), lastSeq)
	})
	return wrap(err, "add member to "+convID)
}

// RemoveMember implements store.Store.
func (s *Store) RemoveMember(ctx context.Context, convID, userID string) error {
	if convID == "" || userID == "" {
		return fmt.Errorf("sqlite: remove member: %w: empty ID", store.ErrInvalid)
	}
	err := s.w.execFor(ctx, convID, func(w *writer) error {
		if _, err := w.groupFor(convID); err != nil {
			return err
		}
		res, err := w.execStmt("DELETE FROM members WHERE conversation_id = ? AND user_id = ?", convID, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmpOr(err, store.ErrNotMember)
		}
		return nil
	})
	return wrap(err, "remove member from "+convID)
}

// Conversation implements store.Store.
func (s *Store) Conversation(ctx context.Context, convID string) (store.Conversation, error) {
	if err := s.readable(); err != nil {
		return store.Conversation{}, err
	}
	st, err := s.readStmt(ctx, "SELECT "+conversationColumns+" FROM conversations c WHERE c.id = ?")
	if err != nil {
		return store.Conversation{}, err
	}
	c, err := scanConversation(st.QueryRowContext(ctx, convID))
	if visible, ok := s.readCap(capKey{name: convID}); ok && c.LastSeq > visible {
		c.LastSeq = visible
	}
	return c, wrap(err, "conversation "+convID)
}

// Members implements store.Store, in joining order.
func (s *Store) Members(ctx context.Context, convID string) ([]store.Member, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	st, err := s.readStmt(ctx, `SELECT user_id, role, joined_at FROM members
		WHERE conversation_id = ? ORDER BY joined_at, user_id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, convID)
	if err != nil {
		return nil, wrap(err, "members of "+convID)
	}
	defer rows.Close()
	var out []store.Member
	for rows.Next() {
		m := store.Member{ConversationID: convID}
		var role string
		var at int64
		if err := rows.Scan(&m.UserID, &role, &at); err != nil {
			return nil, wrap(err, "members of "+convID)
		}
		m.Role, m.JoinedAt = store.Role(role), fromNanos(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "members of "+convID)
	}
	if len(out) == 0 {
		if _, err := s.Conversation(ctx, convID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Conversations implements store.Store. Both queries run in one read
// transaction so members, their read cursors and the user's cursors come
// from the same snapshot.
func (s *Store) Conversations(ctx context.Context, userID string) ([]store.UserConversation, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err, "conversations of "+userID)
	}
	defer tx.Rollback()
	// Most recently active first: the newest message's time, or the
	// conversation's creation for one without messages.
	rows, err := tx.QueryContext(ctx, `SELECT `+conversationColumns+`,
			m.role, m.delivered_seq, m.read_seq,
			(SELECT count(*) FROM messages x
				WHERE x.conversation_id = c.id AND x.seq > m.read_seq AND x.sender <> m.user_id)
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.user_id = ?
		ORDER BY COALESCE((SELECT x.created_at FROM messages x WHERE x.conversation_id = c.id
			ORDER BY x.seq DESC LIMIT 1), c.created_at) DESC, c.id`, userID)
	if err != nil {
		return nil, wrap(err, "conversations of "+userID)
	}
	var out []store.UserConversation
	index := make(map[string]int)
	for rows.Next() {
		var uc store.UserConversation
		var kind, role string
		var at int64
		if err := rows.Scan(&uc.ID, &kind, &uc.Title, &uc.CreatedBy, &at, &uc.LastSeq,
			&role, &uc.DeliveredSeq, &uc.ReadSeq, &uc.Unread); err != nil {
			rows.Close()
			return nil, wrap(err, "conversations of "+userID)
		}
		uc.Kind, uc.Role, uc.CreatedAt = store.Kind(kind), store.Role(role), fromNanos(at)
		index[uc.ID] = len(out)
		out = append(out, uc)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, wrap(err, "conversations of "+userID)
	}
	rows.Close()
	for i := range out {
		if err := s.capUnread(ctx, tx, userID, &out[i]); err != nil {
			return nil, wrap(err, "conversations of "+userID)
		}
	}
	rows, err = tx.QueryContext(ctx, `SELECT o.conversation_id, o.user_id, o.read_seq
		FROM members m JOIN members o ON o.conversation_id = m.conversation_id
		WHERE m.user_id = ? ORDER BY o.conversation_id, o.user_id`, userID)
	if err != nil {
		return nil, wrap(err, "conversation members of "+userID)
	}
	defer rows.Close()
	for rows.Next() {
		var convID, member string
		var read int64
		if err := rows.Scan(&convID, &member, &read); err != nil {
			return nil, wrap(err, "conversation members of "+userID)
		}
		if i, ok := index[convID]; ok {
			uc := &out[i]
			uc.Members = append(uc.Members, member)
			if uc.Reads == nil {
				uc.Reads = make(map[string]int64)
			}
			uc.Reads[member] = read
		}
	}
	return out, wrap(rows.Err(), "conversation members of "+userID)
}

// Contacts implements store.Store, sorted by user ID.
func (s *Store) Contacts(ctx context.Context, userID string) ([]string, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	st, err := s.readStmt(ctx, `SELECT DISTINCT o.user_id
		FROM members m JOIN members o ON o.conversation_id = m.conversation_id
		WHERE m.user_id = ?1 AND o.user_id <> ?1 ORDER BY o.user_id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, userID)
	if err != nil {
		return nil, wrap(err, "contacts of "+userID)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, wrap(err, "contacts of "+userID)
		}
		out = append(out, u)
	}
	return out, wrap(rows.Err(), "contacts of "+userID)
}

// capUnread hides from uc the messages readers may not see yet (see
// readCap): its LastSeq, the unread count and the user's cursors end
// before them (a member added meanwhile starts its cursors at the
// writer's LastSeq).
func (s *Store) capUnread(ctx context.Context, tx *sql.Tx, userID string, uc *store.UserConversation) error {
	visible, ok := s.readCap(capKey{name: uc.ID})
	if !ok || uc.LastSeq <= visible {
		return nil
	}
	var hidden int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM messages
		WHERE conversation_id = ? AND seq > ? AND seq <= ? AND sender <> ?`,
		uc.ID, max(visible, uc.ReadSeq), uc.LastSeq, userID).Scan(&hidden); err != nil {
		return err
	}
	uc.LastSeq, uc.Unread = visible, max(0, uc.Unread-hidden)
	uc.DeliveredSeq, uc.ReadSeq = min(uc.DeliveredSeq, visible), min(uc.ReadSeq, visible)
	return nil
}

func scanConversation(row *sql.Row) (store.Conversation, error) {
	var c store.Conversation
	var kind string
	var at int64
	err := row.Scan(&c.ID, &kind, &c.Title, &c.CreatedBy, &at, &c.LastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Conversation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Conversation{}, err
	}
	c.Kind, c.CreatedAt = store.Kind(kind), fromNanos(at)
	return c, nil
}

// wrap adds the engine and operation to err (nil stays nil), keeping the
// sentinel in the chain for errors.Is.
func wrap(err error, op string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
