package ws

import (
	"sync"
	"testing"
	"time"
)

// TestWlockExclusion: many goroutines increment a counter under the lock,
// some of them giving up while waiting; every increment that took the lock
// is counted exactly once and nobody is left asleep.
func TestWlockExclusion(t *testing.T) {
	var l wlock
	closed := make(chan struct{})
	var wg sync.WaitGroup
	var inside, counted, took int
	var mu sync.Mutex // only to read took safely at the end
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				var done chan struct{}
				if (g+i)%7 == 0 {
					// Some waiters give up at once: their tokens and the
					// state they leave must not strand the others.
					done = make(chan struct{})
					close(done)
				}
				if !l.tryLock() && !l.wait(done, nil, closed) {
					continue
				}
				inside++
				if inside != 1 {
					t.Errorf("%d holders at once", inside)
				}
				counted++
				inside--
				l.unlock()
				mu.Lock()
				took++
				mu.Unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("a waiter was stranded")
	}
	if counted != took {
		t.Fatalf("counted %d increments, %d lock holds", counted, took)
	}
	if !l.tryLock() {
		t.Fatal("lock held after everyone left")
	}
}

// TestWlockWaitGivesUp: a waiter returns false when its timeout fires or
// the connection closes, and the lock still works afterwards.
func TestWlockWaitGivesUp(t *testing.T) {
	var l wlock
	if !l.tryLock() {
		t.Fatal("a new lock is not free")
	}
	if l.wait(nil, time.After(10*time.Millisecond), nil) {
		t.Fatal("took a held lock")
	}
	closed := make(chan struct{})
	close(closed)
	if l.wait(nil, nil, closed) {
		t.Fatal("took a held lock")
	}
	got := make(chan bool)
	go func() { got <- l.wait(nil, nil, nil) }()
	time.Sleep(10 * time.Millisecond)
	l.unlock()
	if !<-got {
		t.Fatal("the waiter did not get the released lock")
	}
	l.unlock()
	if !l.tryLock() {
		t.Fatal("lock not free after the last unlock")
	}
}
