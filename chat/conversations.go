package chat

import (
	"context"
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store"
)

// Conversations lists the caller's conversations with cursors and unread
// counts, most recently active first.
func (s *Service) Conversations(ctx context.Context, id Identity) ([]store.UserConversation, error) {
	if err := requireUser(id); err != nil {
		return nil, err
	}
	start := time.Now()
	ucs, err := s.st.Conversations(ctx, id.UserID)
	s.observe("Conversations", start)
	if err != nil {
		return nil, storeErr("conversations", err)
	}
	return ucs, nil
}

// CreateDirect returns the caller's direct conversation with peer,
// creating it the first time.
func (s *Service) CreateDirect(ctx context.Context, id Identity, peer string) (store.UserConversation, error) {
	return s.createDirect(ctx, id, "", peer)
}

func (s *Service) createDirect(ctx context.Context, id Identity, origin, peer string) (store.UserConversation, error) {
	if err := requireUser(id); err != nil {
		return store.UserConversation{}, err
	}
	if err := checkID("peer", peer, protocol.MaxNameLen); err != nil {
		return store.UserConversation{}, err
	}
	if peer == id.UserID {
		return store.UserConversation{}, newErr(protocol.CodeBadRequest, "peer must be another user")
	}
	start := time.Now()
	c, err := s.st.CreateDirect(ctx, id.UserID, peer)
	s.observe("CreateDirect", start)
	if err != nil {
		return store.UserConversation{}, storeErr("create direct", err)
	}
	uc, err := s.userConversation(ctx, id.UserID, c)
	if err != nil {
		return store.UserConversation{}, err
	}
	// The store does not say whether the pair was new; a conversation
	// without messages may be announced more than once, which clients
	// treat idempotently by id.
	if c.LastSeq == 0 {
		s.announce(ctx, c, uc.Members, uc.Members, origin)
	}
	return uc, nil
}

// CreateGroup creates a group owned by the caller; members (besides the
// caller) are told with a conversation event.
func (s *Service) CreateGroup(ctx context.Context, id Identity, title string, members []string) (store.UserConversation, error) {
	return s.createGroup(ctx, id, "", title, members)
}

func (s *Service) createGroup(ctx context.Context, id Identity, origin, title string, members []string) (store.UserConversation, error) {
	if err := requireUser(id); err != nil {
		return store.UserConversation{}, err
	}
	if len(title) > protocol.MaxTitleLen {
		return store.UserConversation{}, newErr(protocol.CodeTooLarge, "title over %d bytes", protocol.MaxTitleLen)
	}
	if len(members) > protocol.MaxListLen {
		return store.UserConversation{}, newErr(protocol.CodeTooLarge, "more than %d members", protocol.MaxListLen)
	}
	for _, m := range members {
		if err := checkID("member", m, protocol.MaxNameLen); err != nil {
			return store.UserConversation{}, err
		}
	}
	start := time.Now()
	c, err := s.st.CreateGroup(ctx, id.UserID, title, members)
	s.observe("CreateGroup", start)
	if err != nil {
		return store.UserConversation{}, storeErr("create group", err)
	}
	uc, err := s.userConversation(ctx, id.UserID, c)
	if err != nil {
		return store.UserConversation{}, err
	}
	s.announce(ctx, c, uc.Members, uc.Members, origin)
	return uc, nil
}

// userConversation builds user's view of a conversation just created or
// changed.
func (s *Service) userConversation(ctx context.Context, user string, c store.Conversation) (store.UserConversation, error) {
	start := time.Now()
	ms, err := s.st.Members(ctx, c.ID)
	s.observe("Members", start)
	if err != nil {
		return store.UserConversation{}, storeErr("members", err)
	}
	uc := store.UserConversation{Conversation: c, Role: store.RoleMember, Members: make([]string, len(ms))}
	for i, m := range ms {
		uc.Members[i] = m.UserID
		if m.UserID == user {
			uc.Role = m.Role
		}
	}
	return uc, nil
}

// announce sends a conversation event to the devices of the users in to,
// except the origin session. Cursors in it are zero: a new member has read
// nothing.
func (s *Service) announce(ctx context.Context, c store.Conversation, members, to []string, origin string) {
	for _, u := range to {
		role := store.RoleMember
		if c.Kind == store.KindGroup && u == c.CreatedBy {
			role = store.RoleOwner
		}
		conv := WireConversation(store.UserConversation{Conversation: c, Role: role, Members: members})
		frame := s.encode(protocol.ConversationEvent{Type: protocol.TypeConversation, Conversation: conv})
		s.publishEvent(ctx, []string{u}, origin, frame)
	}
}

