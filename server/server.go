package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/auth"
	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/ws"
)

// Defaults for Config fields left zero.
const (
	DefaultSendQueue      = 256
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxHeaderBytes = 16 << 10
	DefaultReadLimit      = 64 << 10
	DefaultPingInterval   = 30 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultDrainTimeout   = 5 * time.Second
	DefaultDevTokenTTL    = 24 * time.Hour
	// DefaultSSEPingInterval: an idle event stream gets a ping event this
	// often, so that clients and proxies see it is alive.
	DefaultSSEPingInterval = 15 * time.Second
)

// Config configures a Server. Chat, Auth and Ready are required.
type Config struct {
	Chat chat.API
	Auth *auth.Authenticator
	// Ready reports whether dependencies are usable (the store's Ping);
	// /readyz calls it.
	Ready func(context.Context) error
	// Metrics defaults to a fresh NewMetrics.
	Metrics *Metrics
	Logger  *slog.Logger

	// OriginPatterns are the cross-origin WebSocket origins allowed (see
	// ws.AcceptOptions.OriginPatterns); same-origin is always allowed.
	OriginPatterns []string
	Compression    ws.CompressionOptions

	// SendQueue is the bounded number of frames queued per connection.
	SendQueue int
	// ReadLimit bounds one inbound WebSocket message (default
	// DefaultReadLimit, the protocol's frame limit).
	ReadLimit int64
	// PingInterval and PongTimeout detect dead peers (a negative
	// PingInterval disables pings).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds writing one frame to a client.
	WriteTimeout time.Duration
	// DrainTimeout bounds flushing a connection's queue when it is closed.
	DrainTimeout time.Duration

	// MaxBodyBytes bounds API request bodies; MaxHeaderBytes bounds request
	// heads, including WebSocket handshakes (used by Serve).
	MaxBodyBytes   int64
	MaxHeaderBytes int

	// DevMint, when set, turns on development mode: POST /api/dev/login
	// mints a token for any user name and the page offers a login by name.
	DevMint func(userID string) (string, error)

	// Transports are the client transports served (TransportWebSocket,
	// TransportSSE, TransportLongPoll); nil means all. The endpoints of
	// the others answer 404, so clients fall back to what is enabled.
	// SSE and long-polling need a Chat that implements chat.Fallback.
	Transports []string
	// SSEPingInterval is how often an event stream gets a ping event
	// (default DefaultSSEPingInterval).
	SSEPingInterval time.Duration
	// Version is reported by GET /api/info (default: the module version
	// from the build information).
	Version string
}

