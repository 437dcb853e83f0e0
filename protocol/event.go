package protocol

import "encoding/json"

// Reply and event types (server to client).
const (
	TypeAck            = "ack"
	TypeResult         = "result"
	TypeError          = "error"
	TypeWelcome        = "welcome"
	TypeMessage        = "message"
	TypeSyncEnd        = "sync.end"
	TypeReceipt        = "receipt"
	TypeTypingEvent    = "typing" // same name as the request; direction tells them apart
	TypePresenceEvent  = "presence"
	TypeChannelMessage = "channel.message"
	TypeMember         = "member"
	TypeConversation   = "conversation"
)

// Message is a conversation message as it appears on the wire, in
// "message" events and in history and sync results. TS is the server time
// in Unix milliseconds.
type Message struct {
	Conv        string          `json:"conv"`
	Seq         int64           `json:"seq"`
	Sender      string          `json:"sender"`
	ClientMsgID string          `json:"client_msg_id"`
	Body        string          `json:"body"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	TS          int64           `json:"ts"`
}

// Conversation is a conversation as one member sees it (welcome,
// conversations result, conversation event).
type Conversation struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	Title        string   `json:"title,omitempty"`
	Role         string   `json:"role"`
	Members      []string `json:"members"`
	LastSeq      int64    `json:"last_seq"`
	ReadSeq      int64    `json:"read_seq"`
	DeliveredSeq int64    `json:"delivered_seq"`
	Unread       int64    `json:"unread"`
	CreatedAt    int64    `json:"created_at"`
	// Reads maps members to their read seq (you included), so a client
	// can show "seen by" for reads made before it connected. Omitted
	// where the server did not read them (conversation events).
	Reads map[string]int64 `json:"reads,omitempty"`
}

// Limits tells the client the server's limits in the welcome frame.
type Limits struct {
	MaxFrame       int     `json:"max_frame"`
	MaxBody        int     `json:"max_body"`
	MaxMeta        int     `json:"max_meta"`
	MaxPublish     int     `json:"max_publish"`
	RatePerSecond  float64 `json:"rate_per_second"`
	RateBurst      int     `json:"rate_burst"`
	TypingTTLMS    int64   `json:"typing_ttl_ms"`
	TypingEveryMS  int64   `json:"typing_interval_ms"`
	HistoryMaxPage int     `json:"history_max_limit"`
}

// Welcome is the first frame of every connection.
type Welcome struct {
	Type          string         `json:"type"`
	Protocol      string         `json:"protocol"`
	User          string         `json:"user"`
	Session       string         `json:"session"`
	ServerTime    int64          `json:"server_time"`
	Conversations []Conversation `json:"conversations"`
	Limits        Limits         `json:"limits"`
}

// Ack acknowledges a send once the message is durable.
type Ack struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Conv        string `json:"conv"`
	Seq         int64  `json:"seq"`
	ClientMsgID string `json:"client_msg_id"`
	TS          int64  `json:"ts"`
	Duplicate   bool   `json:"duplicate,omitempty"`
}

// Result is the generic reply to a request; Data depends on the request.
type Result struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data"`
}

// ErrorFrame reports a refused request (ID set) or a frame that could not
// be tied to a request (ID empty).
type ErrorFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// MessageEvent pushes one conversation message.
type MessageEvent struct {
	Type string `json:"type"`
	Message
}

// SyncEnd closes the stream of messages a sync request replayed. Seq is the
// highest seq the client now holds for Conv; More is true when the limit
// cut the stream short and the client should sync again from Seq.
type SyncEnd struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Conv string `json:"conv"`
	Seq  int64  `json:"seq"`
	More bool   `json:"more"`
}

// Receipt tells the other members that User has read Conv up to Seq.
type Receipt struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	User string `json:"user"`
	Seq  int64  `json:"seq"`
}

// Typing tells members that User is typing in Conv; it expires after TTLMS
// unless repeated.
type Typing struct {
	Type  string `json:"type"`
	Conv  string `json:"conv"`
	User  string `json:"user"`
	TTLMS int64  `json:"ttl_ms"`
}

// Presence is one user's presence, pushed as an event (Type set) or listed
// in a presence result (Type empty). LastSeen is Unix milliseconds, 0 if
// never seen.
type Presence struct {
	Type     string `json:"type,omitempty"`
	User     string `json:"user"`
	Online   bool   `json:"online"`
	LastSeen int64  `json:"last_seen"`
}

// ChannelMessage is one channel publication. Offset is 0 for namespaces
// without history.
type ChannelMessage struct {
	Type    string          `json:"type,omitempty"`
	Channel string          `json:"channel"`
	Offset  int64           `json:"offset"`
	Data    json.RawMessage `json:"data"`
	TS      int64           `json:"ts"`
}

// Member reports a membership change of Conv: Action is "added" or
// "removed", By is the user who made the change.
type Member struct {
	Type   string `json:"type"`
	Conv   string `json:"conv"`
	User   string `json:"user"`
	Action string `json:"action"`
	By     string `json:"by,omitempty"` // empty when a poll reports an earlier removal
}

// ConversationEvent tells a user about a conversation they were added to.
type ConversationEvent struct {
	Type         string       `json:"type"`
	Conversation Conversation `json:"conversation"`
}

// Encode builds the bytes of one outbound frame. Frames are built once
// and the same slice is handed to every recipient.
func Encode(frame any) ([]byte, error) { return json.Marshal(frame) }

// EncodeError builds an error frame; it cannot fail.
func EncodeError(id string, code Code, msg string) []byte {
	b, err := json.Marshal(ErrorFrame{Type: TypeError, ID: id, Code: code, Message: msg})
	if err != nil { // unreachable: only strings
		return []byte(`{"type":"error","code":"internal","message":"encoding failed"}`)
	}
	return b
}
