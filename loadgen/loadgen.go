package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/client"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// Config describes one load run.
type Config struct {
	// URL is the server's WebSocket endpoint (ws://host:port/ws).
	URL string
	// Token returns a bearer token for a user id.
	Token func(user string) (string, error)
	// Users is the number of connected users (one connection each).
	Users int
	// GroupSize is the size of group conversations; every user is in one
	// direct conversation with the next user and in one group.
	GroupSize int
	// GroupShare is the fraction (0..1) of messages sent to groups.
	GroupShare float64
	// Rate is the total target send rate in messages per second; 0 sends as
	// fast as acknowledgements come back, with Window sends in flight per
	// user.
	Rate   float64
	Window int
	// Duration of the measured phase, after Warmup.
	Duration, Warmup time.Duration
	// Body size in bytes.
	BodySize int
	// Compression enables permessage-deflate on every connection.
	Compression bool
	// Prefix makes user ids unique per run (default "bench-<unix time>-").
	Prefix string
	// Progress, if set, receives a status line every second.
	Progress io.Writer
	// DialConcurrency bounds connection set-up; default 50.
	DialConcurrency int
	// Poller reads every user's connection with one shared ws.Poller
	// (client.Options.Poller) instead of a goroutine per connection, which
	// costs the generator a wake-up and an empty read per frame received.
	Poller bool
}

// Result is what a run measured (during the measured phase only).
type Result struct {
	Users          int
	Duration       time.Duration
	Sent, Acked    int64
	Delivered      int64 // messages received by recipients
	Errors         int64
	Reconnects     int64
	AckedPerSec    float64
	DeliverPerSec  float64
	SendToAck      *Histogram
	SendToDeliver  *Histogram
	SetupDuration  time.Duration
	TargetRate     float64
	AvgFanout      float64 // recipients per message
	ConnectedUsers int
}

// stamp is the meta every generated message carries: {"t":N}, N its send
// time in Unix nanoseconds.
type stamp struct {
	T int64 `json:"t"`
}

// appendStamp appends the meta of a message sent at t, as json.Marshal of
// a stamp would encode it.
func appendStamp(dst []byte, t int64) []byte {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	return append(dst, '}')
}

// parseStamp reads the send time from a message's meta: the form
// appendStamp writes directly, anything else with encoding/json.
func parseStamp(meta []byte) (int64, bool) {
	const prefix = `{"t":`
	if len(meta) > len(prefix)+1 && string(meta[:len(prefix)]) == prefix && meta[len(meta)-1] == '}' {
		if t, err := strconv.ParseInt(string(meta[len(prefix):len(meta)-1]), 10, 64); err == nil {
			return t, true
		}
	}
	var s stamp
	if json.Unmarshal(meta, &s) != nil {
		return 0, false
	}
	return s.T, true
}

type user struct {
	id     string
	c      *client.Client
	direct string // conversation with the next user
	group  string
	cancel context.CancelFunc
	done   chan struct{}
}

type run struct {
	cfg       Config
	users     []*user
	measuring atomic.Bool
	sent      atomic.Int64
	acked     atomic.Int64
	delivered atomic.Int64
	errors    atomic.Int64
	reconn    atomic.Int64
	ack       *Histogram
	deliver   *Histogram
	poller    *ws.Poller // nil unless Config.Poller
}

