package chat

import (
	"context"
	"sync"

	"github.com/duplexhq/duplex/store"
)

// Delivering a message needs the conversation's members after every
// append; reading them from the store each time cost as much as the append
// itself. memberCache keeps them in memory.
//
// Consistency: every membership change made through a Service invalidates
// the entry locally and publishes the conversation id on
// membersInvalidateSubject, which every Service (on every node) subscribes
// to, so other nodes drop their copy too. A fill that raced with an
// invalidation is discarded (see epoch), so a cached list is never older
// than the last invalidation this node has seen. Until a remote node's
// invalidation arrives over the broker it may deliver a message to the
// previous member list, the same window a store read racing the change
// had before.

// membersInvalidateSubject is the broker subject on which membership
// changes are announced to every node; the payload is the conversation id.
// It cannot collide with hub subjects ("user.", "chan.").
const membersInvalidateSubject = "chat.members"

// memberCacheMax bounds the cached conversations; past it an arbitrary
// entry is evicted per insertion (map iteration order), which is cheap and
// good enough for a working set that is mostly the active conversations.
const memberCacheMax = 1 << 16

type memberCache struct {
	mu sync.Mutex
	m  map[string][]store.Member
	// epoch counts invalidations; a fill whose store read started in an
	// older epoch may hold a list from before the change and is dropped.
	epoch uint64

	once    sync.Once
	enabled bool // subscribed to invalidations; otherwise nothing is cached
}

// cachedMembers returns the members of convID, from the cache when
// possible. The slice is shared: callers must not modify it.
func (s *Service) cachedMembers(ctx context.Context, convID string) ([]store.Member, error) {
	c := &s.memberCache
	c.once.Do(func() { s.startMemberCache() })
	if c.enabled {
		c.mu.Lock()
		ms, ok := c.m[convID]
		epoch := c.epoch
		c.mu.Unlock()
		if ok {
			return ms, nil
		}
		ms, err := s.st.Members(ctx, convID)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.epoch == epoch && len(ms) > 0 {
			if len(c.m) >= memberCacheMax {
				for k := range c.m {
					delete(c.m, k)
					break
				}
			}
			c.m[convID] = ms
		}
		c.mu.Unlock()
		return ms, nil
	}
	return s.st.Members(ctx, convID)
}

// startMemberCache subscribes to invalidations from every node; without
// the subscription the cache stays off, since entries could go stale
// without bound. The subscription ends with the service.
func (s *Service) startMemberCache() {
	c := &s.memberCache
	cancel, err := s.br.Subscribe(membersInvalidateSubject, func(_ string, data []byte) {
		c.invalidate(string(data))
	})
	if err != nil {
		s.log.Warn("chat: membership cache off: subscribing to invalidations", "err", err)
		return
	}
	context.AfterFunc(s.ctx, cancel)
	c.mu.Lock()
	c.m = make(map[string][]store.Member)
	c.mu.Unlock()
	c.enabled = true
}

func (c *memberCache) invalidate(convID string) {
	c.mu.Lock()
	delete(c.m, convID)
	c.epoch++
	c.mu.Unlock()
}

// membersChanged drops convID's cached members here and tells every other
// node to do the same. It runs after the store change committed.
func (s *Service) membersChanged(ctx context.Context, convID string) {
	s.memberCache.invalidate(convID)
	if err := s.br.Publish(ctx, membersInvalidateSubject, []byte(convID)); err != nil {
		// Other nodes keep their copy until it is evicted or the
		// conversation changes again; say so loudly.
		s.log.Error("chat: publishing membership invalidation", "conv", convID, "err", err)
	}
}
