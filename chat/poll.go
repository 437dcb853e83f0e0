package chat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// MaxPollWait bounds PollRequest.Wait.
const MaxPollWait = 30 * time.Second

// maxPollCursors bounds the conversations one poll may name.
const maxPollCursors = 10000

// maxPollReads bounds the read positions one poll may carry in all.
const maxPollReads = 100000

// maxPollPresence bounds the users of PollRequest.Presence.
const maxPollPresence = 10000

// PollRequest is one long-poll. Nothing is kept between polls: the
// client's cursors say what it holds, so any node can answer any poll.
type PollRequest struct {
	// Cursors maps every conversation the client knows to the highest seq
	// it holds. Messages after them are returned from the store.
	// Conversations of the user missing from Cursors are announced with
	// a conversation event (the client missed its creation between two
	// polls). A cursor of a conversation the user is not a member of is
	// answered with a member event removing the user (the client missed
	// its removal), alike whether the conversation exists or not.
	Cursors map[string]int64
	// Channels maps the channels the client subscribes to to the last
	// offset it holds; with a positive offset and a namespace that keeps
	// history, the publications after it are returned. 0 means live only.
	Channels map[string]int64
	// Reads maps conversations (of Cursors) to the read seq the client
	// knows for each member. For every conversation listed, a member
	// whose read cursor in the store is past it (absent counts as 0) is
	// returned as a receipt frame, so reads made between two polls, or
	// before the client connected, are not lost. Conversations not
	// listed are not compared (the client does not track receipts).
	Reads map[string]map[string]int64
	// Presence maps users to whether the client shows them online. A user
	// the caller may know about (itself and its contacts, as for the
	// presence request) whose status differs is returned at once as a
	// presence frame, so changes between two polls are not lost; other
	// users are skipped silently.
	Presence map[string]bool
	// Wait is how long to wait for live events when nothing is ready (at
	// most MaxPollWait).
	Wait time.Duration
	// Handshake asks for the welcome frame instead of stored messages: a
	// client's first poll.
	Handshake bool
}

