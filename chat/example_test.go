package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/chat"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/store/sqlite"
)

// chanSink is a minimal transport: frames go to a channel.
type chanSink chan []byte

func (c chanSink) Send(frame []byte) bool {
	select {
	case c <- frame:
		return true
	default:
		return false // queue full: the session closes us as a slow consumer
	}
}

func (c chanSink) Close(code int, reason string) {}

func Example() {
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

	// Bob is online on one device.
	bobFrames := make(chanSink, 64)
	bob, err := svc.Connect(ctx, chat.Identity{UserID: "bob"}, bobFrames)
	if err != nil {
		panic(err)
	}
	defer bob.Close()

	// Alice writes to him over the HTTP API surface.
	alice := chat.Identity{UserID: "alice"}
	conv, _ := svc.CreateDirect(ctx, alice, "bob")
	msg, _ := svc.Send(ctx, alice, conv.ID, "m-1", "hello bob", nil)
	fmt.Println("stored as seq", msg.Seq)

	// Bob's device gets welcome, the new conversation, then the message.
	for frame := range bobFrames {
		var f struct{ Type, Sender, Body string }
		json.Unmarshal(frame, &f)
		fmt.Println(strings.TrimSpace(f.Type + " " + f.Sender + " " + f.Body))
		if f.Type == "message" {
			break
		}
	}
	// Output:
	// stored as seq 1
	// welcome
	// conversation
	// message alice hello bob
}
