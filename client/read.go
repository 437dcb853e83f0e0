package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// inbound is the union of the fields of every server frame the fallback
// path (handleJSON) reads before decoding the frame into its typed struct.
type inbound struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Conv        string `json:"conv"`
	Seq         int64  `json:"seq"`
	More        bool   `json:"more"`
	ClientMsgID string `json:"client_msg_id"`
	Code        string `json:"code"`
	Message     string `json:"message"`
}

// readLoop reads frames until the connection ends. It is the only goroutine
// touching c.track's writers, c.syncing and the decoding state while the
// connection lives. ctx is the connection's; reads are interrupted by
// closing the connection (see connectOnce).
func (c *Client) readLoop(ctx context.Context, conn *ws.Conn, attempt *int) error {
	for {
		typ, p, err := conn.Read(context.Background())
		if err != nil {
			return err
		}
		if err := c.handle(ctx, conn, typ, p, attempt); err != nil {
			return err
		}
	}
}

// servePolled hands conn to Options.Poller and waits until it has ended;
// the Poller's workers then do what readLoop does, one frame at a time.
func (c *Client) servePolled(ctx context.Context, conn *ws.Conn, attempt *int) error {
	h := &polled{c: c, ctx: ctx, attempt: attempt, done: make(chan struct{})}
	if err := c.opts.Poller.Serve(conn, h); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	<-h.done
	return h.err
}

// polled is the ws.Handler of a connection read by a Poller. Its calls for
// one connection never overlap, and OnClose comes last.
type polled struct {
	c       *Client
	ctx     context.Context
	attempt *int
	err     error // the first error: a handling error, or the end of the connection
	done    chan struct{}
}

func (h *polled) OnMessage(conn *ws.Conn, typ ws.MessageType, p []byte) {
	if h.err != nil {
		return // closing after a handling error
	}
	if err := h.c.handle(h.ctx, conn, typ, p, h.attempt); err != nil {
		h.err = err
		conn.CloseNow()
	}
}

func (h *polled) OnClose(_ *ws.Conn, err error) {
	if h.err == nil {
		h.err = err
	}
	close(h.done)
}

// handle handles one frame read from the server.
func (c *Client) handle(ctx context.Context, conn *ws.Conn, typ ws.MessageType, p []byte, attempt *int) error {
	c.lastRead.Store(sinceStart())
	if typ != ws.MessageText {
		return nil
	}
	if c.dec.decode(p, &c.wire) {
		return c.handleWire(ctx, conn, &c.wire, p, attempt)
	}
	return c.handleJSON(ctx, conn, p, attempt)
}

// handleWire handles a frame the single-pass decoder read (wire.go): the
// frames of every message without encoding/json, the rest with it.
func (c *Client) handleWire(ctx context.Context, conn *ws.Conn, f *wireFrame, p []byte, attempt *int) error {
	switch string(f.typ) {
	case protocol.TypeMessage:
		m := &protocol.Message{Conv: c.intern(f.conv), Seq: f.seq, Sender: c.intern(f.sender), TS: f.ts}
		m.ClientMsgID, m.Body = c.twoStrings(f.clientMsgID, f.body)
		if f.meta != nil {
			m.Meta = bytes.Clone(f.meta)
		}
		return c.onMessage(ctx, conn, m)
	case protocol.TypeAck:
		return onAck(c, ctx, conn, ackFields[[]byte]{id: f.id, conv: f.conv, clientMsgID: f.clientMsgID,
			seq: f.seq, ts: f.ts, dup: f.dup}, p)
	case protocol.TypeSyncEnd:
		c.onSyncEnd(ctx, conn, c.intern(f.conv), f.more)
		settle(c, f.id, p)
	case protocol.TypeResult:
		settle(c, f.id, p)
	case protocol.TypeError:
		return c.onError(ctx, string(f.id), protocol.Code(f.code), string(f.message), p)
	case protocol.TypeReceipt:
		return c.emit(ctx, Event{Receipt: &protocol.Receipt{Type: protocol.TypeReceipt,
			Conv: c.intern(f.conv), User: c.intern(f.user), Seq: f.seq}})
	case protocol.TypeTypingEvent:
		return c.emit(ctx, Event{Typing: &protocol.Typing{Type: protocol.TypeTypingEvent,
			Conv: c.intern(f.conv), User: c.intern(f.user), TTLMS: f.ttlMS}})
	case protocol.TypeWelcome:
		return c.onWelcomeJSON(ctx, conn, p, attempt)
	default:
		return c.onEvent(ctx, string(f.typ), p)
	}
	return nil
}

