package chat

import (
	"context"
	"time"

	"github.com/duplexhq/duplex/hub"
	"github.com/duplexhq/duplex/presence"
	"github.com/duplexhq/duplex/protocol"
)

// Presence works by delaying a closed session's Disconnect from the
// registry by the grace period. A reconnect within the grace registers a
// new connection while the old one is still counted, so the registry never
// sees the user go offline and nobody is told: no flap, on any node, and
// presence queries agree with the events. last_seen is accurate to within
// the grace period.

// connectPresence registers a session and tells contacts when the user
// comes online.
func (s *Service) connectPresence(ctx context.Context, user, conn string) error {
	first, err := s.pr.Connect(ctx, user, conn)
	if err != nil {
		return &Error{Code: protocol.CodeUnavailable, Message: "presence registry unavailable", Err: err}
	}
	if first {
		s.publishPresence(user, true, time.Now())
	}
	return nil
}

// scheduleDisconnect runs disconnectPresence after the grace period.
func (s *Service) scheduleDisconnect(user, conn string) {
	if s.cfg.PresenceGrace <= 0 {
		s.disconnectPresence(user, conn)
		return
	}
	key := leaveKey(user, conn)
	s.mu.Lock()
	if s.closed {
		// Close is running pending disconnects itself; do this one now
		// rather than leave a timer behind.
		s.mu.Unlock()
		s.disconnectPresence(user, conn)
		return
	}
	s.wg.Add(1)
	s.leaving[key] = time.AfterFunc(s.cfg.PresenceGrace, func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.leaving, key)
		s.mu.Unlock()
		s.disconnectPresence(user, conn)
	})
	s.mu.Unlock()
}

func (s *Service) disconnectPresence(user, conn string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), storeTimeout)
	defer cancel()
	last, err := s.pr.Disconnect(ctx, user, conn)
	if err != nil {
		s.log.Warn("chat: presence disconnect", "user", user, "err", err)
		return
	}
	if last {
		s.publishPresence(user, false, time.Now())
	}
}

// publishPresence tells every contact of user (users sharing a
// conversation) about a presence change.
func (s *Service) publishPresence(user string, online bool, at time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), storeTimeout)
	defer cancel()
	start := time.Now()
	contacts, err := s.st.Contacts(ctx, user)
	s.observe("Contacts", start)
	if err != nil {
		s.log.Warn("chat: presence contacts", "user", user, "err", err)
		return
	}
	ev := protocol.Presence{Type: protocol.TypePresenceEvent, User: user, Online: online, LastSeen: at.UnixMilli()}
	s.publishEvent(ctx, contacts, "", s.encode(ev))
}

// Presence returns the status of the requested users the caller may know
// about: itself and its contacts (admins: anyone). Others are left out of
// the result, exactly as if they did not exist.
func (s *Service) Presence(ctx context.Context, id Identity, users []string) ([]presence.Status, error) {
	if len(users) == 0 {
		return nil, newErr(protocol.CodeMissingField, "missing users")
	}
	if len(users) > protocol.MaxListLen {
		return nil, newErr(protocol.CodeTooLarge, "more than %d users", protocol.MaxListLen)
	}
	return s.visibleStatus(ctx, id, users)
}

// visibleStatus is Presence without the checks of the request's size.
func (s *Service) visibleStatus(ctx context.Context, id Identity, users []string) ([]presence.Status, error) {
	if !id.Admin {
		if err := requireUser(id); err != nil {
			return nil, err
		}
		start := time.Now()
		contacts, err := s.st.Contacts(ctx, id.UserID)
		s.observe("Contacts", start)
		if err != nil {
			return nil, storeErr("contacts", err)
		}
		// A set, not a scan per user: a poll may name thousands of users.
		visible := make(map[string]bool, len(contacts)+1)
		visible[id.UserID] = true
		for _, c := range contacts {
			visible[c] = true
		}
		allowed := make([]string, 0, len(users))
		for _, u := range users {
			if visible[u] {
				visible[u] = false // once each
				allowed = append(allowed, u)
			}
		}
		users = allowed
	}
	if len(users) == 0 {
		return []presence.Status{}, nil
	}
	sts, err := s.pr.Status(ctx, users)
	if err != nil {
		return nil, &Error{Code: protocol.CodeUnavailable, Message: "presence registry unavailable", Err: err}
	}
	return sts, nil
}

// publishEvent sends one encoded event to every device of users, except
// the origin session. The envelope is built once for all of them.
func (s *Service) publishEvent(ctx context.Context, users []string, origin string, frame []byte) {
	if frame == nil || len(users) == 0 {
		return
	}
	env := appendEnvelope(nil, kindEvent, origin, "", 0, frame)
	for _, u := range users {
		if err := s.br.Publish(ctx, hub.UserSubject(u), env); err != nil {
			s.log.Warn("chat: publishing event", "user", u, "err", err)
		}
	}
}
