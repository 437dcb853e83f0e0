package ws

// Event-driven serving: a Poller reads many connections with a few worker
// goroutines instead of one goroutine (and its stack) per connection. The
// platform part (epoll on Linux, poller_linux.go) only says which
// connection is readable and reads its bytes; everything here turns those
// bytes into handler calls with the same parser and rules as Conn.Read.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Handler receives the messages and the end of the connections a Poller
// serves.
//
// OnMessage is called for every data message, in order, never concurrently
// for one connection (but concurrently for different ones). p is valid only
// until OnMessage returns: it aliases the worker's read buffer or a pooled
// buffer, so keep a copy if it must outlive the call. OnMessage may write to
// the connection (Write, WritePrepared, Close, CloseNow); it should not
// block for long, since the worker it runs on serves other connections
// meanwhile.
//
// OnClose is called once when the connection has ended, after the last
// OnMessage, with the reason: a *CloseError when the peer closed (see
// CloseStatus), an error wrapping ErrProtocol, ErrInvalidUTF8 or
// ErrMessageTooBig when the peer broke the protocol (the close code was
// sent), or an error wrapping ErrClosed when the connection was closed
// locally.
type Handler interface {
	OnMessage(c *Conn, typ MessageType, p []byte)
	OnClose(c *Conn, err error)
}

// PollerOptions configures a Poller.
type PollerOptions struct {
	// Workers is the number of goroutines reading connections and running
	// handlers; 0 means GOMAXPROCS (at least 2). A handler that blocks
	// holds one of them.
	Workers int

	// ReadBufferSize is each worker's read buffer; 0 means 32 KiB. It bounds
	// how much one connection reads per readiness event, not message sizes.
	ReadBufferSize int
}

// Poller serves connections without a goroutine per connection: on Linux,
// TCP and Unix connections are registered in an epoll instance, and a fixed
// pool of workers reads whichever is readable (one non-blocking read system
// call at a time, into the worker's buffer), decodes frames, answers pings,
// runs the close handshake and calls the Handler. The Poller takes such a
// connection's descriptor over from the runtime: the net.Conn the Conn was
// made with is closed (the socket stays open on a duplicate descriptor),
// and reads and writes go straight to the descriptor, which costs less CPU
// per message than the runtime's netpoller. An idle connection costs its
// Conn (about 650 bytes with its channel) and a 200-byte record here
// holding the descriptor, and no goroutine, stack or buffer.
//
// Connections without a file descriptor (TLS) and every connection on other
// platforms are served by one goroutine each, with Conn.Read, so Serve works
// everywhere; only the memory cost differs.
//
// Writes stay as they are: Write, WritePrepared, Ping and Close may be
// called from any goroutine, including from inside the Handler. Close sends
// the close frame and returns without waiting for the peer's answer (the
// Poller completes the handshake, or closes TCP after 5 seconds), since the
// worker that would read the answer may be the caller. The heartbeat
// (PingInterval) of polled connections is run by one goroutine per Poller.
// Read deadlines do not time out a polled connection (nothing waits on
// it; a deadline already passed fails it at its next input); close idle
// connections with a timer or the heartbeat instead.
//
// Cost: Workers goroutines, each with a ReadBufferSize buffer, plus one
// epoll descriptor and a wake-up pipe; per connection, the record above
// and a map entry. A pong, or a close frame, answered by a worker waits
// for the connection's frame lock like any writer (bounded by 5 seconds),
// so a peer that stops reading while a large write is in progress can hold
// a worker that long.
type Poller struct {
	opts PollerOptions
	sys  pollerSys // platform part

	mu     sync.Mutex
	closed bool
	nextID uint64
	conns  map[uint64]*Conn
	wg     sync.WaitGroup // workers, fallback readers, asynchronous finishes, heartbeat

	// The heartbeat goroutine (pollerbeat.go), started by the first
	// connection with a PingInterval.
	beatWake chan struct{}
	beatTick time.Duration
}