// handleJSON handles a frame with encoding/json: the fallback for frames
// the single-pass decoder leaves alone (odd but valid JSON, or invalid).
func (c *Client) handleJSON(ctx context.Context, conn *ws.Conn, p []byte, attempt *int) error {
	var head inbound
	if err := json.Unmarshal(p, &head); err != nil {
		c.log.Warn("client: server sent invalid JSON", "err", err)
		return nil
	}
	switch head.Type {
	case protocol.TypeWelcome:
		return c.onWelcomeJSON(ctx, conn, p, attempt)
	case protocol.TypeMessage:
		m := new(protocol.Message)
		if err := json.Unmarshal(p, m); err != nil {
			return fmt.Errorf("client: decode message: %w", err)
		}
		return c.onMessage(ctx, conn, m)
	case protocol.TypeAck:
		var a protocol.Ack
		if err := json.Unmarshal(p, &a); err != nil {
			return fmt.Errorf("client: decode ack: %w", err)
		}
		return onAck(c, ctx, conn, ackFields[string]{id: a.ID, conv: a.Conv, clientMsgID: a.ClientMsgID,
			seq: a.Seq, ts: a.TS, dup: a.Duplicate}, p)
	case protocol.TypeSyncEnd:
		c.onSyncEnd(ctx, conn, head.Conv, head.More)
		settle(c, head.ID, p)
	case protocol.TypeResult:
		settle(c, head.ID, p)
	case protocol.TypeError:
		return c.onError(ctx, head.ID, protocol.Code(head.Code), head.Message, p)
	default:
		return c.onEvent(ctx, head.Type, p)
	}
	return nil
}

// intern returns b as a string, the same string each time for the few
// conversation and user ids a client sees, so that messages do not
// allocate them. The table is owned by the reader and bounded.
func (c *Client) intern(b []byte) string {
	if s, ok := c.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.names) >= 4096 {
		clear(c.names)
	}
	c.names[s] = s
	return s
}

// twoStrings returns a and b as strings sharing one allocation.
func (c *Client) twoStrings(a, b []byte) (string, string) {
	c.strBuf = append(append(c.strBuf[:0], a...), b...)
	s := string(c.strBuf)
	if cap(c.strBuf) > 64<<10 {
		c.strBuf = nil // do not keep a buffer sized by one huge message
	}
	return s[:len(a)], s[len(a):]
}

func (c *Client) onWelcomeJSON(ctx context.Context, conn *ws.Conn, p []byte, attempt *int) error {
	var w protocol.Welcome
	if err := json.Unmarshal(p, &w); err != nil {
		return fmt.Errorf("client: decode welcome: %w", err)
	}
	*attempt = 0
	return c.onWelcome(ctx, conn, &w)
}

func (c *Client) onSyncEnd(ctx context.Context, conn *ws.Conn, conv string, more bool) {
	delete(c.syncing, conv)
	if more || c.track.hasGap(conv) {
		c.startSync(ctx, conn, conv, c.track.seq(conv))
	}
}

func (c *Client) onWelcome(ctx context.Context, conn *ws.Conn, w *protocol.Welcome) error {
	c.mu.Lock()
	c.user = w.User
	c.state = StateConnected
	chans := make(map[string]int64, len(c.channels))
	for k, v := range c.channels {
		chans[k] = v
	}
	c.mu.Unlock()
	c.emitNow(Event{State: &StateChange{State: StateConnected}})
	if err := c.emit(ctx, Event{Welcome: w}); err != nil {
		return err
	}
	for conv, after := range c.track.welcome(w.Conversations, c.opts.SyncFromStart) {
		c.startSync(ctx, conn, conv, after)
	}
	for ch, off := range chans {
		f := frame{Type: protocol.TypeSubscribe, ID: c.newID(), Channel: ch}
		if off > 0 {
			f.Since = &off
		}
		if err := c.write(ctx, conn, f); err != nil {
			return err
		}
	}
	return c.flushQueue(ctx, conn)
}

// flushQueue sends every queued message not yet sent on this connection, in
// queue order, with its original client message id. flushMu keeps
// concurrent flushes from reordering messages.
func (c *Client) flushQueue(ctx context.Context, conn *ws.Conn) error {
	c.flushMu.Lock()
	c.flushWanted.Store(false)
	err := c.flushLocked(ctx, conn)
	c.flushMu.Unlock()
	if err != nil {
		return err
	}
	c.flushIfWanted(conn)
	return nil
}

// kick flushes the queue after a send was queued, unless another goroutine
// is flushing: that one then flushes again when it is done, so that sends
// queued meanwhile go out together (one write for all of them) and the
// caller does not wait.
func (c *Client) kick(conn *ws.Conn) {
	c.flushWanted.Store(true)
	c.flushIfWanted(conn)
}

