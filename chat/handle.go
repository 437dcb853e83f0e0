package chat

import (
	"context"
	"errors"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// Handle processes one inbound frame. Every request gets exactly one reply
// carrying its id: ack (send), sync.end (sync) or result, or an error.
func (ss *session) Handle(ctx context.Context, frame []byte) {
	ss.mu.Lock()
	closed := ss.closed
	ss.mu.Unlock()
	if closed {
		return
	}
	s := ss.svc
	// Every frame costs a token, decodable or not; the refusal is sent
	// after decoding so that it can carry the request id.
	allowed := ss.bucket.allow(time.Now())
	r := &ss.req
	err := protocol.Decode(frame, s.cfg.MaxFrame, r)
	if !allowed {
		ss.strikes++
		if ss.strikes > s.cfg.RateStrikes {
			s.log.Info("chat: closing session over rate limit", "user", ss.ident.UserID, "session", ss.id)
			ss.sink.Close(protocol.CloseRateLimited, "rate limit exceeded")
			ss.Close()
			return
		}
		id := r.ID
		var pe *protocol.Error
		if errors.As(err, &pe) {
			id = pe.ID
		}
		ss.replyError(protocol.ErrorFrame{ID: id, Code: protocol.CodeRateLimited, Message: "rate limit exceeded"})
		return
	}
	ss.strikes = 0
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			pe = &protocol.Error{Code: protocol.CodeBadRequest, Message: err.Error()}
		}
		ss.bad++
		s.log.Debug("chat: bad frame", "user", ss.ident.UserID, "code", pe.Code, "err", pe.Message)
		ss.replyError(protocol.ErrorFrame{ID: pe.ID, Code: pe.Code, Message: pe.Message})
		if ss.bad >= s.cfg.MaxBadFrames {
			ss.sink.Close(protocol.ClosePolicy, "too many invalid frames")
			ss.Close()
		}
		return
	}
	ss.bad = 0
	if err := ss.dispatch(ctx, r); err != nil {
		e := AsError(err)
		if e.Code == protocol.CodeInternal {
			s.log.Error("chat: request failed", "type", r.Type, "user", ss.ident.UserID, "err", err)
		} else {
			s.log.Debug("chat: request refused", "type", r.Type, "user", ss.ident.UserID, "code", e.Code, "err", err)
		}
		msg := e.Message
		if e.Code == protocol.CodeInternal {
			msg = "internal error"
		}
		ss.replyError(protocol.ErrorFrame{ID: r.ID, Code: e.Code, Message: msg})
	}
}

func (ss *session) replyError(f protocol.ErrorFrame) {
	ss.send(protocol.EncodeError(f.ID, f.Code, f.Message))
}

func (ss *session) result(id string, data any) {
	ss.send(ss.svc.encode(protocol.Result{Type: protocol.TypeResult, ID: id, Data: data}))
}

// Result payloads (the "data" of a result frame).
type (
	convsResult struct {
		Conversations []protocol.Conversation `json:"conversations"`
	}
	convResult struct {
		Conversation protocol.Conversation `json:"conversation"`
	}
	historyResult struct {
		Messages []protocol.Message `json:"messages"`
	}
	readResult struct {
		Conv    string `json:"conv"`
		ReadSeq int64  `json:"read_seq"`
	}
	typingResult struct {
		TTLMS int64 `json:"ttl_ms"`
	}
	channelResult struct {
		Channel string `json:"channel"`
		Offset  int64  `json:"offset"`
	}
	presenceResult struct {
		Presence []protocol.Presence `json:"presence"`
	}
	pingResult struct {
		ServerTime int64 `json:"server_time"`
	}
	emptyResult struct{}
)

