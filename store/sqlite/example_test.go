package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/duplexhq/duplex/store"
	"github.com/duplexhq/duplex/store/sqlite"
)

func Example() {
	dir, err := os.MkdirTemp("", "duplex-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Options{
		Path:       filepath.Join(dir, "duplex.db"),
		Durability: sqlite.DurabilityFull, // survive power loss, not only crashes
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	c, err := s.CreateDirect(ctx, "alice", "bob")
	if err != nil {
		panic(err)
	}
	send := store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "m-1", Body: "hi bob"}
	m, dup, err := s.Append(ctx, send)
	fmt.Println(m.Seq, dup, err)
	// The client did not see the answer and retries: same message, no copy.
	m, dup, err = s.Append(ctx, send)
	fmt.Println(m.Seq, dup, err)

	convs, err := s.Conversations(ctx, "bob")
	if err != nil {
		panic(err)
	}
	fmt.Println(convs[0].Members, "unread:", convs[0].Unread)
	// Output:
	// 1 false <nil>
	// 1 true <nil>
	// [alice bob] unread: 1
}
