//go:build linux

package ws

// fdConn is the net.Conn of a TCP or Unix connection whose descriptor a
// Poller took over from the runtime.
//
// Why: a connection left in Go's netpoller is registered in two epoll
// instances, the runtime's and the Poller's, so every segment that arrives
// wakes both and the runtime's netpoll then reports events (input, and
// write space after every ACK) that no goroutine waits for; and every read
// and write goes through the runtime's descriptor lock, deadline reset and
// entersyscall/exitsyscall, where sysmon hands the P of a thread still in
// a loopback write (which runs the peer's receive processing) to another
// thread. Measured on a 2-vCPU guest, that was a third of the Poller's CPU
// time per echoed message beyond the read and write themselves.
//
// So Serve duplicates the descriptor and closes the net.Conn it came from
// (which removes it from the runtime's epoll; the socket lives on through
// the duplicate), and from then on the connection is read and written with
// non-blocking raw system calls (syscall.RawSyscall: no scheduler
// involvement, which is right for calls that never block).
//
// Lifetime: state counts the operations in progress plus one for the open
// descriptor. Close only marks it closed and drops that one; whoever drops
// the last reference closes the descriptor, so a number cannot be closed,
// and reused by another connection, under a read, write or epoll_ctl in
// progress. An operation that must wait (a full socket buffer; a Read with
// nothing to read) waits in ppoll(2), an ordinary blocking system call, in
// slices of at most fdWaitSlice so that a deadline moved meanwhile (which
// is how a cancelled context interrupts a write) is noticed; Close wakes
// waiters at once with shutdown(2).

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// fdClosed is the closed flag in fdConn.state; the bits below count
// references.
const fdClosed = 1 << 62

// fdWaitSlice bounds one ppoll of a blocked Read or Write.
const fdWaitSlice = 50 * time.Millisecond

// The fields used per message come first (see eventConn).
type fdConn struct {
	fd      int
	state   atomic.Uint64 // fdClosed | references
	rdl     atomic.Int64  // read deadline, Unix nanoseconds (0: none)
	wdl     atomic.Int64  // write deadline
	waiters atomic.Int32  // operations in ppoll
	laddr   net.Addr
	raddr   net.Addr
}

// takeFD takes nc's descriptor over into f, if nc is a TCP or Unix
// connection (a wrapper with buffered state of its own, such as TLS,
// cannot be read underneath). On success nc is closed and f replaces it.
func takeFD(nc net.Conn, f *fdConn) bool {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return false
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	nfd := -1
	cerr := raw.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e == 0 {
			nfd = int(r)
		}
	})
	if cerr != nil || nfd < 0 {
		return false
	}
	// The duplicate shares the open file description, which the net
	// package made non-blocking.
	f.fd, f.laddr, f.raddr = nfd, nc.LocalAddr(), nc.RemoteAddr()
	f.state.Store(1)
	nc.Close() // deregisters the original from the runtime's netpoller
	return true
}

