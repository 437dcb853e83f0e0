package memory

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/duplexhq/duplex/presence"
)

// ErrEmptyID is returned for an empty user or connection ID.
var ErrEmptyID = errors.New("presence/memory: empty user or connection ID")

// Options configure New. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
}

// Registry is an in-process presence.Registry, safe for concurrent use.
// It keeps an entry for every user ever connected (a few words each), so
// that last-seen times outlive the connections.
type Registry struct {
	now func() time.Time

	mu     sync.Mutex
	users  map[string]*user
	closed bool
}

type user struct {
	conns    map[string]struct{}
	lastSeen time.Time
}

var _ presence.Registry = (*Registry)(nil)

// New returns an empty Registry.
func New(opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registry{now: opts.Now, users: make(map[string]*user)}
}

// Connect implements presence.Registry. Connecting an already registered
// connID again changes nothing and reports first=false.
func (r *Registry) Connect(ctx context.Context, userID, connID string) (first bool, err error) {
	if userID == "" || connID == "" {
		return false, ErrEmptyID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, presence.ErrClosed
	}
	u := r.users[userID]
	if u == nil {
		u = &user{}
		r.users[userID] = u
	}
	if u.conns == nil {
		u.conns = make(map[string]struct{}, 1)
	}
	first = len(u.conns) == 0
	u.conns[connID] = struct{}{}
	u.lastSeen = r.now().UTC()
	return first, nil
}

// Disconnect implements presence.Registry. Disconnecting an unknown connID
// changes nothing and reports last=false.
func (r *Registry) Disconnect(ctx context.Context, userID, connID string) (last bool, err error) {
	if userID == "" || connID == "" {
		return false, ErrEmptyID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false, presence.ErrClosed
	}
	u := r.users[userID]
	if u == nil {
		return false, nil
	}
	if _, ok := u.conns[connID]; !ok {
		return false, nil
	}
	delete(u.conns, connID)
	if len(u.conns) > 0 {
		return false, nil
	}
	u.conns = nil // drop the map: most users are offline most of the time
	u.lastSeen = r.now().UTC()
	return true, nil
}

// Status implements presence.Registry, one Status per requested user in
// the same order. An online user's LastSeen is now.
func (r *Registry) Status(ctx context.Context, userIDs []string) ([]presence.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, presence.ErrClosed
	}
	now := r.now().UTC()
	out := make([]presence.Status, len(userIDs))
	for i, id := range userIDs {
		out[i].UserID = id
		u := r.users[id]
		switch {
		case u == nil:
		case len(u.conns) > 0:
			out[i].Online, out[i].LastSeen = true, now
		default:
			out[i].LastSeen = u.lastSeen
		}
	}
	return out, nil
}

// Close makes every later call fail with presence.ErrClosed.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
