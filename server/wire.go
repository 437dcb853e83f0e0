package server

import (
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// The HTTP API answers with the same JSON shapes as duplex.v1 frames, so a
// client decodes a message the same way from either transport.

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

func wireChannelMessage(cm store.ChannelMessage) protocol.ChannelMessage {
	return protocol.ChannelMessage{
		Channel: cm.Channel,
		Offset:  cm.Offset,
		Data:    cm.Data,
		TS:      unixMilli(cm.CreatedAt),
	}
}

// unixMilli is t in Unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