// flushIfWanted flushes while flushWanted is set and flushMu is free. The
// flag is set before the lock is tried and checked after it is released,
// so a send queued during a flush is never left behind: either its kick
// takes the lock or the flusher sees the flag.
func (c *Client) flushIfWanted(conn *ws.Conn) {
	for c.flushWanted.Load() {
		if !c.flushMu.TryLock() {
			return // the holder checks the flag after unlocking
		}
		c.flushWanted.Store(false)
		err := c.flushLocked(context.Background(), conn)
		c.flushMu.Unlock()
		if err != nil {
			return // dropConnection marks the sends unsent; the next connection resends
		}
	}
}

// flushLocked encodes the unsent sends into the reused buffer and writes
// them with one system call. flushMu must be held.
func (c *Client) flushLocked(ctx context.Context, conn *ws.Conn) error {
	c.mu.Lock()
	for _, o := range c.queue {
		if !o.sent {
			o.sent = true
			o.lastID = c.newID()
			c.flushing = append(c.flushing, flushItem{o, o.lastID})
		}
	}
	c.mu.Unlock()
	if len(c.flushing) == 0 {
		return nil
	}
	b := c.wbuf[:0]
	msgs := c.wmsgs[:0]
	for _, it := range c.flushing {
		n := len(b)
		b = it.o.appendSend(b, it.id)
		msgs = append(msgs, b[n:len(b):len(b)])
	}
	if len(msgs) > 1 && &msgs[0][0] != &b[0] {
		// b grew and moved while encoding: re-slice every frame from it.
		n := 0
		for i, m := range msgs {
			msgs[i] = b[n : n+len(m) : n+len(m)]
			n += len(m)
		}
	}
	var err error
	if len(msgs) == 1 {
		err = conn.Write(ctx, ws.MessageText, msgs[0])
	} else {
		err = conn.WriteBatch(ctx, ws.MessageText, msgs)
	}
	clear(c.flushing)
	c.flushing = c.flushing[:0]
	clear(msgs)
	c.wmsgs = msgs[:0]
	if cap(b) <= 256<<10 { // keep a buffer of a usual size only
		c.wbuf = b[:0]
	} else {
		c.wbuf = nil
	}
	return err
}

func (c *Client) startSync(ctx context.Context, conn *ws.Conn, conv string, after int64) {
	if c.syncing[conv] {
		return
	}
	c.syncing[conv] = true
	f := frame{Type: protocol.TypeSync, ID: c.newID(), Conv: conv, After: &after}
	if err := c.write(ctx, conn, f); err != nil {
		delete(c.syncing, conv)
	}
}

func (c *Client) onMessage(ctx context.Context, conn *ws.Conn, m *protocol.Message) error {
	deliver, after, gap := c.track.accept(m, c.deliver[:0])
	for i, dm := range deliver {
		deliver[i] = nil
		if err := c.emit(ctx, Event{Message: dm}); err != nil {
			return err
		}
	}
	c.deliver = deliver[:0]
	if gap {
		c.startSync(ctx, conn, m.Conv, after)
	}
	return nil
}

// ackFields are an ack's fields as the decoder that read it has them:
// []byte from the single-pass decoder, string from encoding/json.
type ackFields[S []byte | string] struct {
	id, conv, clientMsgID S
	seq, ts               int64
	dup                   bool
}

// ackAndMessage allocates an ack event and the sender's own message
// together.
type ackAndMessage struct {
	ack protocol.Ack
	msg protocol.Message
}

// onAck settles the send a acknowledges and delivers the sender's own
// message from it.
func onAck[S []byte | string](c *Client, ctx context.Context, conn *ws.Conn, a ackFields[S], raw []byte) error {
	settle(c, a.id, raw)
	c.mu.Lock()
	var o *outgoing
	for i, q := range c.queue {
		if q.clientMsgID == string(a.clientMsgID) && q.conv == string(a.conv) {
			o = q
			if i == 0 && len(c.queue) > 64 {
				// A long queue draining in order (after a reconnect): do
				// not shift it all per ack.
				c.queue[0] = nil
				c.queue = c.queue[1:]
			} else { // shifting keeps the capacity, so queuing does not allocate
				copy(c.queue[i:], c.queue[i+1:])
				c.queue[len(c.queue)-1] = nil
				c.queue = c.queue[:len(c.queue)-1]
			}
			break
		}
	}
	user := c.user
	c.mu.Unlock()
	am := &ackAndMessage{ack: protocol.Ack{Type: protocol.TypeAck, Seq: a.seq, TS: a.ts, Duplicate: a.dup}}
	if o != nil { // the strings the send already has
		am.ack.Conv, am.ack.ClientMsgID = o.conv, o.clientMsgID
		if o.lastID == string(a.id) {
			am.ack.ID = o.lastID
		}
	} else {
		am.ack.Conv, am.ack.ClientMsgID = string(a.conv), string(a.clientMsgID)
	}
	if am.ack.ID == "" {
		am.ack.ID = string(a.id)
	}
	if err := c.emit(ctx, Event{Ack: &am.ack}); err != nil {
		return err
	}
	if o == nil {
		return nil
	}
	o.done(SendResult{Ack: am.ack})
	// The sending connection learns its own message from the ack only.
	am.msg = protocol.Message{
		Conv: o.conv, Seq: a.seq, Sender: user, ClientMsgID: o.clientMsgID,
		Body: o.body, Meta: o.meta, TS: a.ts,
	}
	return c.onMessage(ctx, conn, &am.msg)
}