// Server is the duplex HTTP handler. Create it with New, serve it with Serve
// (or mount it in an http.Server and call Shutdown).
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	mux     *http.ServeMux
	accept  ws.AcceptOptions
	fb      chat.Fallback // nil when Chat does not implement it
	enabled map[string]bool

	// drain is cancelled when shutdown begins: long polls answer with what
	// they have, streams are closed with 1001.
	drain     context.Context
	startStop context.CancelFunc

	// ctx is cancelled by Shutdown after connections had their chance to
	// close cleanly; it ends every connection's I/O.
	ctx    context.Context
	cancel context.CancelFunc

	// poller reads every WebSocket client (inbound.go); it is started by
	// the first one and closed by Shutdown once they have all ended.
	pollerMu     sync.Mutex
	poller       *ws.Poller
	pollerClosed bool

	shuttingDown atomic.Bool
	mu           sync.Mutex
	conns        map[conn]struct{}
	wg           sync.WaitGroup // one per WebSocket or SSE handler
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Chat == nil || cfg.Auth == nil || cfg.Ready == nil {
		return nil, errors.New("server: Chat, Auth and Ready are required")
	}
	setDefaults(&cfg)
	enabled, err := enabledTransports(cfg.Transports)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		conns:   make(map[conn]struct{}),
		enabled: enabled,
	}
	s.fb, _ = cfg.Chat.(chat.Fallback)
	if s.fb == nil && (enabled[TransportSSE] || enabled[TransportLongPoll]) {
		return nil, errors.New("server: the SSE and long-poll transports need a Chat that implements chat.Fallback")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.drain, s.startStop = context.WithCancel(context.Background())
	s.accept = ws.AcceptOptions{
		Subprotocols:   []string{subprotocol},
		OriginPatterns: cfg.OriginPatterns,
		Compression:    cfg.Compression,
		ReadLimit:      cfg.ReadLimit,
		PingInterval:   max(cfg.PingInterval, 0),
		PongTimeout:    cfg.PongTimeout,
	}
	if err := s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

func setDefaults(c *Config) {
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SendQueue <= 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.SSEPingInterval <= 0 {
		c.SSEPingInterval = DefaultSSEPingInterval
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
}

// Metrics returns the server's collectors, for wiring the chat service's
// latency hooks.
func (s *Server) Metrics() *Metrics { return s.metrics }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve serves HTTP (HTTPS when tlsConfig is non-nil) on ln until ctx is
// cancelled, then shuts down gracefully: it stops accepting, closes every
// WebSocket with 1001 after flushing its queue, and waits for in-flight
// requests, all within grace. It does not close the chat service or the
// store: their owner does, after Serve returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	// Streams and long polls are requests in flight that http.Server.Shutdown
	// would wait for: end them as soon as it starts.
	hs.RegisterOnShutdown(s.beginShutdown)
	errc := make(chan error, 1)
	if tlsConfig != nil {
		// ServeTLS negotiates HTTP/2 for the API; WebSocket clients offer
		// only http/1.1 in ALPN and get it.
		hs.TLSConfig = tlsConfig.Clone()
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	s.shuttingDown.Store(true)
	herr := hs.Shutdown(sctx) // stops the listener; hijacked conns are ours
	werr := s.Shutdown(sctx)
	<-errc
	return errors.Join(herr, werr)
}

// Shutdown marks the server as not ready, closes every WebSocket and SSE
// stream with 1001 going away after flushing its queue, answers pending
// long polls, and waits for the handlers until ctx ends, when the
// remaining connections are dropped.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return s.closePoller()
	case <-ctx.Done():
		s.cancel() // interrupts every handler's waits and SSE stream
		s.abortAll()
		<-done
		return errors.Join(fmt.Errorf("server: shutdown: %w", ctx.Err()), s.closePoller())
	}
}

// abortAll drops the WebSocket connections still open.
func (s *Server) abortAll() {
	s.mu.Lock()
	var ws []*wsConn
	for c := range s.conns {
		if w, ok := c.(*wsConn); ok {
			ws = append(ws, w)
		}
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.abort()
	}
}

// wsPoller returns the Poller that reads WebSocket clients, starting it
// with the first one.
func (s *Server) wsPoller() (*ws.Poller, error) {
	s.pollerMu.Lock()
	defer s.pollerMu.Unlock()
	if s.pollerClosed {
		return nil, ws.ErrPollerClosed
	}
	if s.poller == nil {
		p, err := ws.NewPoller(nil)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.poller = p
	}
	return s.poller, nil
}

// closePoller stops the Poller once every connection has ended; no other
// is started after.
func (s *Server) closePoller() error {
	s.pollerMu.Lock()
	p := s.poller
	s.poller, s.pollerClosed = nil, true
	s.pollerMu.Unlock()
	if p == nil {
		return nil
	}
	return p.Close()
}

// beginShutdown stops taking clients and asks every connection to close.
func (s *Server) beginShutdown() {
	s.shuttingDown.Store(true)
	s.startStop()
	s.mu.Lock()
	for c := range s.conns {
		c.Close(int(ws.StatusGoingAway), "server shutting down")
	}
	s.mu.Unlock()
}

// conn is a long-lived client connection Shutdown closes.
type conn interface {
	Close(code int, reason string)
}

// track registers c so Shutdown reaches it; it fails once shutting down.
func (s *Server) track(c conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}
