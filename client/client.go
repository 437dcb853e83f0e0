package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// Sentinel errors.
var (
	// ErrClosed: the client was closed (Run returned) before the operation
	// completed.
	ErrClosed = errors.New("client: closed")
	// ErrNotConnected: a request needs a live connection and there is none.
	ErrNotConnected = errors.New("client: not connected")
	// ErrQueueFull: too many sends are waiting for acknowledgement.
	ErrQueueFull = errors.New("client: outgoing queue full")
	// ErrStopped: the server closed the connection with a code that says not
	// to reconnect (e.g. 4000 authentication failed); Run returns it wrapped
	// in a *CloseError.
	ErrStopped = errors.New("client: stopped by the server")
)

// ServerError is an error frame the server sent for a request.
type ServerError struct {
	Code    protocol.Code
	Message string
}

func (e *ServerError) Error() string { return fmt.Sprintf("duplex: %s: %s", e.Code, e.Message) }

// CloseError reports the close code that ended the client.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: server closed with %d %q", e.Code, e.Reason)
}

func (e *CloseError) Unwrap() error { return ErrStopped }

// Options configure a Client. URL and one of Token or TokenFunc are required.
type Options struct {
	// URL of the WebSocket endpoint, e.g. ws://127.0.0.1:8080/ws.
	URL string
	// Token is the bearer token; TokenFunc, if set, is asked for a token
	// before each connect (and so refreshes it after close code 4001).
	Token     string
	TokenFunc func(ctx context.Context) (string, error)

	// Seqs are per-conversation seqs saved from an earlier run (see Seqs).
	Seqs map[string]int64
	// SyncFromStart makes conversations the client has never seen replay
	// their whole history on connect (bots, tests); by default they start
	// at their last seq.
	SyncFromStart bool

	// BackoffBase and BackoffMax shape reconnects: the n-th delay is uniform
	// in [0, min(BackoffMax, BackoffBase*2^n)). Defaults 250ms and 30s.
	BackoffBase, BackoffMax time.Duration
	// PingInterval is how often an idle connection is checked with a ping
	// request; a connection that stays silent PingTimeout longer is dropped
	// and re-established. Defaults 20s and 10s.
	PingInterval, PingTimeout time.Duration
	// RequestTimeout bounds requests whose context has no deadline; default
	// 15s.
	RequestTimeout time.Duration
	// QueueLimit bounds sends waiting for acknowledgement; default 10000.
	QueueLimit int
	// EventBuffer is the capacity of the Events channel; default 1024. When
	// it is full the client stops reading from the server (which may then
	// close the connection as a slow consumer; nothing is lost, the client
	// resumes).
	EventBuffer int
	// OnEvent, if set, is called with every event instead of sending it on
	// Events (which then only closes when Run returns), in the same order,
	// one call at a time, from the client's reader (or from Run for state
	// changes). It saves a channel hand-off and a goroutine wake-up per
	// event; like SendFunc's done, it must return quickly and must not wait
	// for the client, since reading waits for it.
	OnEvent func(Event)

	// Dial customises the WebSocket dial (headers, TLS, compression).
	Dial *ws.DialOptions
	// Poller, if set, reads the connection on the Poller's workers instead
	// of on a goroutine of this client: for programs that run many clients
	// (load generators, bots), where a goroutine blocked in read per
	// connection costs a wake-up and an empty read system call per frame.
	// Frames are then handled on a worker shared with the Poller's other
	// connections, so an application slow to drain Events holds all of
	// them up. The Poller must outlive Run.
	Poller *ws.Poller
	Logger *slog.Logger
}

// State is the connection state.
type State int

const (
	StateConnecting State = iota
	StateConnected
	StateReconnecting
	StateClosed
)

func (s State) String() string {
	return [...]string{"connecting", "connected", "reconnecting", "closed"}[s]
}

// StateChange is reported on Events when the connection state changes.
type StateChange struct {
	State State
	Code  int           // close code that caused a reconnect, if any
	Delay time.Duration // wait before the next attempt
	Err   error
}

// Event is one thing that happened; exactly one field is set.
type Event struct {
	State        *StateChange
	Welcome      *protocol.Welcome
	Message      *protocol.Message // in seq order per conversation, once each
	Ack          *protocol.Ack
	Receipt      *protocol.Receipt
	Typing       *protocol.Typing
	Presence     *protocol.Presence
	Channel      *protocol.ChannelMessage
	Member       *protocol.Member
	Conversation *protocol.Conversation
	Err          error // an error frame not tied to a request
}

