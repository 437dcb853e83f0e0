package chat

import (
	"context"
	"encoding/json"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// Send appends a message and delivers it to every online device of every
// member once it is durable. A retry with the same clientMsgID returns the
// original message and is not delivered again.
func (s *Service) Send(ctx context.Context, id Identity, convID, clientMsgID, body string, meta json.RawMessage) (store.Message, error) {
	if err := requireUser(id); err != nil {
		return store.Message{}, err
	}
	msg, _, err := s.send(id.UserID, "", convID, clientMsgID, body, meta, time.Now(), nil)
	return msg, err
}

func (s *Service) checkMessage(convID, clientMsgID, body string, meta json.RawMessage) (json.RawMessage, error) {
	if err := checkID("conv", convID, protocol.MaxNameLen); err != nil {
		return nil, err
	}
	if err := checkID("client_msg_id", clientMsgID, protocol.MaxIDLen); err != nil {
		return nil, err
	}
	if len(body) > s.cfg.MaxBody {
		return nil, newErr(protocol.CodeTooLarge, "body over %d bytes", s.cfg.MaxBody)
	}
	if string(meta) == "null" {
		meta = nil
	}
	if len(meta) > s.cfg.MaxMeta {
		return nil, newErr(protocol.CodeTooLarge, "meta over %d bytes", s.cfg.MaxMeta)
	}
	if len(meta) > 0 && (!json.Valid(meta) || !isJSONObject(meta)) {
		return nil, newErr(protocol.CodeBadRequest, "meta must be a JSON object")
	}
	if body == "" && len(meta) == 0 {
		return nil, newErr(protocol.CodeMissingField, "missing body")
	}
	return meta, nil
}

func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// send is the persistence-first path shared by sessions and the HTTP API.
// ack, if set, runs after the append and before any delivery; origin is
// the sending session, which gets the ack instead of the message. ack
// either replies at once and returns nil, or returns the ack frame for
// send to route to the origin session behind the deliveries of the
// conversation's earlier messages (see session.orderedAck): it is
// published on the sender's user subject, in seq order with them, so the
// session cannot see seq n acked before it was sent n-1.
func (s *Service) send(user, origin, convID, clientMsgID, body string, meta json.RawMessage, start time.Time,
	ack func(store.Message, bool) []byte) (store.Message, bool, error) {
	meta, err := s.checkMessage(convID, clientMsgID, body, meta)
	if err != nil {
		return store.Message{}, false, err
	}
	// The append runs under the service context: once started it must
	// finish and be delivered even if the client goes away.
	ctx, cancel := s.storeCtx()
	defer cancel()
	t := s.seq.begin(convID)
	astart := time.Now()
	msg, dup, err := s.st.Append(ctx, store.NewMessage{
		ConversationID: convID, Sender: user, ClientMsgID: clientMsgID, Body: body, Meta: meta,
	})
	s.observe("Append", astart)
	if err != nil || dup {
		s.seq.done(t, 0, nil)
		if err != nil {
			if e := storeErr("append", err); e.Code == protocol.CodeNotFound {
				return store.Message{}, false, errNoConv(convID, err)
			} else {
				return store.Message{}, false, e
			}
		}
		if ack != nil {
			ack(msg, true)
		}
		return msg, true, nil
	}
	s.m.MessageIn()
	var ackFrame []byte
	if ack != nil {
		ackFrame = ack(msg, false)
	}
	if ackFrame == nil {
		s.m.SendToAck(time.Since(start))
	}
	mstart := time.Now()
	members, err := s.cachedMembers(ctx, convID)
	s.observe("Members", mstart)
	if err != nil {
		// Durable but not delivered live: recipients see the gap in seq
		// and sync.
		s.log.Error("chat: members for delivery", "conv", convID, "seq", msg.Seq, "err", err)
		if ackFrame != nil {
			s.seq.done(t, msg.Seq, func() { s.publishAck(user, origin, msg, ackFrame, start) })
		} else {
			s.seq.done(t, msg.Seq, func() {})
		}
		return msg, false, nil
	}
	env := s.messageEnvelope(origin, msg)
	// Deliveries may run after send returns (released by a later append),
	// so they use the service context.
	s.seq.done(t, msg.Seq, func() {
		if ackFrame != nil {
			// Everything earlier has been published by now.
			s.publishAck(user, origin, msg, ackFrame, start)
		}
		for _, m := range members {
			if err := s.br.Publish(s.ctx, hub.UserSubject(m.UserID), env); err != nil {
				s.log.Warn("chat: publishing message", "conv", convID, "seq", msg.Seq, "user", m.UserID, "err", err)
			}
		}
		s.m.SendToDeliver(time.Since(start))
	})
	if s.wh != nil {
		s.notifyOffline(ctx, msg, members)
	}
	return msg, false, nil
}

// publishAck routes the ack of msg to its origin session through the
// sender's user subject, behind the deliveries published before it (see
// send).
func (s *Service) publishAck(user, origin string, msg store.Message, ackFrame []byte, start time.Time) {
	env := appendEnvelope(nil, kindAck, origin, msg.ConversationID, msg.Seq, ackFrame)
	if err := s.br.Publish(s.ctx, hub.UserSubject(user), env); err != nil {
		s.log.Warn("chat: publishing ack", "conv", msg.ConversationID, "seq", msg.Seq, "user", user, "err", err)
	}
	s.m.SendToAck(time.Since(start))
}

// History returns up to limit messages before seq before (0: the newest),
// newest first.
func (s *Service) History(ctx context.Context, id Identity, convID string, before int64, limit int) ([]store.Message, error) {
	if err := requireUser(id); err != nil {
		return nil, err
	}
	if err := checkID("conv", convID, protocol.MaxNameLen); err != nil {
		return nil, err
	}
	if before < 0 || limit < 0 {
		return nil, newErr(protocol.CodeBadRequest, "before and limit must not be negative")
	}
	if limit == 0 {
		limit = s.cfg.HistoryLimit
	}
	limit = min(limit, s.cfg.HistoryMaxLimit)
	if _, _, err := s.members(ctx, convID, id.UserID); err != nil {
		return nil, err
	}
	start := time.Now()
	msgs, err := s.st.MessagesBefore(ctx, convID, before, limit)
	s.observe("MessagesBefore", start)
	if err != nil {
		return nil, storeErr("history", err)
	}
	return msgs, nil
}

// markRead moves user's read cursor and sends a receipt to the other
// members and to the user's other devices (so their unread counts follow).
func (s *Service) markRead(ctx context.Context, user, origin, convID string, seq int64) (int64, error) {
	members, _, err := s.members(ctx, convID, user)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	stored, err := s.st.MarkRead(ctx, user, convID, seq)
	s.observe("MarkRead", start)
	if err != nil {
		return 0, storeErr("mark read", err)
	}
	users := make([]string, len(members))
	for i, m := range members {
		users[i] = m.UserID
	}
	frame := s.encode(protocol.Receipt{Type: protocol.TypeReceipt, Conv: convID, User: user, Seq: stored})
	s.publishEvent(ctx, users, origin, frame)
	return stored, nil
}
