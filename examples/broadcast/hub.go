package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// writeTimeout bounds one write to a client.
const writeTimeout = 10 * time.Second

// hub relays every message from one client to all the others.
type hub struct {
	log *slog.Logger
	// queue is each client's send queue length. It bounds the memory a slow
	// reader can hold; a client whose queue is full when a message arrives
	// is disconnected rather than slowing everyone else down.
	queue int

	mu      sync.Mutex
	clients map[*client]struct{}
	closing bool
	idle    chan struct{} // closed once closing and no client is left
}

func newHub(log *slog.Logger, queue int) *hub {
	return &hub{log: log, queue: queue, clients: make(map[*client]struct{})}
}

// client is one connection: its handler goroutine reads, a writer goroutine
// (owned by the handler) drains send.
type client struct {
	c      *ws.Conn
	remote string
	send   chan *ws.PreparedMessage

	// ctx ends when the client must stop; cancelling it also aborts a write
	// in progress. closeCode (0: none) is what the writer then sends, set
	// before cancel.
	ctx       context.Context
	cancel    context.CancelFunc
	stopOnce  sync.Once
	closeCode ws.StatusCode
	closeWhy  string
}

// stop ends the client: the writer closes the connection with code and why
// (code 0: the connection is already ending), or abruptly when a write was
// in progress. Only the first call counts.
func (cl *client) stop(code ws.StatusCode, why string) {
	cl.stopOnce.Do(func() {
		cl.closeCode, cl.closeWhy = code, why
		cl.cancel()
	})
}

// serve runs a connection until it ends. It returns once the client's
// writer has exited too.
func (h *hub) serve(c *ws.Conn, remote string) {
	cl := &client{c: c, remote: remote, send: make(chan *ws.PreparedMessage, h.queue)}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	if !h.join(cl) {
		c.Close(ws.StatusGoingAway, "server shutting down")
		return
	}
	defer h.leave(cl)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl.writeLoop()
	}()
	err := h.readLoop(cl)
	cl.stop(0, "")
	wg.Wait()
	h.log.Debug("client left", "remote", remote, "status", ws.CloseStatus(err), "err", err)
}

// readLoop broadcasts every message the client sends, until its connection
// ends (Close from the writer ends it too).
func (h *hub) readLoop(cl *client) error {
	ctx := context.Background() // the Conn's close handling bounds Read
	for {
		typ, p, err := cl.c.Read(ctx)
		if err != nil {
			return err
		}
		// Framed once, written to every other client as is.
		pm, err := ws.NewPreparedMessage(typ, p)
		if err != nil {
			return err
		}
		h.broadcast(pm, cl)
	}
}

// writeLoop sends queued messages until the client is stopped or a write
// fails.
func (cl *client) writeLoop() {
	for {
		select {
		case pm := <-cl.send:
			ctx, cancel := context.WithTimeout(cl.ctx, writeTimeout)
			err := cl.c.WritePrepared(ctx, pm)
			cancel()
			if err != nil {
				cl.c.CloseNow() // ends the reader too
				return
			}
		case <-cl.ctx.Done():
			if cl.closeCode != 0 {
				cl.c.Close(cl.closeCode, cl.closeWhy)
			}
			return
		}
	}
}

func (h *hub) join(cl *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.clients[cl] = struct{}{}
	return true
}

func (h *hub) leave(cl *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, cl)
	if h.closing && len(h.clients) == 0 {
		close(h.idle)
	}
}

// broadcast queues pm for every client but from, never blocking: a client
// whose queue is full is dropped.
func (h *hub) broadcast(pm *ws.PreparedMessage, from *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		if cl == from {
			continue
		}
		select {
		case cl.send <- pm:
		default:
			h.log.Info("dropping slow client", "remote", cl.remote)
			cl.stop(ws.StatusPolicyViolation, "too slow")
		}
	}
}

// closeAndWait closes every connection with 1001, refuses new ones, and
// waits until all handlers have finished or ctx ends.
func (h *hub) closeAndWait(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.idle = make(chan struct{})
	if len(h.clients) == 0 {
		close(h.idle)
	}
	for cl := range h.clients {
		cl.stop(ws.StatusGoingAway, "server shutting down")
	}
	idle := h.idle
	h.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return errors.New("connections still open after the shutdown timeout")
	}
}