var retryable = map[protocol.Code]bool{
	protocol.CodeInternal: true, protocol.CodeUnavailable: true, protocol.CodeRateLimited: true,
}

func (c *Client) onError(ctx context.Context, id string, code protocol.Code, msg string, p []byte) error {
	serr := &ServerError{Code: code, Message: msg}
	if c.failSend(id, serr) {
		return nil
	}
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- reply{raw: append([]byte(nil), p...), err: serr}
		return nil
	}
	if id != "" {
		return nil // the reply to a request nobody waits for any more
	}
	return c.emit(ctx, Event{Err: serr})
}

// failSend settles the queued send whose frame had request id id: a
// retryable error leaves it queued for the next connection or flush, any
// other error fails it. It reports whether id was a send.
func (c *Client) failSend(id string, serr *ServerError) bool {
	c.mu.Lock()
	for i, o := range c.queue {
		if o.lastID != id {
			continue
		}
		if retryable[serr.Code] {
			o.sent = false
			c.mu.Unlock()
			go c.retryLater(o) // owned: exits after one delay or when Run ends
			return true
		}
		c.queue = append(c.queue[:i], c.queue[i+1:]...)
		c.mu.Unlock()
		o.done(SendResult{Err: serr})
		return true
	}
	c.mu.Unlock()
	return false
}

func (c *Client) retryLater(o *outgoing) {
	select {
	case <-time.After(time.Second):
	case <-c.done:
		return
	}
	c.mu.Lock()
	conn := c.conn
	stillQueued := false
	for _, q := range c.queue {
		stillQueued = stillQueued || q == o
	}
	c.mu.Unlock()
	if conn != nil && stillQueued {
		_ = c.flushQueue(context.Background(), conn)
	}
}

// settle hands a reply to the request waiting for it, if any.
func settle[S []byte | string](c *Client, id S, raw []byte) {
	if len(id) == 0 {
		return
	}
	c.mu.Lock()
	ch, ok := c.pending[string(id)]
	if ok {
		delete(c.pending, string(id))
	}
	c.mu.Unlock()
	if ok {
		ch <- reply{raw: append([]byte(nil), raw...)}
	}
}

func (c *Client) onEvent(ctx context.Context, typ string, p []byte) error {
	var ev Event
	var err error
	switch typ {
	case protocol.TypeReceipt:
		ev.Receipt = new(protocol.Receipt)
		err = json.Unmarshal(p, ev.Receipt)
	case protocol.TypeTypingEvent:
		ev.Typing = new(protocol.Typing)
		err = json.Unmarshal(p, ev.Typing)
	case protocol.TypePresenceEvent:
		ev.Presence = new(protocol.Presence)
		err = json.Unmarshal(p, ev.Presence)
	case protocol.TypeChannelMessage:
		ev.Channel = new(protocol.ChannelMessage)
		if err = json.Unmarshal(p, ev.Channel); err == nil && ev.Channel.Offset > 0 {
			c.mu.Lock()
			if _, sub := c.channels[ev.Channel.Channel]; sub {
				c.channels[ev.Channel.Channel] = max(c.channels[ev.Channel.Channel], ev.Channel.Offset)
			}
			c.mu.Unlock()
		}
	case protocol.TypeMember:
		ev.Member = new(protocol.Member)
		if err = json.Unmarshal(p, ev.Member); err == nil && ev.Member.Action == "removed" {
			c.mu.Lock()
			me := c.user
			c.mu.Unlock()
			if ev.Member.User == me {
				c.track.forget(ev.Member.Conv)
			}
		}
	case protocol.TypeConversation:
		var ce protocol.ConversationEvent
		if err = json.Unmarshal(p, &ce); err == nil {
			c.track.track(ce.Conversation.ID, ce.Conversation.LastSeq)
			ev.Conversation = &ce.Conversation
		}
	default:
		return nil // newer servers may add events; ignoring them is the contract
	}
	if err != nil {
		return fmt.Errorf("client: decode %s: %w", typ, err)
	}
	return c.emit(ctx, ev)
}
