//go:build linux

package ws

// The Linux part of the Poller: one epoll instance, connections registered
// edge-triggered (EPOLLET: one event per arrival of input, no system call
// to re-arm after each read). The epoll descriptor is itself registered in
// Go's netpoller, and workers take events from it with a non-blocking
// epoll_wait, parking in the netpoller when there are none, so no channel
// sits between readiness and reading and no thread blocks in a system
// call. The connection states of
// serve.go make sure one worker at a time reads a connection and that an
// event arriving meanwhile makes it read again. A worker reads until a read
// returns less than its buffer (the socket was empty then; later input
// raises a new event), or, after readsPerTurn full reads, re-queues the
// connection with EPOLL_CTL_MOD, which re-raises the event since input is
// pending.
// Reads go through syscall.RawConn.Read with a callback that makes one
// non-blocking read system call and always reports done, so Go's netpoller
// never parks on the descriptor, while the descriptor stays referenced (it
// cannot be closed and reused during the read).

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// rawConn is how a Poller reaches a connection's descriptor.
type rawConn = syscall.RawConn

// epollET is EPOLLET as a uint32 (the syscall constant is negative on some
// platforms).
const epollET = 1 << 31

// pollEvents is what connections are registered for.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET

// eventsPerWait bounds the readiness events one worker takes at a time, so
// that a burst is shared between workers.
const eventsPerWait = 32

// readsPerTurn bounds the reads of one connection per readiness event when
// it keeps filling the buffer: a busy connection cannot starve the others
// (it is re-armed and comes back).
const readsPerTurn = 4

type pollerSys struct {
	epfd    int
	epfile  *os.File        // epfd, registered in Go's netpoller
	eprc    syscall.RawConn // epfile's raw access: workers wait on it
	wakeR   int             // read end of the pipe that stops the workers
	wakeW   int
	workers sync.WaitGroup
}

func (s *pollerSys) start(p *Poller) error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return os.NewSyscallError("pipe2", err)
	}
	// Level-triggered and never drained: once written, it wakes every
	// worker. Its id is 0; connection ids start at 1.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return os.NewSyscallError("epoll_ctl", err)
	}
	// The epoll descriptor is itself pollable: registered in Go's
	// netpoller, it lets idle workers park like goroutines blocked in a
	// Read instead of holding threads in epoll_wait (which would make the
	// scheduler hand their Ps to other threads at every wait).
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return os.NewSyscallError("fcntl", err)
	}
	s.epfile = os.NewFile(uintptr(epfd), "epoll")
	rc, err := s.epfile.SyscallConn()
	if err != nil {
		s.epfile.Close()
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return fmt.Errorf("epoll descriptor: %w", err)
	}
	s.epfd, s.eprc, s.wakeR, s.wakeW = epfd, rc, pipe[0], pipe[1]
	for range p.opts.Workers {
		w := &worker{p: p, buf: make([]byte, p.opts.ReadBufferSize), events: make([]syscall.EpollEvent, eventsPerWait)}
		w.readFn, w.rearmFn, w.waitFn = w.read, w.rearm, w.wait
		s.workers.Add(1)
		go w.run()
	}
	return nil
}

// rawConn returns the descriptor access of c, if it has one.
func (s *pollerSys) rawConn(c *Conn) (rawConn, bool) {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	return raw, true
}