// incref takes a reference for an operation; false once closed.
func (f *fdConn) incref() bool {
	for {
		s := f.state.Load()
		if s&fdClosed != 0 {
			return false
		}
		if f.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// decref drops a reference, closing the descriptor with the last one
// after Close.
func (f *fdConn) decref() {
	if f.state.Add(^uint64(0)) == fdClosed {
		syscall.Close(f.fd)
	}
}

func (f *fdConn) isClosed() bool { return f.state.Load()&fdClosed != 0 }

func (f *fdConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: f.laddr.Network(), Source: f.laddr, Addr: f.raddr, Err: err}
}

// readNow makes one non-blocking read; the caller holds a reference.
func (f *fdConn) readNow(b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(f.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// Read reads like a blocking net.Conn (waiting in ppoll when there is no
// input). The Poller does not use it: it reads with readNow.
func (f *fdConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !f.incref() {
		return 0, f.opErr("read", net.ErrClosed)
	}
	defer f.decref()
	for {
		if expired(&f.rdl) {
			return 0, f.opErr("read", os.ErrDeadlineExceeded)
		}
		n, e := f.readNow(b)
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := f.wait(pollIn, &f.rdl); err != nil {
				return 0, f.opErr("read", err)
			}
		default:
			return 0, f.opErr("read", os.NewSyscallError("read", e))
		}
	}
}

// Write writes all of b with non-blocking writes, waiting in ppoll while
// the socket buffer is full.
func (f *fdConn) Write(b []byte) (int, error) {
	if !f.incref() {
		return 0, f.opErr("write", net.ErrClosed)
	}
	defer f.decref()
	if len(b) == 0 {
		if expired(&f.wdl) {
			return 0, f.opErr("write", os.ErrDeadlineExceeded)
		}
		return 0, nil
	}
	n := 0
	for n < len(b) {
		if expired(&f.wdl) {
			return n, f.opErr("write", os.ErrDeadlineExceeded)
		}
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(f.fd), uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		switch e {
		case 0:
			n += int(m)
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := f.wait(pollOut, &f.wdl); err != nil {
				return n, f.opErr("write", err)
			}
		default:
			return n, f.opErr("write", os.NewSyscallError("write", e))
		}
	}
	return n, nil
}

// expired reports whether the deadline in dl has passed.
func expired(dl *atomic.Int64) bool {
	d := dl.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

const (
	pollIn  = 0x1 // POLLIN
	pollOut = 0x4 // POLLOUT
)

// pollFd is struct pollfd.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// wait blocks until the descriptor may be ready for events, the deadline
// in dl passes (reported by the caller's next check) or at most
// fdWaitSlice; the caller then retries. The caller holds a reference.
func (f *fdConn) wait(events int16, dl *atomic.Int64) error {
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	// Close sets the flag before it looks at waiters: one of the two sees
	// the other.
	if f.isClosed() {
		return net.ErrClosed
	}
	timeout := fdWaitSlice
	if d := dl.Load(); d != 0 {
		timeout = min(timeout, time.Duration(d-time.Now().UnixNano()))
		if timeout <= 0 {
			return nil // the caller's check reports it
		}
	}
	ts := syscall.NsecToTimespec(int64(timeout))
	pfd := pollFd{fd: int32(f.fd), events: events}
	_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if e != 0 && e != syscall.EINTR {
		return os.NewSyscallError("ppoll", e)
	}
	if f.isClosed() {
		return net.ErrClosed
	}
	return nil
}

// Close marks the connection closed; the descriptor is closed now, or by
// the last operation still in progress.
func (f *fdConn) Close() error {
	for {
		s := f.state.Load()
		if s&fdClosed != 0 {
			return f.opErr("close", net.ErrClosed)
		}
		if f.state.CompareAndSwap(s, s|fdClosed) {
			break
		}
	}
	if f.waiters.Load() > 0 {
		// Still referenced by the waiters (and by the open reference
		// dropped below), so the number is ours.
		syscall.Shutdown(f.fd, syscall.SHUT_RDWR)
	}
	f.decref()
	return nil
}

// CloseWrite shuts down the writing side (what closeWriter expects).
func (f *fdConn) CloseWrite() error {
	if !f.incref() {
		return f.opErr("close", net.ErrClosed)
	}
	defer f.decref()
	if err := syscall.Shutdown(f.fd, syscall.SHUT_WR); err != nil {
		return f.opErr("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

func (f *fdConn) LocalAddr() net.Addr  { return f.laddr }
func (f *fdConn) RemoteAddr() net.Addr { return f.raddr }

func (f *fdConn) SetDeadline(t time.Time) error {
	f.SetReadDeadline(t)
	return f.SetWriteDeadline(t)
}

func (f *fdConn) SetReadDeadline(t time.Time) error {
	f.rdl.Store(deadlineNanos(t))
	return nil
}

func (f *fdConn) SetWriteDeadline(t time.Time) error {
	f.wdl.Store(deadlineNanos(t))
	return nil
}

func deadlineNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}