// Run executes a load run and returns its figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Users < 2 {
		return nil, errors.New("loadgen: need at least 2 users")
	}
	if cfg.GroupSize < 3 {
		cfg.GroupSize = 5
	}
	if cfg.Window <= 0 {
		cfg.Window = 4
	}
	if cfg.BodySize <= 0 {
		cfg.BodySize = 64
	}
	if cfg.DialConcurrency <= 0 {
		cfg.DialConcurrency = 50
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "bench-" + strconv.FormatInt(time.Now().Unix(), 36) + "-"
	}
	r := &run{cfg: cfg, ack: new(Histogram), deliver: new(Histogram)}
	if cfg.Poller {
		p, err := ws.NewPoller(nil)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		defer p.Close() // after stopAll (deferred below) has ended every client
		r.poller = p
	}
	start := time.Now()
	defer r.stopAll()
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	if err := r.makeConversations(ctx); err != nil {
		return nil, err
	}
	setup := time.Since(start)

	loadCtx, stopLoad := context.WithCancel(ctx)
	body := make([]byte, cfg.BodySize)
	for k := range body {
		body[k] = 'a' + byte(k%26)
	}
	senders := make([]*sender, len(r.users))
	for i, u := range r.users {
		senders[i] = &sender{r: r, u: u, ctx: loadCtx, text: string(body), chained: cfg.Rate <= 0}
	}
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.pace(loadCtx, senders) }()
	} else {
		// Closed loop: each result sends the next message (sendOne).
		for _, s := range senders {
			for range cfg.Window {
				s.sendOne()
			}
		}
	}
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); r.progress(loadCtx) }()

	sleep(ctx, cfg.Warmup)
	r.measuring.Store(true)
	base := r.counters()
	t0 := time.Now()
	sleep(ctx, cfg.Duration)
	r.measuring.Store(false)
	elapsed := time.Since(t0)
	end := r.counters()
	stopLoad()
	wg.Wait()
	<-progressDone
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res := &Result{
		Users: cfg.Users, Duration: elapsed, SetupDuration: setup, TargetRate: cfg.Rate,
		Sent: end[0] - base[0], Acked: end[1] - base[1], Delivered: end[2] - base[2],
		Errors: end[3] - base[3], Reconnects: end[4] - base[4],
		SendToAck: r.ack, SendToDeliver: r.deliver, ConnectedUsers: len(r.users),
	}
	res.AckedPerSec = float64(res.Acked) / elapsed.Seconds()
	res.DeliverPerSec = float64(res.Delivered) / elapsed.Seconds()
	if res.Acked > 0 {
		res.AvgFanout = float64(res.Delivered) / float64(res.Acked)
	}
	return res, nil
}

