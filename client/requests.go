package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/duplexhq/duplex/protocol"
)

// frame is an outbound request; unset fields are omitted.
type frame struct {
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	Conv        string          `json:"conv,omitempty"`
	ClientMsgID string          `json:"client_msg_id,omitempty"`
	Body        string          `json:"body,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	After       *int64          `json:"after,omitempty"`
	Before      int64           `json:"before,omitempty"`
	Limit       int             `json:"limit,omitempty"`
	Seq         int64           `json:"seq,omitempty"`
	Channel     string          `json:"channel,omitempty"`
	Since       *int64          `json:"since,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Users       []string        `json:"users,omitempty"`
	Peer        string          `json:"peer,omitempty"`
	Title       string          `json:"title,omitempty"`
	Members     []string        `json:"members,omitempty"`
	User        string          `json:"user,omitempty"`
}

// NewClientMsgID returns a fresh client message id: a UUID version 7, so
// that the ids a client sends grow with time (cheaper for the server to
// index) while staying unique across clients.
func NewClientMsgID() string { return newTimeOrderedID() }

// Send queues a message and waits for the server's acknowledgement (the
// message is then durable). While disconnected the message waits in the
// queue and goes out, with the same client message id, once connected; if
// ctx ends first the message stays queued and may still be sent. clientMsgID
// may be "" for a fresh one (NewClientMsgID).
func (c *Client) Send(ctx context.Context, conv, clientMsgID, body string, meta json.RawMessage) (protocol.Ack, error) {
	done, err := c.SendAsync(conv, clientMsgID, body, meta)
	if err != nil {
		return protocol.Ack{}, err
	}
	select {
	case r := <-done:
		return r.Ack, r.Err
	case <-ctx.Done():
		return protocol.Ack{}, ctx.Err()
	}
}

// SendResult is the outcome of an asynchronous send.
type SendResult struct {
	Ack protocol.Ack
	Err error
}

// SendAsync queues a message and returns a channel that receives its result
// once (the acknowledgement, or the error that ended it).
func (c *Client) SendAsync(conv, clientMsgID, body string, meta json.RawMessage) (<-chan SendResult, error) {
	out := make(chan SendResult, 1)
	if err := c.SendFunc(conv, clientMsgID, body, meta, func(r SendResult) { out <- r }); err != nil {
		return nil, err
	}
	return out, nil
}

// SendFunc queues a message like SendAsync and calls done once with its
// result instead of sending it on a channel, for programs that send at
// high rates and would otherwise keep a goroutine per message waiting on
// the channel. done runs on the client's reader goroutine (or on Run's as
// the client closes): it must return quickly and must not wait for the
// client (no Send, Request or receive from Events in it), or reading
// stalls. When SendFunc returns an error, done is never called.
func (c *Client) SendFunc(conv, clientMsgID, body string, meta json.RawMessage, done func(SendResult)) error {
	meta, err := normalizeMeta(meta)
	if err != nil {
		return err
	}
	if clientMsgID == "" {
		clientMsgID = newTimeOrderedID()
	}
	o := &outgoing{conv: conv, clientMsgID: clientMsgID, body: body, meta: meta, done: done}
	c.mu.Lock()
	if c.closed { // checked under mu, so no send is queued after shutdown took the queue
		c.mu.Unlock()
		return ErrClosed
	}
	if len(c.queue) >= c.opts.QueueLimit {
		c.mu.Unlock()
		return ErrQueueFull
	}
	c.queue = append(c.queue, o)
	conn := c.conn
	connected := c.state == StateConnected
	c.mu.Unlock()
	if conn != nil && connected {
		c.kick(conn) // on failure the reconnect resends
	}
	return nil
}