// Client is a resilient duplex.v1 connection for one user. Its methods are
// safe for concurrent use; Run must be called once.
type Client struct {
	opts   Options
	log    *slog.Logger
	events chan Event
	nextID atomic.Uint64
	done   chan struct{} // closed when Run returns

	flushMu     sync.Mutex  // serializes queue flushes; taken before mu
	flushWanted atomic.Bool // a send was queued while another goroutine flushed
	// Owned by the holder of flushMu: the encoded frames of one flush.
	flushing []flushItem
	wbuf     []byte
	wmsgs    [][]byte

	lastRead atomic.Int64 // monotonic ns (sinceStart) of the last frame read

	mu       sync.Mutex // guards the fields below
	conn     *ws.Conn
	state    State
	closed   bool // Run is ending: no more sends are queued
	user     string
	pending  map[string]chan reply // request id -> its reply
	queue    []*outgoing           // sends not yet acknowledged, in order
	channels map[string]int64      // subscribed channel -> last offset

	// Owned by the reader goroutine of the current connection.
	track   *tracker
	syncing map[string]bool
	dec     frameDecoder
	wire    wireFrame
	names   map[string]string   // interned conversation and user ids
	deliver []*protocol.Message // reused by onMessage
	strBuf  []byte              // reused by twoStrings
}

// flushItem is one send of a flush and the request id it goes out with.
type flushItem struct {
	o  *outgoing
	id string
}

type reply struct {
	raw []byte // the reply frame
	err error
}

type outgoing struct {
	conv, clientMsgID, body string
	meta                    json.RawMessage // normalized (normalizeMeta)
	sent                    bool
	lastID                  string // request id of the last transmission
	// done receives the result once, never under c.mu; it must not block.
	done func(SendResult)
}

// New returns a Client; call Run to connect.
func New(opts Options) *Client {
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 250 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 20 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 10 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 15 * time.Second
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = 10000
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 1024
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.OnEvent != nil {
		// Nothing is ever sent on Events: no buffer (with 1,000 clients
		// the default buffers alone are 100 MiB the GC has to scan).
		opts.EventBuffer = 0
	}
	return &Client{
		opts:     opts,
		log:      log,
		events:   make(chan Event, opts.EventBuffer),
		done:     make(chan struct{}),
		pending:  make(map[string]chan reply),
		channels: make(map[string]int64),
		track:    newTracker(opts.Seqs),
		syncing:  make(map[string]bool),
		names:    make(map[string]string),
	}
}

// Events delivers what happens, in order (unless Options.OnEvent takes the
// events). It is closed when Run returns.
func (c *Client) Events() <-chan Event { return c.events }

