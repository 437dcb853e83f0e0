package ws

// The heartbeat of connections served by a Poller: one goroutine per
// Poller pings every polled connection that has a PingInterval, instead of
// a goroutine (and its stack) per connection. The rule is the one of
// Conn.heartbeat: a connection from which nothing at all (pong or other
// input) arrived within PongTimeout of a ping is closed with
// ErrPongTimeout.

import (
	"encoding/binary"
	"time"
)

// minBeatTick bounds how often the heartbeat goroutine wakes up.
const minBeatTick = 5 * time.Millisecond

// beatState is a polled connection's heartbeat, owned by the Poller's
// heartbeat goroutine. Times are monotonic nanoseconds since the
// heartbeat goroutine started, to keep the per-connection record small.
type beatState struct {
	next     int64  // next ping (0: not scheduled yet)
	deadline int64  // answer due (0: no ping outstanding)
	recvs    uint32 // Conn.recvs when the ping went out
}

// startBeat makes the heartbeat goroutine serve c; Serve calls it for
// connections with a PingInterval.
func (p *Poller) startBeat(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	tick := max(c.hbInterval/4, minBeatTick)
	if p.beatTick == 0 || tick < p.beatTick {
		p.beatTick = tick
	}
	if p.beatWake == nil {
		p.beatWake = make(chan struct{}, 1)
		p.wg.Add(1)
		go p.beat()
	}
	select {
	case p.beatWake <- struct{}{}: // a smaller tick may apply
	default:
	}
}

// beat runs until the Poller closes.
func (p *Poller) beat() {
	defer p.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	var conns []*Conn
	var seq uint64
	epoch := time.Now()
	for {
		select {
		case <-t.C:
		case <-p.beatWake:
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		tick := p.beatTick
		conns = conns[:0]
		for _, c := range p.conns {
			if c.ev != nil && c.hbInterval > 0 {
				conns = append(conns, c)
			}
		}
		p.mu.Unlock()
		now := int64(time.Since(epoch)) + 1 // never 0
		for _, c := range conns {
			seq++
			c.ev.beat.check(c, now, seq)
		}
		clear(conns) // hold no Conn between ticks
		t.Reset(tick)
	}
}

// check pings c when due and closes it when a ping went unanswered.
func (b *beatState) check(c *Conn, now int64, seq uint64) {
	if c.isClosed() {
		return
	}
	if b.next == 0 {
		b.next = now + int64(c.hbInterval)
		return
	}
	recvs := c.recvs.Load()
	if b.deadline != 0 {
		if recvs != b.recvs {
			b.deadline = 0 // alive
		} else if now > b.deadline {
			c.closeTCPCause(errPongTimeout)
			return
		}
	}
	if now < b.next {
		return
	}
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], seq)
	// Do not wait long behind a writer: a connection that is writing gets
	// its ping at the next tick.
	if !c.writeControl(opPing, payload[:], minBeatTick) {
		return
	}
	b.next = now + int64(c.hbInterval)
	if b.deadline == 0 {
		b.deadline, b.recvs = now+int64(c.hbTimeout), recvs
	}
}
