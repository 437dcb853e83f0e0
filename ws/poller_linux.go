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
// The Poller owns the descriptors of the connections it polls (fdconn_linux.go):
// they are not in the runtime's netpoller, and reads, writes and epoll
// calls that cannot block are made with syscall.RawSyscall under the
// descriptor's reference count (it cannot be closed and reused meanwhile).

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// pollFD is a polled connection's descriptor, part of its eventConn.
type pollFD = fdConn

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

// spinPolls is how many more times a worker that found no events looks
// again, yielding in between, before it parks: in a busy exchange the
// next input is usually microseconds away, and parking and being woken
// costs both sides more.
const spinPolls = 3

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
	if err := s.setUp(epfd, pipe[0]); err != nil {
		if s.epfile != nil {
			s.epfile.Close()
		} else {
			syscall.Close(epfd)
		}
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return err
	}
	s.epfd, s.wakeR, s.wakeW = epfd, pipe[0], pipe[1]
	for range p.opts.Workers {
		w := &worker{p: p, buf: make([]byte, p.opts.ReadBufferSize), events: make([]syscall.EpollEvent, eventsPerWait)}
		w.waitFn = w.wait
		s.workers.Add(1)
		go w.run()
	}
	return nil
}

// setUp registers the wake-up pipe's read end in epfd and epfd in Go's
// netpoller (s.epfile, s.eprc). On failure start closes what was made.
func (s *pollerSys) setUp(epfd, wakeR int) error {
	// Level-triggered and never drained: once written, it wakes every
	// worker. Its id is 0; connection ids start at 1.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wakeR, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	// The epoll descriptor is itself pollable: registered in Go's
	// netpoller, it lets idle workers park like goroutines blocked in a
	// Read instead of holding threads in epoll_wait (which would make the
	// scheduler hand their Ps to other threads at every wait).
	if err := syscall.SetNonblock(epfd, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	s.epfile = os.NewFile(uintptr(epfd), "epoll")
	rc, err := s.epfile.SyscallConn()
	if err != nil {
		return fmt.Errorf("epoll descriptor: %w", err)
	}
	s.eprc = rc
	return nil
}

// takeOver takes c's descriptor over into ev.fd (see fdConn), if it has
// one, and makes ev.fd c's net.Conn and ev its eventConn. Writers are held
// off meanwhile by frameMu; if a writer holds it, c is not taken over (it
// is served by a goroutine instead).
func (s *pollerSys) takeOver(c *Conn, ev *eventConn) bool {
	f := &ev.fd
	if !c.frameMu.tryLock() {
		return false
	}
	defer c.frameMu.unlock()
	if c.isClosed() || !takeFD(c.nc, f) {
		return false
	}
	c.ncMu.Lock()
	c.nc, c.ev = f, ev
	closed := c.isClosed()
	c.ncMu.Unlock()
	if closed {
		// closeTCP ran meanwhile and may have closed the original only.
		f.Close()
	}
	return true
}

func eventFor(id uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

// register adds c to the epoll instance.
func (s *pollerSys) register(c *Conn) error {
	f := &c.ev.fd
	if !f.incref() {
		return net.ErrClosed
	}
	defer f.decref()
	ev := eventFor(c.ev.id)
	if err := syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_ADD, f.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// rearm re-raises c's event while input is pending. The reference held
// meanwhile keeps a concurrent close from making us modify a reused number.
func (s *pollerSys) rearm(c *Conn, w *worker) error {
	f := &c.ev.fd
	if !f.incref() {
		return net.ErrClosed
	}
	defer f.decref()
	w.ctl = eventFor(c.ev.id)
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(s.epfd), syscall.EPOLL_CTL_MOD, uintptr(f.fd), uintptr(unsafe.Pointer(&w.ctl)), 0, 0)
	if e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	return nil
}

// resume re-raises c's event for Conn.Resume, from any goroutine.
func (s *pollerSys) resume(c *Conn) error {
	f := &c.ev.fd
	if !f.incref() {
		return nil // closed: nothing to read
	}
	defer f.decref()
	ctl := eventFor(c.ev.id)
	if err := syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_MOD, f.fd, &ctl); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
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
	ctl    syscall.EpollEvent // rearm's argument, here so that it does not escape per call

	waitFn  func(uintptr) bool
	nev     int
	waitErr error
}

// poll takes the ready events without blocking (epoll_pwait with timeout 0,
// which returns at once, hence the raw system call).
func (w *worker) poll(fd uintptr) {
	w.nev, w.waitErr = 0, nil
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&w.events[0])), uintptr(len(w.events)), 0, 0, 0)
		switch e {
		case 0:
			w.nev = int(n)
		case syscall.EINTR:
			continue
		default:
			w.waitErr = e
		}
		return
	}
}

// wait is the RawConn.Read callback on the epoll descriptor: it takes the
// ready events, and reports false (park until the descriptor is readable
// again) when there are none.
func (w *worker) wait(fd uintptr) bool {
	w.poll(fd)
	return w.nev > 0 || w.waitErr != nil
}

func (w *worker) run() {
	defer w.p.sys.workers.Done()
	for {
		// Take what is ready; with nothing ready, park in the runtime's
		// netpoller until the epoll descriptor is readable. Only one
		// worker at a time parks there (RawConn.Read holds its read lock);
		// the others queue behind it.
		w.poll(uintptr(w.p.sys.epfd))
		for spin := 0; w.nev == 0 && w.waitErr == nil && spin < spinPolls; spin++ {
			runtime.Gosched()
			w.poll(uintptr(w.p.sys.epfd))
		}
		var err error
		if w.nev == 0 && w.waitErr == nil {
			err = w.p.sys.eprc.Read(w.waitFn)
		}
		if err != nil || w.waitErr != nil {
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

// readAll reads c, which the worker holds, until a read leaves nothing
// behind, acting on the input. It reports true when c still had input
// after readsPerTurn full reads.
func (w *worker) readAll(c *Conn) (more bool) {
	ev := c.ev
	f := &ev.fd
	for range readsPerTurn {
		if c.paused() {
			return false // Resume re-raises the event
		}
		if !f.incref() {
			return false // closed
		}
		if expired(&f.rdl) {
			f.decref()
			if !c.isClosed() {
				c.setReadErr(c.readFailed(f.opErr("read", os.ErrDeadlineExceeded)))
			}
			return false
		}
		n, errno := f.readNow(w.buf)
		f.decref()
		if n > 0 {
			c.recvs.Add(1)
			if !ev.draining {
				c.evInput(w.buf[:n])
			}
			if c.isClosed() || n < len(w.buf) && !ev.hup.Load() {
				return false
			}
			continue
		}
		switch errno {
		case syscall.EAGAIN:
			return false
		case syscall.EINTR:
			continue
		}
		err := error(io.EOF)
		if errno != 0 {
			err = os.NewSyscallError("read", errno)
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