// Request sends one request frame (its ID is assigned here) and returns the
// reply frame: a result, or a *ServerError for an error frame. For sync the
// reply is the sync.end frame; the messages arrive on Events.
func (c *Client) Request(ctx context.Context, f frame) (json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	f.ID = c.newID()
	ch := make(chan reply, 1)
	c.mu.Lock()
	conn := c.conn
	if conn == nil || c.state != StateConnected {
		c.mu.Unlock()
		return nil, ErrNotConnected
	}
	c.pending[f.ID] = ch
	c.mu.Unlock()
	if err := c.write(ctx, conn, f); err != nil {
		c.mu.Lock()
		delete(c.pending, f.ID)
		c.mu.Unlock()
		return nil, fmt.Errorf("client: %s: %w", f.Type, err)
	}
	select {
	case r := <-ch:
		return r.raw, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, f.ID)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// result decodes the data of a result frame into v.
func (c *Client) result(ctx context.Context, f frame, v any) error {
	raw, err := c.Request(ctx, f)
	if err != nil {
		return err
	}
	var res struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("client: decode %s result: %w", f.Type, err)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(res.Data, v); err != nil {
		return fmt.Errorf("client: decode %s result: %w", f.Type, err)
	}
	return nil
}

// History returns up to limit messages before seq before (0: the newest),
// newest first.
func (c *Client) History(ctx context.Context, conv string, before int64, limit int) ([]protocol.Message, error) {
	var r struct {
		Messages []protocol.Message `json:"messages"`
	}
	err := c.result(ctx, frame{Type: protocol.TypeHistory, Conv: conv, Before: before, Limit: limit}, &r)
	return r.Messages, err
}

// Read moves the read cursor of conv to seq.
func (c *Client) Read(ctx context.Context, conv string, seq int64) error {
	return c.result(ctx, frame{Type: protocol.TypeRead, Conv: conv, Seq: seq}, nil)
}

// Typing tells the other members this user is typing in conv.
func (c *Client) Typing(ctx context.Context, conv string) error {
	return c.result(ctx, frame{Type: protocol.TypeTyping, Conv: conv}, nil)
}

// Conversations lists this user's conversations with unread counts.
func (c *Client) Conversations(ctx context.Context) ([]protocol.Conversation, error) {
	var r struct {
		Conversations []protocol.Conversation `json:"conversations"`
	}
	err := c.result(ctx, frame{Type: protocol.TypeConvs}, &r)
	return r.Conversations, err
}

// CreateDirect returns the direct conversation with peer, creating it once.
func (c *Client) CreateDirect(ctx context.Context, peer string) (protocol.Conversation, error) {
	return c.conversation(ctx, frame{Type: protocol.TypeCreateDirect, Peer: peer})
}

// CreateGroup creates a group owned by this user.
func (c *Client) CreateGroup(ctx context.Context, title string, members []string) (protocol.Conversation, error) {
	return c.conversation(ctx, frame{Type: protocol.TypeCreateGroup, Title: title, Members: members})
}

func (c *Client) conversation(ctx context.Context, f frame) (protocol.Conversation, error) {
	var r struct {
		Conversation protocol.Conversation `json:"conversation"`
	}
	if err := c.result(ctx, f, &r); err != nil {
		return protocol.Conversation{}, err
	}
	c.track.track(r.Conversation.ID, r.Conversation.LastSeq)
	return r.Conversation, nil
}

// AddMember adds user to a group (owner only).
func (c *Client) AddMember(ctx context.Context, conv, user string) error {
	return c.result(ctx, frame{Type: protocol.TypeAddMember, Conv: conv, User: user}, nil)
}

// RemoveMember removes user from a group (owner, or the user leaving).
func (c *Client) RemoveMember(ctx context.Context, conv, user string) error {
	return c.result(ctx, frame{Type: protocol.TypeRemoveMember, Conv: conv, User: user}, nil)
}

// Subscribe subscribes to channel; with since >= 0 kept history after that
// offset is replayed first. The subscription is renewed after reconnects,
// from the last offset seen.
func (c *Client) Subscribe(ctx context.Context, channel string, since int64) error {
	f := frame{Type: protocol.TypeSubscribe, Channel: channel}
	if since >= 0 {
		f.Since = &since
	}
	if err := c.result(ctx, f, nil); err != nil {
		return err
	}
	c.mu.Lock()
	c.channels[channel] = max(c.channels[channel], since)
	c.mu.Unlock()
	return nil
}

// Unsubscribe ends a channel subscription.
func (c *Client) Unsubscribe(ctx context.Context, channel string) error {
	c.mu.Lock()
	delete(c.channels, channel)
	c.mu.Unlock()
	return c.result(ctx, frame{Type: protocol.TypeUnsubscribe, Channel: channel}, nil)
}

// Publish publishes data (any JSON value) to channel.
func (c *Client) Publish(ctx context.Context, channel string, data json.RawMessage) (offset int64, err error) {
	var r struct {
		Offset int64 `json:"offset"`
	}
	err = c.result(ctx, frame{Type: protocol.TypePublish, Channel: channel, Data: data}, &r)
	return r.Offset, err
}

// Presence returns the presence of users (those sharing a conversation).
func (c *Client) Presence(ctx context.Context, users []string) ([]protocol.Presence, error) {
	var r struct {
		Presence []protocol.Presence `json:"presence"`
	}
	err := c.result(ctx, frame{Type: protocol.TypePresence, Users: users}, &r)
	return r.Presence, err
}

// Sync asks for every message of conv after seq after; they arrive on
// Events (duplicates of messages already delivered are dropped).
func (c *Client) Sync(ctx context.Context, conv string, after int64) error {
	_, err := c.Request(ctx, frame{Type: protocol.TypeSync, Conv: conv, After: &after})
	return err
}

// Seqs returns the per-conversation seqs held, to pass as Options.Seqs to a
// later Client so it resumes where this one stopped. Conversations the user
// was removed from (a member event, or absent from a welcome) are dropped.
func (c *Client) Seqs() map[string]int64 { return c.track.snapshot() }
