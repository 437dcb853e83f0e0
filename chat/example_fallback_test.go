package chat_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/chat"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/store/sqlite"
)

// frameList is a Sink collecting one request's replies, as POST /rpc does.
type frameList struct{ frames []string }

func (l *frameList) Send(frame []byte) bool { l.frames = append(l.frames, string(frame)); return true }
func (l *frameList) Close(int, string)      {}

// A node with no session of the user answers its request (Do), and a
// long-poll returns the message from the store by the client's cursor.
func ExampleService_Do() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "duplex-example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "duplex.db")})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	br, pr := brokermem.New(brokermem.Options{}), presencemem.New(presencemem.Options{})
	defer br.Close()
	defer pr.Close()
	svc, err := chat.New(chat.Config{}, st, br, pr, nil)
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	alice := chat.Identity{UserID: "alice"}
	conv, _ := svc.CreateDirect(ctx, alice, "bob")
	var replies frameList
	frame := fmt.Sprintf(`{"type":"send","id":"1","conv":%q,"client_msg_id":"m-1","body":"hi"}`, conv.ID)
	if err := svc.Do(ctx, alice, []byte(frame), &replies); err != nil {
		panic(err)
	}
	fmt.Println(len(replies.frames), "reply, an ack")

	frames, _ := svc.Poll(ctx, chat.Identity{UserID: "bob"}, chat.PollRequest{
		Cursors: map[string]int64{conv.ID: 0}, Wait: 25 * time.Second,
	})
	fmt.Println(len(frames), "frames: the message, then sync.end")
	// Output:
	// 1 reply, an ack
	// 2 frames: the message, then sync.end
}