// ErrPollerClosed is returned by Serve after the Poller was closed.
var ErrPollerClosed = errors.New("ws: poller closed")

// NewPoller starts a Poller and its workers. Close stops them.
func NewPoller(opts *PollerOptions) (*Poller, error) {
	p := &Poller{conns: make(map[uint64]*Conn)}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.Workers <= 0 {
		p.opts.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	if p.opts.ReadBufferSize <= 0 {
		p.opts.ReadBufferSize = 32 << 10
	}
	if err := p.sys.start(p); err != nil {
		return nil, fmt.Errorf("ws: poller: %w", err)
	}
	return p, nil
}

// Serve hands c over to the Poller: from now on its messages go to h and
// it must not be read with Read or Reader. Serve returns at once (after
// delivering any messages that arrived with the handshake). It fails if c
// is already being read or closed, or the Poller is closed.
func (p *Poller) Serve(c *Conn, h Handler) error {
	if h == nil {
		return errors.New("ws: serve: nil handler")
	}
	if !c.reading.CompareAndSwap(false, true) {
		return errors.New("ws: serve: the connection is being read or is closed")
	}
	if c.mr.reading || c.msg != nil {
		c.reading.Store(false)
		return errors.New("ws: serve: the connection was already read with Reader or Read")
	}
	// Set up before the Conn is published in p.conns, where workers
	// find it.
	ev := &eventConn{p: p, h: h}
	ev.state.Store(connBusy) // until registered: closeTCP leaves finishing to register
	ok := p.sys.takeOver(c, ev)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.ncMu.Lock()
		c.ev = nil
		c.ncMu.Unlock()
		c.reading.Store(false)
		return fmt.Errorf("ws: serve: %w", ErrPollerClosed)
	}
	p.nextID++
	id := p.nextID
	p.conns[id] = c
	if !ok {
		p.wg.Add(1)
	} else {
		ev.id = id
	}
	p.mu.Unlock()
	if !ok {
		c.reading.Store(false)
		go p.readLoop(c, h, id)
		return nil
	}
	// Bytes pipelined behind the handshake are already here: deliver them
	// before anything else is read.
	if c.rpos < c.rend {
		c.evInput((*c.rbuf)[c.rpos:c.rend])
	}
	putBuf(c.rbuf)
	c.rbuf, c.rpos, c.rend = nil, 0, 0
	if c.hbInterval > 0 {
		p.startBeat(c)
	}
	p.register(c)
	return nil
}

// Close stops the workers and closes every connection still served (without
// a close handshake), calling their OnClose, and waits until all of that
// is done. Handlers must not call Close.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.beatWake != nil {
		select {
		case p.beatWake <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	p.sys.wake()
	p.sys.waitWorkers()
	// No worker runs any more: close the connections left; each one's
	// finish runs in closeTCP (synchronously, since p.closed is set).
	p.mu.Lock()
	conns := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.closeTCP()
	}
	p.wg.Wait()
	return p.sys.close()
}

// readLoop serves a connection the Poller cannot poll, with a goroutine.
func (p *Poller) readLoop(c *Conn, h Handler, id uint64) {
	defer p.wg.Done()
	ctx := context.Background()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			p.mu.Lock()
			delete(p.conns, id)
			p.mu.Unlock()
			h.OnClose(c, err)
			return
		}
		h.OnMessage(c, typ, b)
		c.awaitResume()
	}
}

// Connection states for the Poller: idle while no worker holds it; busy
// while a worker reads it; again when more input was signalled while busy
// (the worker reads once more before letting go, so no signal is lost);
// done once finished. Whoever moves a connection to done finishes it.
const (
	connIdle int32 = iota
	connBusy
	connAgain
	connDone
)

