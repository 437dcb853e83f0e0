package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// migrations is the schema history, applied in order. Entry i brings the
// database to version i+1. Never edit an applied entry: append a new one.
var migrations = []string{
	// 1: conversations, members with cursors, messages, channel history.
	`
CREATE TABLE conversations (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
	title      TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,          -- unix nanoseconds, UTC
	last_seq   INTEGER NOT NULL DEFAULT 0,
	last_at    INTEGER NOT NULL,          -- newest activity, for ordering
	direct_key TEXT UNIQUE                -- the unordered user pair; NULL for groups
) WITHOUT ROWID;

CREATE TABLE members (
	conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL,
	role            TEXT NOT NULL CHECK (role IN ('owner', 'member')),
	joined_at       INTEGER NOT NULL,
	delivered_seq   INTEGER NOT NULL DEFAULT 0,
	read_seq        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id, conversation_id);

-- No foreign key on messages: Append inserts from a SELECT on the
-- conversation row, which already guarantees it exists, and the FK check
-- would cost a second lookup on the hottest statement.
CREATE TABLE messages (
	conversation_id TEXT NOT NULL,
	seq             INTEGER NOT NULL,
	sender          TEXT NOT NULL,
	client_msg_id   TEXT NOT NULL DEFAULT '',
	body            TEXT NOT NULL,
	meta            BLOB,
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_client_id
	ON messages (conversation_id, sender, client_msg_id) WHERE client_msg_id <> '';

CREATE TABLE channels (
	name     TEXT PRIMARY KEY,
	last_pos INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE channel_messages (
	channel    TEXT NOT NULL,
	pos        INTEGER NOT NULL,
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (channel, pos)
);
`,
	// 2: a conversation's newest seq and activity time are read from its
	// newest message instead of being written to its row by every batch of
	// appends (a row rewrite and a WAL page per conversation per batch).
	// last_seq always equalled MAX(seq) of the conversation's messages
	// (both were written in the same transaction), so nothing is lost.
	`
ALTER TABLE conversations DROP COLUMN last_seq;
ALTER TABLE conversations DROP COLUMN last_at;
`,
	// 3: the client-id index is keyed by client_msg_id first. It is the
	// same uniqueness constraint (the same three columns), but the bundled
	// clients send time-ordered ids (UUIDv7), so every new entry from every
	// sender now lands at the right-hand end of one B-tree instead of in
	// one leaf page per conversation: a batch of appends dirties a few
	// index pages instead of one per message, each a 4 KiB WAL frame.
	// Random ids cost what they did before (one leaf page each).
	`
DROP INDEX messages_by_client_id;
CREATE UNIQUE INDEX messages_by_client_id
	ON messages (client_msg_id, conversation_id, sender) WHERE client_msg_id <> '';
`,
}

// migrate brings the database on conn up to len(list), one transaction per
// migration, recording each in schema_version. A database newer than list
// is refused rather than guessed at: an older binary must not write to a
// schema it does not know. Upgrades of an existing database are logged
// with their duration: one may rebuild an index over every message.
func migrate(ctx context.Context, conn *sql.Conn, list []string, log *slog.Logger) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: create schema_version: %w", err)
	}
	current, err := schemaVersion(ctx, conn)
	if err != nil {
		return err
	}
	if current > len(list) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this binary knows (%d)", current, len(list))
	}
	level := slog.LevelInfo
	if current == 0 {
		level = slog.LevelDebug // a new database
	}
	for i := current; i < len(list); i++ {
		log.Log(ctx, level, "sqlite: migrating schema", "from", i, "to", i+1)
		start := time.Now()
		if err := applyMigration(ctx, conn, i+1, list[i]); err != nil {
			return err
		}
		log.Log(ctx, level, "sqlite: schema migrated", "version", i+1, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, version int, ddl string) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: migration %d: begin: %w", version, err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", version, err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
		version, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: migration %d: record version: %w", version, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: migration %d: commit: %w", version, err)
	}
	return nil
}

func schemaVersion(ctx context.Context, conn *sql.Conn) (int, error) {
	var v int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	return v, nil
}