// AddMember adds userID to a group; only the owner may. Members (the new
// one included) get a member event and the new member a conversation event.
func (s *Service) AddMember(ctx context.Context, id Identity, convID, userID string) error {
	return s.addMember(ctx, id, "", convID, userID)
}

func (s *Service) addMember(ctx context.Context, id Identity, origin, convID, userID string) error {
	if err := requireUser(id); err != nil {
		return err
	}
	if err := checkID("conv", convID, protocol.MaxNameLen); err != nil {
		return err
	}
	if err := checkID("user", userID, protocol.MaxNameLen); err != nil {
		return err
	}
	_, me, err := s.members(ctx, convID, id.UserID)
	if err != nil {
		return err
	}
	if me.Role != store.RoleOwner {
		return s.notOwner(ctx, convID, "only the owner adds members")
	}
	start := time.Now()
	err = s.st.AddMember(ctx, convID, userID, store.RoleMember)
	s.observe("AddMember", start)
	if err != nil {
		return storeErr("add member", err)
	}
	s.membersChanged(ctx, convID)
	s.memberChanged(ctx, id.UserID, origin, convID, userID, "added", nil)
	return nil
}

// RemoveMember removes userID from a group: the owner removes anyone but
// itself, a member removes itself (leaves).
func (s *Service) RemoveMember(ctx context.Context, id Identity, convID, userID string) error {
	return s.removeMember(ctx, id, "", convID, userID)
}

func (s *Service) removeMember(ctx context.Context, id Identity, origin, convID, userID string) error {
	if err := requireUser(id); err != nil {
		return err
	}
	if err := checkID("conv", convID, protocol.MaxNameLen); err != nil {
		return err
	}
	if err := checkID("user", userID, protocol.MaxNameLen); err != nil {
		return err
	}
	before, me, err := s.members(ctx, convID, id.UserID)
	if err != nil {
		return err
	}
	switch {
	case userID == id.UserID && me.Role == store.RoleOwner:
		return newErr(protocol.CodeConflict, "the owner cannot leave the group")
	case userID != id.UserID && me.Role != store.RoleOwner:
		return s.notOwner(ctx, convID, "only the owner removes other members")
	}
	start := time.Now()
	err = s.st.RemoveMember(ctx, convID, userID)
	s.observe("RemoveMember", start)
	if err != nil {
		return storeErr("remove member", err)
	}
	s.membersChanged(ctx, convID)
	s.memberChanged(ctx, id.UserID, origin, convID, userID, "removed", before)
	return nil
}

// notOwner refuses a membership change by a member without the owner
// role: conflict in a direct conversation (whose membership never
// changes), forbidden in a group.
func (s *Service) notOwner(ctx context.Context, convID, msg string) error {
	start := time.Now()
	c, err := s.st.Conversation(ctx, convID)
	s.observe("Conversation", start)
	if err != nil {
		return storeErr("conversation", err)
	}
	if c.Kind == store.KindDirect {
		return newErr(protocol.CodeConflict, "direct conversations have fixed members")
	}
	return &Error{Code: protocol.CodeForbidden, Message: msg}
}

// memberChanged tells members about an addition or removal. For a removal,
// before (the members beforehand) includes the removed user, who is told
// too.
func (s *Service) memberChanged(ctx context.Context, by, origin, convID, userID, action string, before []store.Member) {
	ms := before
	if ms == nil {
		start := time.Now()
		var err error
		ms, err = s.st.Members(ctx, convID)
		s.observe("Members", start)
		if err != nil {
			s.log.Warn("chat: members after change", "conv", convID, "err", err)
			return
		}
	}
	users := make([]string, len(ms))
	for i, m := range ms {
		users[i] = m.UserID
	}
	frame := s.encode(protocol.Member{Type: protocol.TypeMember, Conv: convID, User: userID, Action: action, By: by})
	s.publishEvent(ctx, users, origin, frame)
	if action == "added" {
		start := time.Now()
		c, err := s.st.Conversation(ctx, convID)
		s.observe("Conversation", start)
		if err != nil {
			s.log.Warn("chat: conversation after add", "conv", convID, "err", err)
			return
		}
		s.announce(ctx, c, users, []string{userID}, "")
	}
}
