package protocol

import "encoding/json"

// Subprotocol is the WebSocket subprotocol name clients must offer.
const Subprotocol = "duplex.v1"

// Request types (client to server).
const (
	TypeSend         = "send"
	TypeSync         = "sync"
	TypeHistory      = "history"
	TypeRead         = "read"
	TypeTyping       = "typing"
	TypeSubscribe    = "subscribe"
	TypeUnsubscribe  = "unsubscribe"
	TypePublish      = "publish"
	TypePresence     = "presence"
	TypeConvs        = "conversations"
	TypeCreateDirect = "create_direct"
	TypeCreateGroup  = "create_group"
	TypeAddMember    = "add_member"
	TypeRemoveMember = "remove_member"
	TypePing         = "ping"
)

// Limits on request fields that do not depend on server configuration.
const (
	MaxIDLen        = 64  // request id and client_msg_id
	MaxNameLen      = 128 // conversation ids, user ids, channel names, peer
	MaxTitleLen     = 200 // group title
	MaxListLen      = 100 // members of create_group, users of presence
	DefaultMaxFrame = 64 << 10
)

// Request is one decoded client frame. It is a union of the fields of every
// request type; Decode guarantees that the fields required by Type are set
// and well-formed, and ignores fields the type does not use. A Request may
// be reused across Decode calls to save allocations.
type Request struct {
	Type string `json:"type"`
	ID   string `json:"id"`

	Conv        string          `json:"conv"`          // send, sync, history, read, typing, add_member, remove_member
	ClientMsgID string          `json:"client_msg_id"` // send
	Body        string          `json:"body"`          // send
	Meta        json.RawMessage `json:"meta"`          // send (optional JSON object)
	After       int64           `json:"after"`         // sync (default 0)
	Before      int64           `json:"before"`        // history (0 = newest)
	Limit       int             `json:"limit"`         // sync, history (0 = default)
	Seq         int64           `json:"seq"`           // read
	Channel     string          `json:"channel"`       // subscribe, unsubscribe, publish
	Since       *int64          `json:"since"`         // subscribe (optional: replay history after this offset)
	Data        json.RawMessage `json:"data"`          // publish (any JSON value)
	Users       []string        `json:"users"`         // presence
	Peer        string          `json:"peer"`          // create_direct
	Title       string          `json:"title"`         // create_group
	Members     []string        `json:"members"`       // create_group
	User        string          `json:"user"`          // add_member, remove_member
}

// reset clears r for reuse, keeping the capacity of its slices.
func (r *Request) reset() {
	users, members := r.Users[:0], r.Members[:0]
	*r = Request{Users: users, Members: members}
}
