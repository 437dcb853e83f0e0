package chat

import (
	"sync"
	"time"
)

// maxUserBuckets bounds the users tracked by userBuckets; beyond it, idle
// buckets are forgotten first.
const maxUserBuckets = 1 << 16

// userBuckets is a token bucket per user, for requests that have no
// session to hold one (Do). It is node-local: with requests spread over n
// nodes a user gets up to n times the rate, like a user with n
// connections.
type userBuckets struct {
	mu sync.Mutex
	m  map[string]*tokenBucket
}

// allow takes a token from user's bucket.
func (u *userBuckets) allow(user string, rate float64, burst int, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.m[user]
	if b == nil {
		if u.m == nil {
			u.m = make(map[string]*tokenBucket)
		}
		if len(u.m) >= maxUserBuckets {
			u.sweep(now)
		}
		nb := newTokenBucket(rate, burst, now)
		b = &nb
		if len(u.m) < maxUserBuckets {
			u.m[user] = b
		}
	}
	return b.allow(now)
}

// sweep forgets the buckets that have refilled: they behave exactly like
// new ones.
func (u *userBuckets) sweep(now time.Time) {
	for user, b := range u.m {
		if b.rate > 0 && b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst {
			delete(u.m, user)
		}
	}
}
