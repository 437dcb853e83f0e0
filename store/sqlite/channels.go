package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/duplexhq/duplex/store"
)

// ChannelAppend implements store.Store. Trimming to keep happens in the
// same transaction, so the history never holds more than keep entries.
func (s *Store) ChannelAppend(ctx context.Context, channel string, data json.RawMessage, keep int) (store.ChannelMessage, error) {
	if channel == "" || keep < 1 || !json.Valid(data) {
		return store.ChannelMessage{}, fmt.Errorf("sqlite: channel append: %w: empty channel, keep < 1 or data not JSON", store.ErrInvalid)
	}
	cm := store.ChannelMessage{Channel: channel, Data: data}
	err := s.w.exec(ctx, func(w *writer) error {
		cm.CreatedAt = now()
		if err := w.queryRow(`INSERT INTO channels (name, last_pos) VALUES (?, 1)
			ON CONFLICT (name) DO UPDATE SET last_pos = last_pos + 1 RETURNING last_pos`,
			[]any{channel}, &cm.Offset); err != nil {
			return err
		}
		if _, err := w.execStmt("INSERT INTO channel_messages (channel, pos, data, created_at) VALUES (?, ?, ?, ?)",
			channel, cm.Offset, []byte(data), cm.CreatedAt.UnixNano()); err != nil {
			return err
		}
		if _, err := w.execStmt("DELETE FROM channel_messages WHERE channel = ? AND pos <= ?", channel, cm.Offset-int64(keep)); err != nil {
			return err
		}
		w.wrote(capKey{channel: true, name: channel}, cm.Offset-1, cm.Offset)
		return nil
	})
	return cm, wrap(err, "channel append to "+channel)
}

// ChannelAfter implements store.Store.
func (s *Store) ChannelAfter(ctx context.Context, channel string, after int64, limit int) ([]store.ChannelMessage, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	if channel == "" || limit < 1 {
		return nil, fmt.Errorf("sqlite: channel history: %w: empty channel or limit < 1", store.ErrInvalid)
	}
	st, err := s.readStmt(ctx, "SELECT pos, data, created_at FROM channel_messages WHERE channel = ? AND pos > ? AND pos <= ? ORDER BY pos LIMIT ?")
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, channel, after, s.visibleUpTo(capKey{channel: true, name: channel}), limit)
	if err != nil {
		return nil, wrap(err, "channel history of "+channel)
	}
	defer rows.Close()
	var out []store.ChannelMessage
	for rows.Next() {
		cm := store.ChannelMessage{Channel: channel}
		var data []byte
		var at int64
		if err := rows.Scan(&cm.Offset, &data, &at); err != nil {
			return nil, wrap(err, "channel history of "+channel)
		}
		cm.Data, cm.CreatedAt = data, fromNanos(at)
		out = append(out, cm)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "channel history of "+channel)
	}
	if len(out) == 0 {
		var last int64
		err := s.read.QueryRowContext(ctx, "SELECT last_pos FROM channels WHERE name = ?", channel).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: channel %q: %w", channel, store.ErrNotFound)
		}
		if err != nil {
			return nil, wrap(err, "channel history of "+channel)
		}
	}
	return out, nil
}
