package presence

// CONTRACT written by the lead; keep it small.

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by every Registry method after Close.
var ErrClosed = errors.New("presence: closed")

// Status is one user's presence.
type Status struct {
	UserID   string
	Online   bool
	LastSeen time.Time // zero if never seen; now-ish while online
}

// Registry tracks connections per user. Methods are safe for concurrent use.
type Registry interface {
	// Connect records connID for userID; first reports whether the user had
	// no connection before.
	Connect(ctx context.Context, userID, connID string) (first bool, err error)
	// Disconnect removes connID; last reports whether it was the user's last
	// connection (LastSeen is then set to now).
	Disconnect(ctx context.Context, userID, connID string) (last bool, err error)
	Status(ctx context.Context, userIDs []string) ([]Status, error)
	Close() error
}