func (ss *session) dispatch(ctx context.Context, r *protocol.Request) error {
	s := ss.svc
	id := ss.ident
	switch r.Type {
	case protocol.TypeSend:
		_, _, err := s.send(id.UserID, ss.id, r.Conv, r.ClientMsgID, r.Body, r.Meta, time.Now(), func(m store.Message, dup bool) []byte {
			frame := encodeAck(&protocol.Ack{Type: protocol.TypeAck, ID: r.ID, Conv: m.ConversationID, Seq: m.Seq,
				ClientMsgID: m.ClientMsgID, TS: unixMilli(m.CreatedAt), Duplicate: dup})
			if !dup && ss.orderedAck(m.ConversationID, m.Seq) {
				return frame
			}
			ss.send(frame)
			ss.noteDelivered(m.ConversationID, m.Seq, false)
			return nil
		})
		return err
	case protocol.TypeSync:
		limit := r.Limit
		if ss.transient && (limit <= 0 || limit > s.cfg.SyncPage) {
			// One HTTP response carries the whole reply: bound it; the
			// client syncs again from sync.end's seq while more is true.
			limit = s.cfg.SyncPage
		}
		return ss.sync(ctx, r.ID, r.Conv, r.After, limit)
	case protocol.TypeHistory:
		msgs, err := s.History(ctx, id, r.Conv, r.Before, r.Limit)
		if err != nil {
			return err
		}
		ss.result(r.ID, historyResult{Messages: WireMessages(msgs)})
	case protocol.TypeRead:
		seq, err := s.markRead(ctx, id.UserID, ss.id, r.Conv, r.Seq)
		if err != nil {
			return err
		}
		ss.result(r.ID, readResult{Conv: r.Conv, ReadSeq: seq})
	case protocol.TypeTyping:
		return ss.typing(ctx, r.ID, r.Conv)
	case protocol.TypeSubscribe:
		if ss.transient {
			return errNeedsSession
		}
		return ss.subscribe(ctx, r.ID, r.Channel, r.Since)
	case protocol.TypeUnsubscribe:
		if ss.transient {
			return errNeedsSession
		}
		ss.mu.Lock()
		_, was := ss.channels[r.Channel]
		delete(ss.channels, r.Channel)
		ss.mu.Unlock()
		if was {
			s.hub.Leave(hub.ChannelSubject(r.Channel), ss)
		}
		ss.result(r.ID, channelResult{Channel: r.Channel})
	case protocol.TypePublish:
		cm, err := s.Publish(ctx, Identity{UserID: id.UserID}, r.Channel, r.Data)
		if err != nil {
			return err
		}
		ss.result(r.ID, channelResult{Channel: cm.Channel, Offset: cm.Offset})
	case protocol.TypePresence:
		sts, err := s.Presence(ctx, Identity{UserID: id.UserID}, r.Users)
		if err != nil {
			return err
		}
		out := make([]protocol.Presence, len(sts))
		for i, st := range sts {
			out[i] = WirePresence(st)
		}
		ss.result(r.ID, presenceResult{Presence: out})
	case protocol.TypeConvs:
		ucs, err := s.Conversations(ctx, id)
		if err != nil {
			return err
		}
		ss.result(r.ID, convsResult{Conversations: WireConversations(ucs)})
	case protocol.TypeCreateDirect:
		uc, err := s.createDirect(ctx, id, ss.id, r.Peer)
		if err != nil {
			return err
		}
		ss.result(r.ID, convResult{Conversation: WireConversation(uc)})
	case protocol.TypeCreateGroup:
		uc, err := s.createGroup(ctx, id, ss.id, r.Title, r.Members)
		if err != nil {
			return err
		}
		ss.result(r.ID, convResult{Conversation: WireConversation(uc)})
	case protocol.TypeAddMember:
		if err := s.addMember(ctx, id, ss.id, r.Conv, r.User); err != nil {
			return err
		}
		ss.result(r.ID, emptyResult{})
	case protocol.TypeRemoveMember:
		if err := s.removeMember(ctx, id, ss.id, r.Conv, r.User); err != nil {
			return err
		}
		ss.result(r.ID, emptyResult{})
	case protocol.TypePing:
		ss.result(r.ID, pingResult{ServerTime: time.Now().UnixMilli()})
	default: // Decode admits only the types above
		return newErr(protocol.CodeUnknownType, "unknown request type")
	}
	return nil
}

// sync streams the messages of conv after seq after, then sync.end. Live
// messages of conv are held back meanwhile and the replay runs until it has
// passed every one of them, so the client sees conv in seq order.
func (ss *session) sync(ctx context.Context, reqID, conv string, after int64, limit int) error {
	s := ss.svc
	if _, _, err := s.members(ctx, conv, ss.ident.UserID); err != nil {
		return err
	}
	ss.mu.Lock()
	ss.convReplay[conv] = &replay{}
	ss.mu.Unlock()
	sent, more, streamed := 0, false, after
	finished := false
	// endReplay stops holding back live messages; under the same lock it
	// marks what the stream sent, so none of it goes out twice.
	endReplayLocked := func() {
		delete(ss.convReplay, conv)
		if sent > 0 {
			c := ss.cursorLocked(conv)
			c.sent = max(c.sent, streamed)
			c.seq = max(c.seq, streamed)
		}
	}
	endReplay := func() {
		ss.mu.Lock()
		endReplayLocked()
		ss.mu.Unlock()
	}
	defer func() {
		if !finished {
			endReplay()
		}
	}()
	for {
		n := s.cfg.SyncPage
		if limit > 0 {
			n = min(n, limit-sent)
		}
		start := time.Now()
		page, err := s.st.MessagesAfter(ctx, conv, streamed, n)
		s.observe("MessagesAfter", start)
		if err != nil {
			return storeErr("sync", err)
		}
		for _, m := range page {
			if !ss.sendBulk(ctx, s.encodeMessage(m)) {
				return nil // the session is closing; no reply can be sent
			}
			streamed = m.Seq
			sent++
		}
		if limit > 0 && sent >= limit {
			more = len(page) == n
			break
		}
		if len(page) < n {
			// The check and the end are one critical section: a live
			// message arriving after it is sent live (its seq is above
			// streamed); one held back before it is in the next page.
			ss.mu.Lock()
			caughtUp := ss.convReplay[conv].dropped <= streamed
			if caughtUp {
				endReplayLocked()
				finished = true
			}
			ss.mu.Unlock()
			if caughtUp {
				break
			}
		}
	}
	if !finished {
		endReplay()
		finished = true
	}
	if sent == 0 {
		start := time.Now()
		c, err := s.st.Conversation(ctx, conv)
		s.observe("Conversation", start)
		if err != nil {
			return storeErr("conversation", err)
		}
		streamed = min(streamed, c.LastSeq)
	}
	// sync.end follows the replayed messages through the same flow-controlled
	// path: behind a full queue of them, a non-blocking send would close a
	// client that is merely slower than the store as a slow consumer.
	if frame := s.encode(protocol.SyncEnd{Type: protocol.TypeSyncEnd, ID: reqID, Conv: conv, Seq: streamed, More: more}); frame != nil {
		ss.replyBulk(ctx, frame)
	}
	return nil
}

