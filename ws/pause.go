package ws

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// pauseState is the flow control of a connection served by a Poller (see
// Conn.Pause). It is small and zero until first used, so connections that
// never pause pay for it only in size.
type pauseState struct {
	on      atomic.Bool   // read by a worker before each read
	mu      sync.Mutex    // orders Resume and a goroutine reader's wait
	resumed chan struct{} // a goroutine reader (Poller.readLoop) waits on it while on; guarded by mu
}

// Pause stops a Poller from reading c until Resume: a Handler that queues
// each connection's messages for work elsewhere pauses the connection while
// its queue is full, so that a peer sending faster than its messages are
// processed is held back by TCP flow control instead of growing the queue.
// Messages already read when Pause is called are still delivered (at most
// one read buffer's worth, see PollerOptions.ReadBufferSize); nothing more
// is read from the socket meanwhile, not even pongs or a close frame, so a
// connection left paused longer than its PongTimeout fails the heartbeat.
// Pause and Resume may be called from any goroutine, including from inside
// OnMessage. They have no effect on a connection read with Read or Reader.
func (c *Conn) Pause() { c.pause.on.Store(true) }

// Resume undoes Pause: the Poller reads c again, starting with whatever
// arrived meanwhile.
func (c *Conn) Resume() {
	c.pause.mu.Lock()
	if !c.pause.on.Load() {
		c.pause.mu.Unlock()
		return
	}
	c.pause.on.Store(false)
	if c.pause.resumed != nil {
		close(c.pause.resumed)
		c.pause.resumed = nil
	}
	c.pause.mu.Unlock()
	if ev := c.polled(); ev != nil && !c.isClosed() {
		// Input that arrived while paused raised its (edge-triggered)
		// event then, and was left unread: raise it again.
		if err := ev.p.sys.resume(c); err != nil {
			c.closeTCPCause(fmt.Errorf("ws: poller: resume: %w", err))
		}
	}
}

// paused reports whether c is paused; a worker checks it before each read.
func (c *Conn) paused() bool { return c.pause.on.Load() }

// awaitResume blocks a goroutine reader while c is paused, until Resume or
// the end of the connection.
func (c *Conn) awaitResume() {
	if !c.pause.on.Load() {
		return
	}
	c.pause.mu.Lock()
	if !c.pause.on.Load() {
		c.pause.mu.Unlock()
		return
	}
	if c.pause.resumed == nil {
		c.pause.resumed = make(chan struct{})
	}
	ch := c.pause.resumed
	c.pause.mu.Unlock()
	select {
	case <-ch:
	case <-c.closed:
	}
}
