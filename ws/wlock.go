package ws

import (
	"sync/atomic"
	"time"
)

// wlock is one of a Conn's write locks (msgMu, frameMu): a mutex whose
// waiters give up when a context is done, a timer fires or the connection
// closes, which sync.Mutex does not allow. Uncontended, taking and
// releasing it is one atomic operation each (a 1-slot channel used as a
// lock costs a lock and unlock of the channel's own mutex for each, on a
// separate allocation). The channel waiters sleep on is made by the first
// waiter, so a Conn that never waits carries none.
//
// The protocol is the classic three-state mutex: 0 free, 1 held, 2 held
// with possible sleepers. A waiter sets 2 before sleeping; an unlock that
// finds 2 leaves a token in the channel, which wakes one sleeper to try
// again. Tokens are not addressed: a waiter that gives up leaves the
// token (and the state 2) for the next one, so no sleeper is stranded, and
// a stale token only causes a spurious retry.
type wlock struct {
	state atomic.Int32
	wake  atomic.Pointer[chan struct{}]
}

// tryLock takes l if it is free.
func (l *wlock) tryLock() bool { return l.state.CompareAndSwap(0, 1) }

// unlock releases l, waking a sleeper if there may be one.
func (l *wlock) unlock() {
	if l.state.Swap(0) == 2 {
		select {
		case *l.wake.Load() <- struct{}{}:
		default: // a token is already waiting
		}
	}
}

// wait takes l, sleeping while it is held; it gives up (false) when done
// or closed is closed or timeout fires. Nil channels never fire.
func (l *wlock) wait(done <-chan struct{}, timeout <-chan time.Time, closed <-chan struct{}) bool {
	ch := l.wakeChan()
	for {
		if l.state.Swap(2) == 0 {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		case <-timeout:
			return false
		case <-closed:
			return false
		}
	}
}

// wakeChan returns the channel sleepers wait on, making it on first use.
// It is published before any waiter sets state 2, so an unlock that sees
// 2 finds it.
func (l *wlock) wakeChan() chan struct{} {
	if p := l.wake.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{}, 1)
	if l.wake.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *l.wake.Load()
}