// eventConn is what a Conn served by a Poller needs beyond the Conn. It is
// allocated by Serve, so connections read with Read pay nothing for it.
// What a message touches comes first, within one cache line (the record
// is 192 bytes, a size class whose objects are 64-byte aligned).
type eventConn struct {
	state atomic.Int32
	hup   atomic.Bool // the peer's end of input was signalled (poller_linux.go)
	h     Handler
	fd    pollFD // the descriptor, owned by the Poller (fdconn_linux.go)
	id    uint64
	p     *Poller

	// Owned by the worker handling the connection.
	gather    []byte // data message gathered so far (in c.msg)
	lastTrial int    // gathered size at the last trial inflation
	draining  bool   // our close frame went out: discard input until EOF

	timerSet atomic.Bool
	timer    atomic.Pointer[time.Timer]

	beat beatState // owned by the Poller's heartbeat goroutine
}

// armCloseTimer closes TCP closeTimeout from now unless the connection ends
// first: the bound of a close handshake run by the Poller.
func (c *Conn) armCloseTimer() {
	ev := c.ev
	if !ev.timerSet.CompareAndSwap(false, true) {
		return
	}
	ev.timer.Store(time.AfterFunc(closeTimeout, func() {
		c.closeTCPCause(errors.New("ws: close handshake not completed within 5s"))
	}))
}

// evInput decodes input read by a worker and acts on every event. It
// returns when b is consumed or the connection is closing.
func (c *Conn) evInput(b []byte) {
	ev := c.ev
	for len(b) > 0 && !ev.draining && !c.isClosed() {
		if !c.p.inMessage && c.p.state == stHeader && c.p.hn == 0 {
			c.p.limit = c.limit.Load()
		}
		n, e, err := c.p.feed(b)
		b = b[n:]
		if err != nil {
			c.evFail(closeCodeFor(err), err)
			return
		}
		switch e.kind {
		case evControl:
			switch e.op {
			case opPing:
				c.writeControl(opPong, e.data, closeTimeout)
			case opPong:
				c.gotPong(e.data)
			case opClose:
				c.evPeerClosed(e)
				return
			}
		case evData:
			c.evData(e)
		}
	}
}

// evData handles one data event: a whole single-frame message is delivered
// from the read buffer; others are gathered in a pooled buffer.
func (c *Conn) evData(e event) {
	ev := c.ev
	if e.first && e.fin {
		if e.compressed {
			c.evInflate(e.op, e.data)
			return
		}
		ev.h.OnMessage(c, MessageType(e.op), e.data)
		return
	}
	ev.gather = c.appendMsg(ev.gather, e.data)
	if !e.fin {
		if e.compressed && len(ev.gather) >= 2*ev.lastTrial {
			// Fail early, as Read does (see msginflate.go).
			ev.lastTrial = len(ev.gather)
			if c.decomp == nil {
				c.decomp = c.newDecompressor()
			}
			if code, err := c.trialInflate(ev.gather, c.limit.Load(), e.op == opText); err != nil {
				c.evFail(code, err)
			}
		}
		return
	}
	if e.compressed {
		c.evInflate(e.op, ev.gather)
	} else {
		ev.h.OnMessage(c, MessageType(e.op), ev.gather)
	}
	c.evDropGather()
}

func (c *Conn) evDropGather() {
	putBuf(c.msg)
	c.msg = nil
	c.ev.gather = nil
	c.ev.lastTrial = 0
}

// evInflate decompresses a whole compressed message and delivers it.
func (c *Conn) evInflate(op opcode, in []byte) {
	if c.decomp == nil {
		c.decomp = c.newDecompressor()
	}
	out, nb, code, err := c.inflateWhole(in, c.limit.Load(), op == opText)
	if err != nil {
		c.evFail(code, err)
	} else {
		c.ev.h.OnMessage(c, MessageType(op), out)
	}
	putBuf(nb)
}

// evPeerClosed answers the peer's close frame as peerClosed does, without
// blocking: a client keeps draining until the server closes TCP, bounded by
// a timer.
func (c *Conn) evPeerClosed(e event) {
	c.answerClose(e)
	if c.role == roleClient {
		c.evDrain()
		return
	}
	c.closeTCP()
}

