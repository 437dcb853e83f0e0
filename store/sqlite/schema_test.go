package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexhq/duplex/store"
)

func rawConn(t *testing.T) *sql.Conn {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func tableExists(t *testing.T, conn *sql.Conn, name string) bool {
	t.Helper()
	var n int
	if err := conn.QueryRowContext(context.Background(),
		"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	list := []string{
		"CREATE TABLE one (x INTEGER)",
		"CREATE TABLE two (y INTEGER); INSERT INTO two VALUES (2)",
		"CREATE TABLE three (z INTEGER); THIS IS NOT SQL",
	}
	conn := rawConn(t)
	steps := []struct {
		name    string
		list    []string
		wantErr string
		version int
		tables  map[string]bool
	}{
		{"first", list[:1], "", 1, map[string]bool{"one": true, "two": false}},
		{"again is a no-op", list[:1], "", 1, map[string]bool{"one": true, "two": false}},
		{"next", list[:2], "", 2, map[string]bool{"one": true, "two": true}},
		// A failing migration leaves no trace: neither its table nor its version.
		{"broken", list, "migration 3", 2, map[string]bool{"two": true, "three": false}},
		{"newer database", list[:1], "newer than this binary", 2, map[string]bool{"two": true}},
	}
	for _, st := range steps {
		err := migrate(ctx, conn, st.list, slog.New(slog.DiscardHandler))
		if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
			t.Fatalf("%s: migrate = %v, want error containing %q", st.name, err, st.wantErr)
		}
		v, err := schemaVersion(ctx, conn)
		if err != nil || v != st.version {
			t.Errorf("%s: version %d, %v; want %d", st.name, v, err, st.version)
		}
		for table, want := range st.tables {
			if got := tableExists(t, conn, table); got != want {
				t.Errorf("%s: table %s exists = %v, want %v", st.name, table, got, want)
			}
		}
	}
	var rows int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM schema_version").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("schema_version has %d rows, %v; want one per applied migration (2)", rows, err)
	}
}

func TestOpenRecordsSchemaVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	for range 2 { // the second Open finds the schema current
		s, err := Open(ctx, Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := s.read.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&v); err != nil || v != len(migrations) {
			t.Errorf("schema version %d, %v; want %d", v, err, len(migrations))
		}
		var mode string
		if err := s.read.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cases := []struct {
		name string
		opts Options
	}{
		{"no path", Options{}},
		{"uri", Options{Path: "file:x.db"}},
		{"query in path", Options{Path: filepath.Join(dir, "a?mode=memory")}},
		{"memory", Options{Path: ":memory:"}},
		{"unknown durability", Options{Path: filepath.Join(dir, "b.db"), Durability: "paranoid"}},
		{"missing directory", Options{Path: filepath.Join(dir, "no", "such", "dir", "c.db")}},
	}
	for _, tc := range cases {
		if s, err := Open(ctx, tc.opts); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tc.name)
		}
	}
}

// TestMigrateFromV1: a database written before migration 2 (last_seq and
// last_at stored in conversations) opens with its sequence numbers,
// activity order and idempotency keys intact, and appends continue from
// its newest seq.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, migrations[:1], slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	// Two conversations of a and b: "old" has 3 messages, "new" (created
	// earlier, active later) has 2.
	for _, q := range []string{
		`INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_at, direct_key)
			VALUES ('old', 'group', 't', 'a', 100, 3, 300, NULL), ('new', 'group', 't', 'a', 50, 2, 400, NULL)`,
		`INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES
			('old', 'a', 'owner', 100), ('old', 'b', 'member', 100), ('new', 'a', 'owner', 50), ('new', 'b', 'member', 50)`,
		`INSERT INTO messages (conversation_id, seq, sender, client_msg_id, body, created_at) VALUES
			('old', 1, 'a', 'o1', 'x', 100), ('old', 2, 'a', 'o2', 'x', 200), ('old', 3, 'b', '', 'x', 300),
			('new', 1, 'a', 'n1', 'x', 350), ('new', 2, 'a', 'n2', 'x', 400)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	db.Close()

	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range map[string]int64{"old": 3, "new": 2} {
		if c, err := s.Conversation(ctx, id); err != nil || c.LastSeq != want {
			t.Errorf("conversation %s: LastSeq %d, %v; want %d", id, c.LastSeq, err, want)
		}
	}
	ucs, err := s.Conversations(ctx, "b")
	if err != nil || len(ucs) != 2 || ucs[0].ID != "new" || ucs[0].LastSeq != 2 || ucs[1].LastSeq != 3 || ucs[1].Unread != 2 {
		t.Errorf("Conversations(b) = %+v, %v; want new (LastSeq 2) then old (LastSeq 3, 2 unread)", ucs, err)
	}
	if m, dup, err := s.Append(ctx, store.NewMessage{ConversationID: "old", Sender: "a", ClientMsgID: "o2", Body: "x"}); err != nil || !dup || m.Seq != 2 {
		t.Errorf("retry of o2 = seq %d dup %v, %v; want seq 2 dup", m.Seq, dup, err)
	}
	if m, dup, err := s.Append(ctx, store.NewMessage{ConversationID: "old", Sender: "a", ClientMsgID: "o4", Body: "x"}); err != nil || dup || m.Seq != 4 {
		t.Errorf("new append = seq %d dup %v, %v; want seq 4", m.Seq, dup, err)
	}
	if got, err := s.MarkRead(ctx, "b", "old", 99); err != nil || got != 4 {
		t.Errorf("MarkRead clamped to %d, %v; want 4", got, err)
	}
}

// TestClientIDIndex: the idempotency lookup is one search of the client-id
// index, which is keyed by the id first (migration 3), so that
// time-ordered ids from every sender append at one end of it.
func TestClientIDIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "i.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.read.QueryContext(ctx, "SELECT name FROM pragma_index_info('messages_by_client_id') ORDER BY seqno")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cols, ","); got != "client_msg_id,conversation_id,sender" {
		t.Errorf("messages_by_client_id columns = %s, want client_msg_id,conversation_id,sender", got)
	}
	var id, parent, unused int
	var plan string
	if err := s.read.QueryRowContext(ctx, `EXPLAIN QUERY PLAN SELECT seq, body FROM messages
		WHERE client_msg_id = 'x' AND conversation_id = 'c' AND sender = 'a' AND client_msg_id <> ''`).Scan(&id, &parent, &unused, &plan); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "INDEX messages_by_client_id (client_msg_id=? AND conversation_id=? AND sender=?)") {
		t.Errorf("duplicate lookup plan = %q, want a search of messages_by_client_id on all three columns", plan)
	}
}