// Poll implements Fallback. It answers at once with the welcome frame
// (Handshake), or with the messages after the cursors and the channel
// history after the offsets (at most Config.SyncPage messages, each
// conversation's closed by a sync.end without id whose more says whether
// to poll again at once), and otherwise waits up to Wait for live events
// of the user and the channels, returning what arrived (possibly nothing).
// With Reads, members' read cursors past what the client knows are
// returned at once as receipt frames, and with Presence, the users whose
// status differs from what the client shows as presence frames. Live
// events are taken from the moment the poll starts, before the store and
// the presence registry are read, so none committed meanwhile is missed
// (a receipt or presence frame may then come twice: both are
// idempotent). A removal from a conversation between two polls comes back
// as a member event at the end of the next answer; typing indicators and
// other members' changes that happen between two polls are not replayed.
//
// A poll counts as one of the user's connections while it runs, and keeps
// the user online: the presence grace period covers the gap between two
// polls.
func (s *Service) Poll(ctx context.Context, id Identity, req PollRequest) ([][]byte, error) {
	if err := checkIdentity(id); err != nil {
		return nil, err
	}
	if err := s.checkPoll(req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, newErr(protocol.CodeUnavailable, "server shutting down")
	}
	user := id.UserID
	pc := &pollConn{notify: make(chan struct{}, 1)}
	conn := newSessionID()
	if _, err := s.hub.Join(hub.UserSubject(user), pc, s.cfg.MaxConnsPerUser); err != nil {
		if errors.Is(err, hub.ErrFull) {
			return nil, newErr(protocol.CodeTooManyConnections, "at most %d connections per user", s.cfg.MaxConnsPerUser)
		}
		return nil, &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
	}
	defer s.hub.Leave(hub.UserSubject(user), pc)
	for ch := range req.Channels {
		if _, err := s.hub.Join(hub.ChannelSubject(ch), pc, 0); err != nil {
			return nil, &Error{Code: protocol.CodeUnavailable, Message: "routing unavailable", Err: err}
		}
		defer s.hub.Leave(hub.ChannelSubject(ch), pc)
	}
	if err := s.connectPresence(ctx, user, conn); err != nil {
		return nil, err
	}
	defer s.scheduleDisconnect(user, conn)

	out := make([][]byte, 0, 8)
	// held is what the client holds (or gets in this answer) per
	// conversation and channel: live frames at or below it are duplicates.
	held := make(map[string]int64, len(req.Cursors))
	for conv, seq := range req.Cursors {
		held[conv] = seq
	}
	offsets := make(map[string]int64, len(req.Channels))
	for ch, off := range req.Channels {
		offsets[ch] = off
	}
	reads := &readsHeld{known: req.Reads}
	var err error
	var gone []string // cursors of conversations the user is not in
	if req.Handshake {
		out, err = s.pollWelcome(ctx, user, conn, out)
	} else {
		out, gone, err = s.pollStored(ctx, user, req, held, offsets, reads, out)
		if err == nil && len(req.Presence) > 0 {
			out, err = s.pollPresence(ctx, id, req.Presence, out)
		}
	}
	if err != nil {
		return nil, err
	}
	out = pc.drain(out, held, offsets, reads)
	if len(out) == 0 && req.Wait > 0 {
		t := time.NewTimer(min(req.Wait, MaxPollWait))
		defer t.Stop()
	wait:
		for len(out) == 0 {
			select {
			case <-pc.notify:
				out = pc.drain(out, held, offsets, reads)
			case <-t.C:
				break wait
			case <-ctx.Done():
				break wait
			case <-s.ctx.Done():
				break wait
			}
		}
	}
	// Removals go at the end of the answer and do not make the poll return
	// early: a client that ignores them (an older duplex.js) then sends the
	// same cursors again after a full wait, not in a tight loop.
	out = s.appendRemovals(user, gone, out)
	delivered := make(map[string]*cursor)
	for conv, seq := range held {
		if seq > req.Cursors[conv] {
			delivered[conv] = &cursor{seq: seq}
		}
	}
	s.addCursors(user, delivered)
	return out, nil
}

func (s *Service) checkPoll(req PollRequest) error {
	if len(req.Cursors) > maxPollCursors {
		return newErr(protocol.CodeTooLarge, "more than %d cursors", maxPollCursors)
	}
	for conv, seq := range req.Cursors {
		if err := checkID("conversation id", conv, protocol.MaxNameLen); err != nil {
			return err
		}
		if seq < 0 {
			return newErr(protocol.CodeBadRequest, "cursor of %s is negative", conv)
		}
	}
	if len(req.Channels) > s.cfg.MaxSubscriptions {
		return newErr(protocol.CodeTooLarge, "at most %d channels", s.cfg.MaxSubscriptions)
	}
	for ch, off := range req.Channels {
		ns, err := s.namespace(ch)
		if err != nil {
			return err
		}
		if !ns.Subscribe {
			return newErr(protocol.CodeForbidden, "clients may not subscribe to %s", ch)
		}
		if off < 0 {
			return newErr(protocol.CodeBadRequest, "offset of %s is negative", ch)
		}
	}
	if req.Wait < 0 {
		return newErr(protocol.CodeBadRequest, "wait must not be negative")
	}
	if len(req.Reads) > maxPollCursors {
		return newErr(protocol.CodeTooLarge, "more than %d conversations in reads", maxPollCursors)
	}
	n := 0
	for _, reads := range req.Reads {
		if n += len(reads); n > maxPollReads {
			return newErr(protocol.CodeTooLarge, "more than %d read positions", maxPollReads)
		}
	}
	if len(req.Presence) > maxPollPresence {
		return newErr(protocol.CodeTooLarge, "more than %d users in presence", maxPollPresence)
	}
	for u := range req.Presence {
		if err := checkID("user id", u, protocol.MaxNameLen); err != nil {
			return err
		}
	}
	return nil
}

