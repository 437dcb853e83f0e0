package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
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
		err := migrate(ctx, conn, st.list)
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
