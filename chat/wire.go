package chat

import (
	"time"

	"github.com/duplexhq/duplex/presence"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// WirePresence is the duplex.v1 form of a presence status (without the
// event type).
func WirePresence(st presence.Status) protocol.Presence {
	return protocol.Presence{User: st.UserID, Online: st.Online, LastSeen: unixMilli(st.LastSeen)}
}

// unixMilli is t in Unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// WireMessage is the duplex.v1 form of a stored message. The HTTP API
// answers with the same shapes as the frames, so these converters serve it
// too.
func WireMessage(m store.Message) protocol.Message {
	return protocol.Message{
		Conv:        m.ConversationID,
		Seq:         m.Seq,
		Sender:      m.Sender,
		ClientMsgID: m.ClientMsgID,
		Body:        m.Body,
		Meta:        m.Meta,
		TS:          unixMilli(m.CreatedAt),
	}
}

// WireMessages converts a page of stored messages.
func WireMessages(ms []store.Message) []protocol.Message {
	out := make([]protocol.Message, len(ms))
	for i, m := range ms {
		out[i] = WireMessage(m)
	}
	return out
}

// WireConversation is the duplex.v1 form of a conversation as one member
// sees it.
func WireConversation(uc store.UserConversation) protocol.Conversation {
	members := uc.Members
	if members == nil {
		members = []string{}
	}
	return protocol.Conversation{
		ID:           uc.ID,
		Kind:         string(uc.Kind),
		Title:        uc.Title,
		Role:         string(uc.Role),
		Members:      members,
		LastSeq:      uc.LastSeq,
		ReadSeq:      uc.ReadSeq,
		DeliveredSeq: uc.DeliveredSeq,
		Unread:       uc.Unread,
		CreatedAt:    unixMilli(uc.CreatedAt),
		Reads:        uc.Reads,
	}
}

// WireConversations converts a list of conversations.
func WireConversations(ucs []store.UserConversation) []protocol.Conversation {
	out := make([]protocol.Conversation, len(ucs))
	for i, uc := range ucs {
		out[i] = WireConversation(uc)
	}
	return out
}

// WireChannelMessage is the duplex.v1 form of a channel publication.
func WireChannelMessage(cm store.ChannelMessage) protocol.ChannelMessage {
	return protocol.ChannelMessage{
		Channel: cm.Channel,
		Offset:  cm.Offset,
		Data:    cm.Data,
		TS:      unixMilli(cm.CreatedAt),
	}
}

// encode builds an outbound frame. The frame types only hold strings,
// numbers and JSON validated on input, so a failure is a bug: it is logged
// and the frame skipped rather than sent half-built.
func (s *Service) encode(v any) []byte {
	b, err := protocol.Encode(v)
	if err != nil {
		s.log.Error("chat: encoding frame", "err", err)
		return nil
	}
	return b
}