func eventFor(id uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

// register adds c to the epoll instance.
func (s *pollerSys) register(c *Conn) error {
	var err error
	cerr := c.ev.raw.Control(func(fd uintptr) {
		ev := eventFor(c.ev.id)
		err = syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// rearm re-raises c's event while input is pending. Control holds the
// descriptor, so a concurrent close cannot make us modify a reused number.
// The callback is bound to the worker once, so re-arming allocates nothing.
func (s *pollerSys) rearm(c *Conn, w *worker) error {
	w.ctlID, w.ctlErr = c.ev.id, nil
	if err := c.ev.raw.Control(w.rearmFn); err != nil {
		return err
	}
	if w.ctlErr != nil {
		return os.NewSyscallError("epoll_ctl", w.ctlErr)
	}
	return nil
}

// wake makes every worker return.
func (s *pollerSys) wake() {
	syscall.Write(s.wakeW, []byte{1})
}

func (s *pollerSys) waitWorkers() { s.workers.Wait() }

func (s *pollerSys) close() error {
	err := s.epfile.Close()
	syscall.Close(s.wakeR)
	syscall.Close(s.wakeW)
	if err != nil {
		return fmt.Errorf("closing the epoll descriptor: %w", err)
	}
	return nil
}

// worker waits for readable connections and serves them.
type worker struct {
	p      *Poller
	buf    []byte
	events []syscall.EpollEvent
	readFn func(uintptr) bool
	n      int
	err    error

	rearmFn func(uintptr)
	ctlID   uint64
	ctlErr  error

	waitFn  func(uintptr) bool
	nev     int
	waitErr error
}

// wait is the RawConn.Read callback on the epoll descriptor: it takes the
// ready events without blocking, and reports false (park until the
// descriptor is readable again) when there are none.
func (w *worker) wait(fd uintptr) bool {
	w.nev, w.waitErr = 0, nil
	for {
		n, err := syscall.EpollWait(int(fd), w.events, 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			w.waitErr = err
			return true
		}
		w.nev = n
		return n > 0
	}
}

// rearm is the Control callback of pollerSys.rearm.
func (w *worker) rearm(fd uintptr) {
	e := eventFor(w.ctlID)
	w.ctlErr = syscall.EpollCtl(w.p.sys.epfd, syscall.EPOLL_CTL_MOD, int(fd), &e)
}

func (w *worker) run() {
	defer w.p.sys.workers.Done()
	for {
		// Only one worker at a time waits on the descriptor (RawConn.Read
		// holds its read lock); the others queue behind it while it is
		// parked, and take the next events once it has its batch.
		if err := w.p.sys.eprc.Read(w.waitFn); err != nil || w.waitErr != nil {
			slog.Error("ws: poller: waiting for events failed, worker stops", "err", err, "epoll_wait", w.waitErr)
			return
		}
		for _, e := range w.events[:w.nev] {
			id := uint64(uint32(e.Fd)) | uint64(uint32(e.Pad))<<32
			if id == 0 {
				return // Close: connections taken but not served are closed by it
			}
			w.p.mu.Lock()
			c := w.p.conns[id]
			w.p.mu.Unlock()
			if c == nil {
				continue
			}
			if e.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				// The end of input came with this event: a read that
				// returns data does not show it, so read until it does.
				c.ev.hup.Store(true)
			}
			w.p.serve(c, w)
		}
	}
}

// read is the RawConn.Read callback: one non-blocking read, never a wait.
func (w *worker) read(fd uintptr) bool {
	w.n, w.err = syscall.Read(int(fd), w.buf)
	if w.n < 0 {
		w.n = 0
	}
	return true
}

// readAll reads c, which the worker holds, until a read leaves nothing
// behind, acting on the input. It reports true when c still had input
// after readsPerTurn full reads.
func (w *worker) readAll(c *Conn) (more bool) {
	ev := c.ev
	for range readsPerTurn {
		w.n, w.err = 0, nil
		if err := ev.raw.Read(w.readFn); err != nil {
			// Closed, or a read deadline passed.
			if !c.isClosed() {
				c.setReadErr(c.readFailed(err))
			}
			return false
		}
		if w.n > 0 {
			c.recvs.Add(1)
			if !ev.draining {
				c.evInput(w.buf[:w.n])
			}
			if c.isClosed() || w.n < len(w.buf) && !ev.hup.Load() {
				return false
			}
			continue
		}
		switch w.err {
		case syscall.EAGAIN:
			return false
		case syscall.EINTR:
			continue
		}
		err := error(io.EOF)
		if w.err != nil {
			err = os.NewSyscallError("read", w.err)
		}
		switch {
		case c.isClosed():
		case ev.draining:
			c.closeTCP() // the peer closed after our close frame: done
		default:
			c.setReadErr(c.readFailed(err))
		}
		return false
	}
	return true
}