// State returns the current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// User returns the user id from the last welcome ("" before the first).
func (c *Client) User() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// Pending returns how many sends wait for acknowledgement.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// Run connects and keeps reconnecting until ctx is done (it then returns
// ctx.Err()) or the server closes with a code that says not to retry (a
// *CloseError). Events is closed when Run returns.
func (c *Client) Run(ctx context.Context) error {
	defer close(c.events)
	defer close(c.done)
	defer c.shutdown()
	attempt := 0
	for {
		code, reason, err := c.connectOnce(ctx, &attempt)
		if ctx.Err() != nil {
			c.setState(StateClosed, 0, 0, nil)
			return ctx.Err()
		}
		switch closeAction(code) {
		case actionStop:
			c.setState(StateClosed, code, 0, err)
			return &CloseError{Code: code, Reason: reason}
		case actionRefresh:
			if c.opts.TokenFunc == nil {
				c.setState(StateClosed, code, 0, err)
				return &CloseError{Code: code, Reason: reason}
			}
		}
		delay := backoff(attempt, c.opts.BackoffBase, c.opts.BackoffMax)
		if code == protocol.CloseRateLimited {
			delay = max(delay, 5*time.Second)
		}
		attempt++
		c.setState(StateReconnecting, code, delay, err)
		select {
		case <-ctx.Done():
			c.setState(StateClosed, 0, 0, nil)
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// backoff is exponential with full jitter.
func backoff(attempt int, base, ceiling time.Duration) time.Duration {
	d := ceiling
	if attempt < 30 {
		d = min(ceiling, base<<attempt)
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

type action int

const (
	actionRetry action = iota
	actionRefresh
	actionStop
)

// closeAction maps a close code to what the client does (docs/protocol.md §9).
func closeAction(code int) action {
	switch code {
	case protocol.CloseAuthFailed, protocol.CloseTooManyConns, protocol.CloseSessionRevoked,
		protocol.ClosePolicy, int(ws.StatusProtocolError), int(ws.StatusUnsupportedData),
		int(ws.StatusInvalidPayload), protocol.CloseTooBig:
		return actionStop
	case protocol.CloseTokenExpired:
		return actionRefresh
	}
	return actionRetry
}

// connectOnce dials, serves one connection until it ends, and returns the
// close code (1006 for network failures).
func (c *Client) connectOnce(ctx context.Context, attempt *int) (code int, reason string, err error) {
	token := c.opts.Token
	if c.opts.TokenFunc != nil {
		if token, err = c.opts.TokenFunc(ctx); err != nil {
			return int(ws.StatusAbnormalClosure), "", fmt.Errorf("client: token: %w", err)
		}
	}
	var dopts ws.DialOptions
	if c.opts.Dial != nil {
		dopts = *c.opts.Dial
	}
	dopts.Header = dopts.Header.Clone()
	if dopts.Header == nil {
		dopts.Header = http.Header{}
	}
	dopts.Header.Set("Authorization", "Bearer "+token)
	dopts.Subprotocols = []string{protocol.Subprotocol}
	if dopts.ReadLimit == 0 {
		dopts.ReadLimit = 1 << 20
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, resp, err := ws.Dial(dctx, c.opts.URL, &dopts)
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			// Servers close a refused upgrade with 4000 or 4001 (so that
			// expiry can be told apart); a 401 comes from an older server
			// or a proxy in front and is taken as authentication failed.
			return protocol.CloseAuthFailed, "unauthorized", err
		}
		return int(ws.StatusAbnormalClosure), "", err
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()

	connCtx, stop := context.WithCancel(ctx)
	defer stop()
	// Reads are not given connCtx: a cancellable context costs Read a
	// cancellation callback per message. Closing the connection when
	// connCtx ends interrupts them instead.
	unwatch := context.AfterFunc(connCtx, func() { conn.CloseNow() })
	defer unwatch()
	c.lastRead.Store(sinceStart())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the heartbeat goroutine, owned by this connection
		defer wg.Done()
		c.heartbeat(connCtx, conn)
	}()
	if c.opts.Poller != nil {
		err = c.servePolled(connCtx, conn, attempt)
	} else {
		err = c.readLoop(connCtx, conn, attempt)
	}
	stop()
	conn.CloseNow()
	wg.Wait()
	c.dropConnection(conn)
	code = int(ws.CloseStatus(err))
	if code < 0 {
		code = int(ws.StatusAbnormalClosure)
	}
	var ce *ws.CloseError
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	return code, reason, err
}

// dropConnection fails requests waiting on conn and marks queued sends for
// retransmission on the next connection.
func (c *Client) dropConnection(conn *ws.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == conn {
		c.conn = nil
	}
	for id, ch := range c.pending {
		ch <- reply{err: ErrNotConnected}
		delete(c.pending, id)
	}
	for _, o := range c.queue {
		o.sent = false
	}
	clear(c.syncing)
}

// shutdown fails everything still waiting once Run returns.
func (c *Client) shutdown() {
	c.mu.Lock()
	c.closed = true
	queue := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, o := range queue {
		o.done(SendResult{Err: ErrClosed})
	}
}

// start is the origin of sinceStart's monotonic clock.
var start = time.Now()

func sinceStart() int64 { return int64(time.Since(start)) }

// heartbeat pings a connection that has been silent for PingInterval and
// closes it when PingTimeout more passes without a frame. The reader only
// stores the time of each frame (lastRead): waking this goroutine per
// frame to restart a timer cost more than the rest of the read.
func (c *Client) heartbeat(ctx context.Context, conn *ws.Conn) {
	t := time.NewTimer(c.opts.PingInterval)
	defer t.Stop()
	var pingAt int64 // when the unanswered ping went out; 0 if none
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, last := sinceStart(), c.lastRead.Load()
		switch idle := time.Duration(now - last); {
		case pingAt != 0 && last < pingAt: // nothing for PingInterval + PingTimeout: dead
			c.log.Info("client: heartbeat timeout, reconnecting")
			conn.CloseNow()
			return
		case idle < c.opts.PingInterval:
			pingAt = 0
			t.Reset(c.opts.PingInterval - idle)
		default:
			pingAt = now
			_ = c.write(ctx, conn, frame{Type: protocol.TypePing, ID: c.newID()})
			t.Reset(c.opts.PingTimeout)
		}
	}
}

func (c *Client) setState(s State, code int, delay time.Duration, err error) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
	c.emitNow(Event{State: &StateChange{State: s, Code: code, Delay: delay, Err: err}})
}

// emitNow queues an event without blocking (state changes must never stall
// shutdown); when the buffer is full the state event is dropped, the state
// itself stays readable through State.
func (c *Client) emitNow(ev Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ev)
		return
	}
	select {
	case c.events <- ev:
	default:
	}
}

// emit queues an event, waiting while the application is behind.
func (c *Client) emit(ctx context.Context, ev Event) error {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ev)
		return nil
	}
	select { // the usual case, without a two-way select
	case c.events <- ev:
		return nil
	default:
	}
	select {
	case c.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) newID() string {
	var b [16]byte
	return string(strconv.AppendUint(append(b[:0], 'g'), c.nextID.Add(1), 36))
}

func (c *Client) write(ctx context.Context, conn *ws.Conn, f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("client: encode %s: %w", f.Type, err)
	}
	return conn.Write(ctx, ws.MessageText, b)
}