// pollPresence appends a presence frame for each user of known whose
// status differs from what the client shows.
func (s *Service) pollPresence(ctx context.Context, id Identity, known map[string]bool, out [][]byte) ([][]byte, error) {
	users := make([]string, 0, len(known))
	for u := range known {
		users = append(users, u)
	}
	sts, err := s.visibleStatus(ctx, id, users)
	if err != nil {
		return nil, err
	}
	for _, st := range sts {
		if st.Online == known[st.UserID] {
			continue
		}
		ev := WirePresence(st)
		ev.Type = protocol.TypePresenceEvent
		if f := s.encode(ev); f != nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// pollWelcome appends the welcome frame of a first poll.
func (s *Service) pollWelcome(ctx context.Context, user, conn string, out [][]byte) ([][]byte, error) {
	start := time.Now()
	ucs, err := s.st.Conversations(ctx, user)
	s.observe("Conversations", start)
	if err != nil {
		return nil, storeErr("conversations", err)
	}
	w := s.encode(protocol.Welcome{
		Type: protocol.TypeWelcome, Protocol: protocol.Subprotocol, User: user, Session: conn,
		ServerTime: time.Now().UnixMilli(), Conversations: WireConversations(ucs), Limits: s.limits(),
	})
	if w != nil {
		out = append(out, w)
	}
	return out, nil
}

// pollStored appends what the store has after the client's cursors and
// channel offsets, advancing held and offsets. gone lists the cursors of
// conversations the user is not a member of, sorted; they are dropped from
// held.
func (s *Service) pollStored(ctx context.Context, user string, req PollRequest, held, offsets map[string]int64, reads *readsHeld, out [][]byte) (_ [][]byte, gone []string, _ error) {
	start := time.Now()
	ucs, err := s.st.Conversations(ctx, user)
	s.observe("Conversations", start)
	if err != nil {
		return nil, nil, storeErr("conversations", err)
	}
	mine := make(map[string]bool, len(ucs))
	for _, uc := range ucs {
		mine[uc.ID] = true
	}
	for conv := range req.Cursors {
		if !mine[conv] {
			gone = append(gone, conv)
			delete(held, conv)
		}
	}
	slices.Sort(gone)
	budget := s.cfg.SyncPage
	for _, uc := range ucs {
		after, known := req.Cursors[uc.ID]
		if !known {
			if f := s.encode(protocol.ConversationEvent{Type: protocol.TypeConversation, Conversation: WireConversation(uc)}); f != nil {
				out = append(out, f)
			}
			continue
		}
		if _, ok := req.Reads[uc.ID]; ok {
			out = s.pollReceipts(uc, reads, out)
		}
		if uc.LastSeq <= after || budget == 0 {
			continue
		}
		start := time.Now()
		page, err := s.st.MessagesAfter(ctx, uc.ID, after, budget)
		s.observe("MessagesAfter", start)
		if err != nil {
			return nil, nil, storeErr("poll", err)
		}
		last := after
		for _, m := range page {
			if f := s.encodeMessage(m); f != nil {
				out = append(out, f)
			}
			last = m.Seq
		}
		budget -= len(page)
		held[uc.ID] = last
		if f := s.encode(protocol.SyncEnd{Type: protocol.TypeSyncEnd, Conv: uc.ID, Seq: last, More: last < uc.LastSeq}); f != nil {
			out = append(out, f)
		}
	}
	for ch, off := range req.Channels {
		if off == 0 || budget == 0 {
			continue
		}
		if ns, _ := s.namespace(ch); ns.History == 0 {
			continue
		}
		start := time.Now()
		page, err := s.st.ChannelAfter(ctx, ch, off, budget)
		s.observe("ChannelAfter", start)
		if err != nil && !isNotFound(err) {
			return nil, nil, storeErr("channel history", err)
		}
		for _, cm := range page {
			w := WireChannelMessage(cm)
			w.Type = protocol.TypeChannelMessage
			if f := s.encode(w); f != nil {
				out = append(out, f)
			}
			offsets[ch] = cm.Offset
		}
		budget -= len(page)
	}
	return out, gone, nil
}

// appendRemovals appends, for each conversation of gone, a member event
// removing user from it. Its by is empty: the removal happened before
// this poll, and who made it is not recorded. A conversation that never
// existed gets the same event, so cursors cannot probe ids.
func (s *Service) appendRemovals(user string, gone []string, out [][]byte) [][]byte {
	for _, conv := range gone {
		if f := s.encode(protocol.Member{Type: protocol.TypeMember, Conv: conv, User: user, Action: "removed"}); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// pollReceipts appends a receipt for each member of uc whose read cursor
// is past the one the client knows, in member order.
func (s *Service) pollReceipts(uc store.UserConversation, reads *readsHeld, out [][]byte) [][]byte {
	for _, m := range uc.Members {
		seq, ok := uc.Reads[m]
		if !ok || !reads.advance(uc.ID, m, seq) {
			continue
		}
		if f := s.encode(protocol.Receipt{Type: protocol.TypeReceipt, Conv: uc.ID, User: m, Seq: seq}); f != nil {
			out = append(out, f)
		}
	}
	return out
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// readsHeld is the read seq per conversation and member that the client
// holds or gets in this answer: a receipt at or below it, found in the
// store and then arriving live as well, is not sent twice.
type readsHeld struct {
	known map[string]map[string]int64 // from the request
	sent  map[[2]string]int64         // conversation, member -> seq in this answer
}

// advance records seq for user in conv and reports whether the client did
// not hold it yet.
func (r *readsHeld) advance(conv, user string, seq int64) bool {
	k := [2]string{conv, user}
	if seq <= r.known[conv][user] || seq <= r.sent[k] {
		return false
	}
	if r.sent == nil {
		r.sent = make(map[[2]string]int64)
	}
	r.sent[k] = seq
	return true
}

// pollConn is a poll's temporary registration in the hub: it keeps the
// live events that arrive while the poll runs, up to maxEarly. Beyond
// that it keeps nothing more: the messages dropped come from the store at
// the next poll (the client's cursors stop before them), the rest is
// ephemeral.
type pollConn struct {
	notify chan struct{}

	mu     sync.Mutex
	frames []envelope
	full   bool
}

// Deliver implements hub.Conn.
func (pc *pollConn) Deliver(p []byte) {
	e, ok := parseEnvelope(p)
	if !ok {
		return
	}
	pc.mu.Lock()
	if len(pc.frames) >= maxEarly {
		pc.full = true
	} else if !pc.full {
		pc.frames = append(pc.frames, e)
	}
	pc.mu.Unlock()
	select {
	case pc.notify <- struct{}{}:
	default:
	}
}

// drain appends the live frames received so far that the client does not
// hold, advancing held, offsets and reads.
func (pc *pollConn) drain(out [][]byte, held, offsets map[string]int64, reads *readsHeld) [][]byte {
	pc.mu.Lock()
	frames := pc.frames
	pc.frames = nil
	pc.mu.Unlock()
	for _, e := range frames {
		switch e.kind {
		case kindMessage:
			conv := string(e.key)
			if seq, ok := held[conv]; ok && e.seq <= seq {
				continue
			}
			held[conv] = e.seq
		case kindChannel:
			ch := string(e.key)
			if e.seq > 0 && e.seq <= offsets[ch] {
				continue
			}
			offsets[ch] = max(offsets[ch], e.seq)
		case kindEvent:
			var r protocol.Receipt
			if json.Unmarshal(e.frame, &r) == nil && r.Type == protocol.TypeReceipt && !reads.advance(r.Conv, r.User, r.Seq) {
				continue
			}
		}
		out = append(out, e.frame)
	}
	return out
}