// typing tells the other members that the user is typing, at most once per
// TypingInterval per conversation per session.
func (ss *session) typing(ctx context.Context, reqID, conv string) error {
	s := ss.svc
	now := time.Now()
	if last, ok := ss.typingAt[conv]; ok && now.Sub(last) < s.cfg.TypingInterval {
		return newErr(protocol.CodeRateLimited, "typing at most every %v per conversation", s.cfg.TypingInterval)
	}
	members, _, err := s.members(ctx, conv, ss.ident.UserID)
	if err != nil {
		return err
	}
	if len(ss.typingAt) >= 1024 { // bound the map: forget old entries
		for k, t := range ss.typingAt {
			if now.Sub(t) >= s.cfg.TypingInterval {
				delete(ss.typingAt, k)
			}
		}
	}
	ss.typingAt[conv] = now
	users := make([]string, 0, len(members))
	for _, m := range members {
		if m.UserID != ss.ident.UserID {
			users = append(users, m.UserID)
		}
	}
	ttl := s.cfg.TypingTTL.Milliseconds()
	s.publishEvent(ctx, users, "", s.encode(protocol.Typing{Type: protocol.TypeTypingEvent, Conv: conv, User: ss.ident.UserID, TTLMS: ttl}))
	ss.result(reqID, typingResult{TTLMS: ttl})
	return nil
}

// subscribe joins a channel and, with since, first replays its history
// after that offset (held-back live messages as in sync).
func (ss *session) subscribe(ctx context.Context, reqID, channel string, since *int64) error {
	s := ss.svc
	ns, err := s.namespace(channel)
	if err != nil {
		return err
	}
	if !ns.Subscribe {
		return newErr(protocol.CodeForbidden, "clients may not subscribe in this namespace")
	}
	replaying := since != nil && ns.History > 0
	ss.mu.Lock()
	_, already := ss.channels[channel]
	if !already && len(ss.channels) >= s.cfg.MaxSubscriptions {
		ss.mu.Unlock()
		return newErr(protocol.CodeTooLarge, "at most %d subscriptions per connection", s.cfg.MaxSubscriptions)
	}
	ss.channels[channel] = struct{}{}
	if replaying {
		ss.chanReplay[channel] = &replay{}
	}
	ss.mu.Unlock()
	if !already {
		if _, err := s.hub.Join(hub.ChannelSubject(channel), ss, 0); err != nil {
			ss.mu.Lock()
			delete(ss.channels, channel)
			delete(ss.chanReplay, channel)
			ss.mu.Unlock()
			return &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
		}
	}
	var offset int64
	if replaying {
		offset = *since
		var err error
		offset, err = ss.replayChannel(ctx, channel, offset)
		if err != nil {
			return err
		}
	}
	ss.result(reqID, channelResult{Channel: channel, Offset: offset})
	return nil
}

func (ss *session) replayChannel(ctx context.Context, channel string, after int64) (int64, error) {
	s := ss.svc
	defer func() {
		ss.mu.Lock()
		delete(ss.chanReplay, channel)
		ss.mu.Unlock()
	}()
	for {
		start := time.Now()
		page, err := s.st.ChannelAfter(ctx, channel, after, s.cfg.SyncPage)
		s.observe("ChannelAfter", start)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return after, storeErr("channel history", err)
		}
		for _, cm := range page {
			w := WireChannelMessage(cm)
			w.Type = protocol.TypeChannelMessage
			if !ss.sendBulk(ctx, s.encode(w)) {
				return after, nil
			}
			after = cm.Offset
		}
		if len(page) < s.cfg.SyncPage {
			ss.mu.Lock()
			r := ss.chanReplay[channel]
			done := r == nil || r.dropped <= after
			if done {
				delete(ss.chanReplay, channel)
			}
			ss.mu.Unlock()
			if done {
				return after, nil
			}
		}
	}
}
