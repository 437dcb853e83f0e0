package chat

// The contract between chat and the transports: the transports (WebSocket,
// later SSE/long-poll) and the HTTP API call API; *Service implements it.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/duplexhq/duplex/presence"
	"github.com/duplexhq/duplex/store"
)

// Sink is one client connection's outbound side, implemented by a transport.
// Send and Close are called concurrently (replies from the reader
// goroutine, events from broker delivery goroutines) and must be safe for
// that.
type Sink interface {
	// Send queues one encoded duplex.v1 frame (a JSON text message). The
	// slice is shared between sinks and must not be modified. Send never
	// blocks: it returns false when the connection's bounded queue is full,
	// and the session then disconnects the client by the slow-consumer
	// policy.
	Send(frame []byte) bool
	// Close ends the connection with a WebSocket-style close code and reason
	// (transports without close codes map them to their own form).
	Close(code int, reason string)
}

// ReplySink is optionally implemented by a Sink that can take a reply on
// the goroutine running Session.Handle more cheaply than through its queue
// (for example by writing it at once when nothing is queued ahead of it).
// Reply keeps Send's order with frames queued before it and reports false
// as Send does; unlike Send it may block that goroutine while it writes.
type ReplySink interface {
	Sink
	Reply(frame []byte) bool
}

// FlowSink is optionally implemented by a Sink whose queue can be waited
// on. Bulk replays (sync, channel resume) then wait for room instead of
// overflowing the queue and closing the connection as a slow consumer.
type FlowSink interface {
	Sink
	// SendWait queues frame, waiting while the queue is full until ctx
	// ends or the connection closes (then it returns an error).
	SendWait(ctx context.Context, frame []byte) error
}

// Identity is an authenticated caller.
type Identity struct {
	UserID string
	Admin  bool // server-side caller with the admin API key
	// ExpiresAt, if set, is when the credentials expire: a session is
	// closed with 4001 (token expired) at that time.
	ExpiresAt time.Time
}

// Session is one connected device of a user. Handle must be called from one
// goroutine (the transport's reader); events are written to the Sink.
type Session interface {
	// Handle processes one inbound duplex.v1 frame. Bad input produces an
	// error frame on the Sink, never a panic, and leaves the session usable
	// unless the policy says otherwise (e.g. rate limit abuse).
	Handle(ctx context.Context, frame []byte)
	// Close unregisters the session (presence, routing). Idempotent.
	Close()
}

// API is what transports and the HTTP API call. Errors are *Error values
// (or wrap one) carrying a stable machine-readable code.
type API interface {
	// Connect registers a device and sends the welcome frame (per
	// conversation: last seq, read cursor, unread count) to sink.
	Connect(ctx context.Context, id Identity, sink Sink) (Session, error)

	CreateDirect(ctx context.Context, id Identity, peer string) (store.UserConversation, error)
	CreateGroup(ctx context.Context, id Identity, title string, members []string) (store.UserConversation, error)
	AddMember(ctx context.Context, id Identity, convID, userID string) error
	RemoveMember(ctx context.Context, id Identity, convID, userID string) error
	Conversations(ctx context.Context, id Identity) ([]store.UserConversation, error)
	Send(ctx context.Context, id Identity, convID, clientMsgID, body string, meta json.RawMessage) (store.Message, error)
	History(ctx context.Context, id Identity, convID string, before int64, limit int) ([]store.Message, error)
	Publish(ctx context.Context, id Identity, channel string, data json.RawMessage) (store.ChannelMessage, error)
	Presence(ctx context.Context, id Identity, users []string) ([]presence.Status, error)
}

var _ API = (*Service)(nil)
