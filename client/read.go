package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// inbound is the union of the fields of every server frame the reader looks
// at before handing the frame to its typed decoder.
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
// touching c.track and c.syncing while the connection lives.
func (c *Client) readLoop(ctx context.Context, conn *ws.Conn, attempt *int, alive chan<- struct{}) error {
	for {
		typ, p, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		select {
		case alive <- struct{}{}:
		default:
		}
		if typ != ws.MessageText {
			continue
		}
		var head inbound
		if err := json.Unmarshal(p, &head); err != nil {
			c.log.Warn("client: server sent invalid JSON", "err", err)
			continue
		}
		if err := c.handle(ctx, conn, head, p, attempt); err != nil {
			return err
		}
	}
}

func (c *Client) handle(ctx context.Context, conn *ws.Conn, head inbound, p []byte, attempt *int) error {
	switch head.Type {
	case protocol.TypeWelcome:
		var w protocol.Welcome
		if err := json.Unmarshal(p, &w); err != nil {
			return fmt.Errorf("client: decode welcome: %w", err)
		}
		*attempt = 0
		return c.onWelcome(ctx, conn, &w)
	case protocol.TypeMessage:
		var m protocol.Message
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("client: decode message: %w", err)
		}
		return c.onMessage(ctx, conn, m)
	case protocol.TypeAck:
		var a protocol.Ack
		if err := json.Unmarshal(p, &a); err != nil {
			return fmt.Errorf("client: decode ack: %w", err)
		}
		return c.onAck(ctx, conn, a, p)
	case protocol.TypeSyncEnd:
		delete(c.syncing, head.Conv)
		if head.More || c.track.hasGap(head.Conv) {
			c.startSync(ctx, conn, head.Conv, c.track.seq(head.Conv))
		}
		c.settle(head.ID, p)
	case protocol.TypeResult:
		c.settle(head.ID, p)
	case protocol.TypeError:
		return c.onError(ctx, head, p)
	default:
		return c.onEvent(ctx, head.Type, p)
	}
	return nil
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
	defer c.flushMu.Unlock()
	c.mu.Lock()
	var todo []frame
	for _, o := range c.queue {
		if !o.sent {
			o.sent = true
			todo = append(todo, o.frame(c.newID()))
		}
	}
	c.mu.Unlock()
	for _, f := range todo {
		if err := c.write(ctx, conn, f); err != nil {
			return err // dropConnection marks them unsent again
		}
	}
	return nil
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

func (c *Client) onMessage(ctx context.Context, conn *ws.Conn, m protocol.Message) error {
	deliver, after, gap := c.track.accept(m)
	for i := range deliver {
		if err := c.emit(ctx, Event{Message: &deliver[i]}); err != nil {
			return err
		}
	}
	if gap {
		c.startSync(ctx, conn, m.Conv, after)
	}
	return nil
}

func (c *Client) onAck(ctx context.Context, conn *ws.Conn, a protocol.Ack, raw []byte) error {
	c.settle(a.ID, raw)
	c.mu.Lock()
	var o *outgoing
	for i, q := range c.queue {
		if q.clientMsgID == a.ClientMsgID && q.conv == a.Conv {
			o = q
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
	user := c.user
	c.mu.Unlock()
	if err := c.emit(ctx, Event{Ack: &a}); err != nil {
		return err
	}
	if o == nil {
		return nil
	}
	o.done <- sendResult{ack: a}
	// The sending connection learns its own message from the ack only.
	return c.onMessage(ctx, conn, protocol.Message{
		Conv: a.Conv, Seq: a.Seq, Sender: user, ClientMsgID: a.ClientMsgID,
		Body: o.body, Meta: o.meta, TS: a.TS,
	})
}

var retryable = map[protocol.Code]bool{
	protocol.CodeInternal: true, protocol.CodeUnavailable: true, protocol.CodeRateLimited: true,
}

func (c *Client) onError(ctx context.Context, head inbound, p []byte) error {
	serr := &ServerError{Code: protocol.Code(head.Code), Message: head.Message}
	if c.failSend(head.ID, serr) {
		return nil
	}
	c.mu.Lock()
	ch, ok := c.pending[head.ID]
	delete(c.pending, head.ID)
	c.mu.Unlock()
	if ok {
		ch <- reply{raw: append([]byte(nil), p...), err: serr}
		return nil
	}
	if head.ID != "" {
		return nil // the reply to a request nobody waits for any more
	}
	return c.emit(ctx, Event{Err: serr})
}

// failSend settles the queued send whose frame had request id id: a
// retryable error leaves it queued for the next connection or flush, any
// other error fails it. It reports whether id was a send.
func (c *Client) failSend(id string, serr *ServerError) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, o := range c.queue {
		if o.lastID != id {
			continue
		}
		if retryable[serr.Code] {
			o.sent = false
			go c.retryLater(o) // owned: exits after one delay or when Run ends
			return true
		}
		c.queue = append(c.queue[:i], c.queue[i+1:]...)
		o.done <- sendResult{err: serr}
		return true
	}
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

func (c *Client) settle(id string, raw []byte) {
	if id == "" {
		return
	}
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
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
		err = json.Unmarshal(p, ev.Member)
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
