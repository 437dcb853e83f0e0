package memory_test

import (
	"context"
	"fmt"

	"github.com/duplexhq/duplex/presence/memory"
)

func Example() {
	ctx := context.Background()
	r := memory.New(memory.Options{})
	defer r.Close()

	first, _ := r.Connect(ctx, "alice", "phone")
	fmt.Println("first device:", first)
	first, _ = r.Connect(ctx, "alice", "laptop")
	fmt.Println("first device:", first)

	last, _ := r.Disconnect(ctx, "alice", "phone")
	fmt.Println("last device:", last)
	last, _ = r.Disconnect(ctx, "alice", "laptop")
	fmt.Println("last device:", last)

	st, _ := r.Status(ctx, []string{"alice"})
	fmt.Println("online:", st[0].Online, "seen:", !st[0].LastSeen.IsZero())
	// Output:
	// first device: true
	// first device: false
	// last device: false
	// last device: true
	// online: false seen: true
}
