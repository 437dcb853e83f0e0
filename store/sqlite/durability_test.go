package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/duplexhq/duplex/store"
	"github.com/duplexhq/duplex/store/sqlite"
)

// TestReopen: what was committed is there after Close and Open.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: fmt.Sprint(i), Body: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, sqlite.Options{Path: path})
	if again, err := s.CreateDirect(ctx, "b", "a"); err != nil || again.ID != c.ID || again.LastSeq != 3 {
		t.Errorf("after reopen CreateDirect = %+v, %v; want %s with LastSeq 3", again, err, c.ID)
	}
	m, dup, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: "1", Body: "x"})
	if err != nil || !dup || m.Seq != 2 {
		t.Errorf("retry after reopen = seq %d dup %v, %v; want seq 2 dup", m.Seq, dup, err)
	}
}

// crashEnv names the database a crash-test child process writes to.
const crashEnv = "DUPLEX_SQLITE_CRASH_CHILD_DB"

// TestCrashChild is the child of TestSurvivesSIGKILL: it appends forever,
// printing each acknowledged seq, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestSurvivesSIGKILL")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateDirect(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("conv %s\n", c.ID)
	for i := 0; ; i++ {
		m, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "a", ClientMsgID: strconv.Itoa(i), Body: "x"})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", m.Seq)
	}
}

// TestSurvivesSIGKILL checks the DurabilityNormal promise: every append a
// process acknowledged is there after the process is killed with SIGKILL
// mid-write, with no gap in the sequence.
func TestSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var convID string
	var acked int64
	sc := bufio.NewScanner(out)
	for sc.Scan() && acked < 2000 {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "conv "):
			convID = strings.TrimPrefix(line, "conv ")
		case strings.HasPrefix(line, "acked "):
			acked, _ = strconv.ParseInt(strings.TrimPrefix(line, "acked "), 10, 64)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if convID == "" || acked == 0 {
		t.Fatalf("child acknowledged nothing (conv %q, acked %d)", convID, acked)
	}
	s := openTemp(t, sqlite.Options{Path: path})
	c, err := s.Conversation(context.Background(), convID)
	if err != nil {
		t.Fatal(err)
	}
	if c.LastSeq < acked {
		t.Fatalf("after SIGKILL LastSeq = %d, but seq %d was acknowledged", c.LastSeq, acked)
	}
	msgs, err := s.MessagesAfter(context.Background(), convID, 0, int(c.LastSeq)+1)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("gap after crash: message %d has seq %d", i, m.Seq)
		}
	}
	if int64(len(msgs)) != c.LastSeq {
		t.Errorf("%d messages stored, LastSeq %d", len(msgs), c.LastSeq)
	}
}

// TestSecondStoreRefused: two Stores on one file would corrupt sequence
// numbers (each writer trusts its own cache), so the second Open fails
// until the first is closed.
func TestSecondStoreRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	first, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(ctx, sqlite.Options{Path: path}); !errors.Is(err, sqlite.ErrLocked) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openTemp(t, sqlite.Options{Path: path})
	if err := second.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