func (r *run) counters() [5]int64 {
	return [5]int64{r.sent.Load(), r.acked.Load(), r.delivered.Load(), r.errors.Load(), r.reconn.Load()}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// connect starts one client per user and waits until all are connected.
func (r *run) connect(ctx context.Context) error {
	r.users = make([]*user, r.cfg.Users)
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	errc := make(chan error, r.cfg.Users)
	var wg sync.WaitGroup
	for i := range r.users {
		id := r.cfg.Prefix + strconv.Itoa(i)
		tok, err := r.cfg.Token(id)
		if err != nil {
			return fmt.Errorf("loadgen: token for %s: %w", id, err)
		}
		u := &user{id: id, done: make(chan struct{})}
		opts := client.Options{URL: r.cfg.URL, Token: tok, QueueLimit: 1 << 16, Poller: r.poller,
			OnEvent: func(ev client.Event) { r.onEvent(u, ev) }}
		if r.cfg.Compression {
			opts.Dial = &ws.DialOptions{Compression: ws.CompressionOptions{Mode: ws.CompressionNoContextTakeover}}
		}
		cctx, cancel := context.WithCancel(ctx)
		u.c, u.cancel = client.New(opts), cancel
		r.users[i] = u
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			go func() { defer close(u.done); u.c.Run(cctx) }()
			if err := waitConnected(cctx, u.c); err != nil {
				errc <- fmt.Errorf("loadgen: connect %s: %w", u.id, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc // nil when all connected
}

func waitConnected(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for c.State() != client.StateConnected {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not connected: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (r *run) stopAll() {
	for _, u := range r.users {
		if u != nil {
			u.cancel()
		}
	}
	for _, u := range r.users {
		if u != nil {
			for range u.c.Events() { // drain so Run can finish
			}
			<-u.done
		}
	}
}

// makeConversations puts user i in a direct conversation with user i+1 and
// in the group of its block of GroupSize users.
func (r *run) makeConversations(ctx context.Context) error {
	n, g := len(r.users), r.cfg.GroupSize
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i, u := range r.users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			conv, err := u.c.CreateDirect(ctx, r.users[(i+1)%n].id)
			if err != nil {
				errc <- fmt.Errorf("loadgen: create direct: %w", err)
				return
			}
			u.direct = conv.ID
			if i%g != 0 {
				return
			}
			var members []string
			for j := i + 1; j < min(i+g, n); j++ {
				members = append(members, r.users[j].id)
			}
			if len(members) == 0 {
				return
			}
			grp, err := u.c.CreateGroup(ctx, "bench "+strconv.Itoa(i/g), members)
			if err != nil {
				errc <- fmt.Errorf("loadgen: create group: %w", err)
				return
			}
			for j := i; j < min(i+g, n); j++ {
				r.users[j].group = grp.ID
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// paceTick is how often pace sends the messages that have come due.
const paceTick = time.Millisecond

// pace sends Rate messages per second in total, to the users in turn, so
// each user sends every Users/Rate seconds and the users' sends are spread
// evenly. One goroutine on a ticker does it for all users: a timer and a
// goroutine wake-up per user and message cost the generator more than the
// send itself.
func (r *run) pace(ctx context.Context, senders []*sender) {
	t := time.NewTicker(paceTick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int64(r.cfg.Rate * now.Sub(start).Seconds())
			for ; sent < due && ctx.Err() == nil; sent++ {
				senders[sent%int64(len(senders))].sendOne()
			}
		}
	}
}

// sender is one user's sending state, used by pace or, in closed loop,
// from Run and then from its client's reader. Results arrive through
// client.SendFunc on the client's reader, so a send costs no goroutine or
// channel of its own.
type sender struct {
	r       *run
	u       *user
	ctx     context.Context
	text    string
	chained bool         // closed loop: each result sends the next message
	n       atomic.Int64 // messages sent, for the choice of conversation
}

func (s *sender) sendOne() {
	r := s.r
	conv := s.u.direct
	// A low-discrepancy sequence spreads group sends evenly over time.
	if n := s.n.Add(1); s.u.group != "" && math.Mod(float64(n)*0.6180339887498949, 1) < r.cfg.GroupShare {
		conv = s.u.group
	}
	sentAt := time.Now()
	measured := r.measuring.Load()
	err := s.u.c.SendFunc(conv, "", s.text, appendStamp(nil, sentAt.UnixNano()), func(res client.SendResult) {
		switch {
		case res.Err == nil:
			r.acked.Add(1)
			if measured {
				r.ack.Record(time.Since(sentAt))
			}
		case s.ctx.Err() == nil:
			r.errors.Add(1)
		}
		if s.chained && s.ctx.Err() == nil {
			s.sendOne()
		}
	})
	if err != nil {
		if s.ctx.Err() == nil {
			r.errors.Add(1)
		}
		return
	}
	r.sent.Add(1)
}

// onEvent takes user u's events (client.Options.OnEvent, on the client's
// reader) and records delivery latencies of other users' messages.
func (r *run) onEvent(u *user, ev client.Event) {
	switch {
	case ev.Message != nil && ev.Message.Sender != u.id:
		r.delivered.Add(1)
		if r.measuring.Load() {
			r.recordDelivery(ev.Message)
		}
	case ev.State != nil && ev.State.State == client.StateReconnecting:
		r.reconn.Add(1)
	}
}

func (r *run) recordDelivery(m *protocol.Message) {
	if t, ok := parseStamp(m.Meta); ok && t > 0 {
		r.deliver.Record(time.Since(time.Unix(0, t)))
	}
}

func (r *run) progress(ctx context.Context) {
	if r.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := r.counters()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := r.counters()
			phase := "warmup"
			if r.measuring.Load() {
				phase = "measure"
			}
			fmt.Fprintf(r.cfg.Progress, "%5.0fs %-7s sent %7d/s  acked %7d/s  delivered %7d/s  errors %d  reconnects %d  ack p99 %v  deliver p99 %v\n",
				time.Since(start).Seconds(), phase, now[0]-last[0], now[1]-last[1], now[2]-last[2],
				now[3], now[4], r.ack.Quantile(0.99), r.deliver.Quantile(0.99))
			last = now
		}
	}
}

// Summary renders a result for people.
func (res *Result) Summary(w io.Writer) {
	fmt.Fprintf(w, "users %d (connected %d), set-up %v, measured %v, target rate %.0f/s\n",
		res.Users, res.ConnectedUsers, res.SetupDuration.Round(time.Millisecond), res.Duration.Round(time.Millisecond), res.TargetRate)
	fmt.Fprintf(w, "sent %d  acked %d (%.0f/s)  delivered %d (%.0f/s, fan-out %.2f)  errors %d  reconnects %d\n",
		res.Sent, res.Acked, res.AckedPerSec, res.Delivered, res.DeliverPerSec, res.AvgFanout, res.Errors, res.Reconnects)
	for _, h := range []struct {
		name string
		h    *Histogram
	}{{"send-to-ack", res.SendToAck}, {"send-to-deliver", res.SendToDeliver}} {
		fmt.Fprintf(w, "%-16s n=%d  p50 %v  p90 %v  p99 %v  p99.9 %v  max %v  mean %v\n", h.name, h.h.Count(),
			h.h.Quantile(0.50), h.h.Quantile(0.90), h.h.Quantile(0.99), h.h.Quantile(0.999),
			h.h.Max().Round(time.Microsecond), h.h.Mean().Round(time.Microsecond))
	}
}
