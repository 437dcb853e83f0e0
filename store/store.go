package store

// CONTRACT written by the lead; the store owner may refine it (documenting
// every change in the final report) but must keep it small.

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors every engine returns (wrapped) for conditions callers test.
var (
	// ErrNotFound: the conversation (or channel) does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrNotMember: the user is not a member of the conversation.
	ErrNotMember = errors.New("store: not a member")
	// ErrConflict: the change contradicts the current state (e.g. adding a
	// member to a direct conversation).
	ErrConflict = errors.New("store: conflict")
	// ErrInvalid: an argument is malformed (empty ID, a direct conversation
	// with oneself, Meta that is not a JSON object, limit < 1, keep < 1).
	// Callers map it to a client error rather than a server fault.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrClosed: the store was closed; no further calls succeed.
	ErrClosed = errors.New("store: closed")
)

// Kind is the kind of a conversation.
type Kind string

const (
	KindDirect Kind = "direct" // exactly two members, one per pair
	KindGroup  Kind = "group"  // owner/member roles, members added and removed
)

// Role is a member's role in a conversation.
type Role string

const (
	RoleOwner  Role = "owner"  // created the group; the chat layer lets owners manage members
	RoleMember Role = "member" // every member of a direct conversation has this role
)

// Conversation is a direct or group conversation.
type Conversation struct {
	ID        string
	Kind      Kind
	Title     string
	CreatedBy string
	CreatedAt time.Time
	LastSeq   int64 // sequence number of the newest message, 0 if none
}

// Member is one user's membership.
type Member struct {
	ConversationID string
	UserID         string
	Role           Role
	JoinedAt       time.Time
}

// UserConversation is a conversation as one member sees it.
type UserConversation struct {
	Conversation
	Role         Role
	Members      []string
	DeliveredSeq int64
	ReadSeq      int64
	// Unread counts messages after ReadSeq that the user did not send.
	Unread int64
	// Reads maps every member (the user included) to its read cursor, so
	// that a client can show who has seen what without having watched
	// the receipts go by. It is read with Members, from the same snapshot.
	Reads map[string]int64
}

// NewMessage is a message to append; the store assigns Seq and CreatedAt.
type NewMessage struct {
	ConversationID string
	Sender         string
	ClientMsgID    string // idempotency key, unique per (conversation, sender)
	Body           string
	Meta           json.RawMessage // optional JSON object
}

// Message is a stored message.
type Message struct {
	ConversationID string
	Seq            int64
	Sender         string
	ClientMsgID    string
	Body           string
	Meta           json.RawMessage
	CreatedAt      time.Time
}

// ChannelMessage is one entry of a channel's bounded history.
type ChannelMessage struct {
	Channel   string
	Offset    int64
	Data      json.RawMessage
	CreatedAt time.Time
}

// DeliveredCursor is one entry of MarkDeliveredBatch: UserID has received
// ConversationID's messages up to Seq.
type DeliveredCursor struct {
	UserID         string
	ConversationID string
	Seq            int64
}

// Store is the persistence contract. All methods are safe for concurrent use.
type Store interface {
	// CreateDirect returns the direct conversation of a and b, creating it
	// the first time (idempotent for the unordered pair; a != b).
	CreateDirect(ctx context.Context, a, b string) (Conversation, error)
	// CreateGroup creates a group owned by owner with the given members
	// (duplicates and owner itself in members are ignored).
	CreateGroup(ctx context.Context, owner, title string, members []string) (Conversation, error)
	// AddMember adds userID to a group. Its cursors start at the group's
	// LastSeq: earlier history is readable but not counted as unread.
	// ErrConflict for a direct conversation or an existing member.
	AddMember(ctx context.Context, convID, userID string, role Role) error
	// RemoveMember removes userID from a group (ErrNotMember if absent,
	// ErrConflict for a direct conversation).
	RemoveMember(ctx context.Context, convID, userID string) error

	Conversation(ctx context.Context, convID string) (Conversation, error)
	Members(ctx context.Context, convID string) ([]Member, error)
	// Conversations lists userID's conversations with cursors and unread
	// counts, most recently active first.
	Conversations(ctx context.Context, userID string) ([]UserConversation, error)
	// Contacts lists the users who share at least one conversation with
	// userID (for presence fan-out).
	Contacts(ctx context.Context, userID string) ([]string, error)

	// Append stores m and assigns the next sequence number of its
	// conversation in one transaction. The sender must be a member
	// (ErrNotMember). A repeated (conversation, sender, ClientMsgID) returns
	// the original message and dup=true; an empty ClientMsgID disables
	// deduplication. When Append returns without error the message is
	// durable to the engine's configured level. If ctx ends after the
	// message was handed to the engine it may still be stored: retry with
	// the same ClientMsgID to learn its fate.
	Append(ctx context.Context, m NewMessage) (msg Message, dup bool, err error)
	// MessagesAfter returns up to limit messages with Seq > after, ascending.
	MessagesAfter(ctx context.Context, convID string, after int64, limit int) ([]Message, error)
	// MessagesBefore returns up to limit messages with Seq < before,
	// descending (newest first); before <= 0 means from the newest.
	MessagesBefore(ctx context.Context, convID string, before int64, limit int) ([]Message, error)

	// MarkDelivered and MarkRead move a member's cursor forward (never
	// back, never past LastSeq) and return the cursor now stored. MarkRead
	// also moves the delivered cursor up to the read cursor (read implies
	// delivered).
	MarkDelivered(ctx context.Context, userID, convID string, seq int64) (int64, error)
	MarkRead(ctx context.Context, userID, convID string, seq int64) (int64, error)
	// MarkDeliveredBatch applies many delivered cursors at once, each as
	// MarkDelivered would (forward only, never past LastSeq), for callers
	// that buffer cursors and flush them periodically: an engine can apply
	// them in a few transactions instead of one commit per cursor. An
	// entry that matches no membership (unknown conversation, a user who
	// is not or no longer a member, empty IDs) is skipped and does not
	// fail the batch. Entries need not be distinct; the highest seq of a
	// (user, conversation) wins. On error some entries may have been
	// applied and others not; since cursors only move forward, calling
	// again with the same entries is safe.
	MarkDeliveredBatch(ctx context.Context, cursors []DeliveredCursor) error

	// ChannelAppend appends to a channel's history, keeping at most keep
	// entries, and returns the new entry's offset (ascending from 1).
	ChannelAppend(ctx context.Context, channel string, data json.RawMessage, keep int) (ChannelMessage, error)
	// ChannelAfter returns up to limit entries with Offset > after,
	// ascending; ErrNotFound if nothing was ever appended to channel.
	ChannelAfter(ctx context.Context, channel string, after int64, limit int) ([]ChannelMessage, error)

	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}
