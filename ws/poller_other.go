//go:build !linux

package ws

// Without epoll, every connection served by a Poller gets a goroutine
// (Poller.readLoop); this file only satisfies the platform interface.

import "errors"

type pollFD = struct{}

type pollerSys struct{}

// worker does not exist without epoll.
type worker struct{}

var errNoPoller = errors.New("ws: poller: not supported on this platform")

func (s *pollerSys) start(*Poller) error             { return nil }
func (s *pollerSys) takeOver(*Conn, *eventConn) bool { return false }
func (s *pollerSys) register(*Conn) error            { return errNoPoller }
func (s *pollerSys) rearm(*Conn, *worker) error      { return errNoPoller }
func (s *pollerSys) resume(*Conn) error              { return nil }
func (s *pollerSys) wake()                           {}
func (s *pollerSys) waitWorkers()                    {}
func (s *pollerSys) close() error                    { return nil }

func (w *worker) readAll(*Conn) bool { return false }