// evFail fails the connection as fail does, without blocking: after the
// close frame and a half-close, input is drained until the peer closes,
// bounded by a timer.
func (c *Conn) evFail(code StatusCode, err error) {
	if _, halfClosed := c.sendFail(code, err); halfClosed {
		c.evDrain()
		return
	}
	c.closeTCP()
}

// evDrain discards input from now on until the peer closes TCP or the
// close timer fires: the Poller's awaitEOF.
func (c *Conn) evDrain() {
	c.ev.draining = true
	c.armCloseTimer()
}

// evClosed is called by closeTCP for a connection served by a Poller: if
// no worker holds it, it is finished here (asynchronously, so that OnClose
// never runs inside the caller of CloseNow or Close).
func (c *Conn) evClosed() {
	p := c.ev.p
	if !c.ev.state.CompareAndSwap(connIdle, connDone) {
		return // a worker holds it and finishes it when done
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.finish(c)
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		p.finish(c)
	}()
}

// register starts polling c, which Serve holds (busy), or finishes it if
// it closed meanwhile.
func (p *Poller) register(c *Conn) {
	ev := c.ev
	if c.isClosed() {
		ev.state.Store(connDone)
		p.finish(c)
		return
	}
	ev.state.Store(connIdle)
	if err := p.sys.register(c); err != nil {
		// The descriptor is gone or cannot be polled.
		c.closeTCPCause(fmt.Errorf("ws: poller: %w", err))
	}
	p.settle(c)
}

// settle finishes c if it closed after its holder let go of it: a closeTCP
// that ran while c was busy left finishing to the holder, one that runs
// from now on finds c idle and finishes it itself; whoever moves it from
// idle to done finishes it.
func (p *Poller) settle(c *Conn) {
	if c.isClosed() && c.ev.state.CompareAndSwap(connIdle, connDone) {
		p.finish(c)
	}
}

// serve is a worker's turn on c after a readiness event: it claims c and
// reads it until drained, or asks the worker holding c to read once more.
func (p *Poller) serve(c *Conn, w *worker) {
	ev := c.ev
	for {
		switch ev.state.Load() {
		case connIdle:
			if ev.state.CompareAndSwap(connIdle, connBusy) {
				p.drain(c, w)
				return
			}
		case connBusy:
			if ev.state.CompareAndSwap(connBusy, connAgain) {
				return
			}
		default: // again already, or done
			return
		}
	}
}

// drain reads c until no input is left (or gives it back to the poller
// after a long turn, so that one busy peer cannot hold a worker), then lets
// go of it.
func (p *Poller) drain(c *Conn, w *worker) {
	ev := c.ev
	for {
		more := w.readAll(c)
		if c.isClosed() {
			ev.state.Store(connDone)
			p.finish(c)
			return
		}
		if more {
			ev.state.Store(connIdle)
			if err := p.sys.rearm(c, w); err != nil {
				c.closeTCPCause(fmt.Errorf("ws: poller: %w", err))
			}
			p.settle(c)
			return
		}
		if ev.state.CompareAndSwap(connBusy, connIdle) {
			p.settle(c)
			return
		}
		ev.state.Store(connBusy) // was again: read once more
	}
}

// finish delivers OnClose and forgets c; it runs once per connection.
func (p *Poller) finish(c *Conn) {
	ev := c.ev
	if t := ev.timer.Load(); t != nil {
		t.Stop()
	}
	p.mu.Lock()
	delete(p.conns, ev.id)
	p.mu.Unlock()
	c.evDropGather()
	c.p.release()
	if c.decomp != nil {
		c.decomp.release()
		c.decomp = nil
	}
	err := c.getReadErr()
	if err == nil {
		err = c.closedErr("read")
	}
	ev.h.OnClose(c, err)
}
