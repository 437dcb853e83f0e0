package chat

import (
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func wireMessage(m store.Message) protocol.Message {
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

func wireMessages(ms []store.Message) []protocol.Message {
	out := make([]protocol.Message, len(ms))
	for i, m := range ms {
		out[i] = wireMessage(m)
	}
	return out
}

func wireConversation(uc store.UserConversation) protocol.Conversation {
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

func wireConversations(ucs []store.UserConversation) []protocol.Conversation {
	out := make([]protocol.Conversation, len(ucs))
	for i, uc := range ucs {
		out[i] = wireConversation(uc)
	}
	return out
}

func wireChannelMessage(cm store.ChannelMessage) protocol.ChannelMessage {
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
