package ws_test

// The conformance harness runs each case against both of our roles and every
// compression mode:
//
//   - our server (ws.Accept behind httptest) facing a raw TCP client that
//     sends hand-crafted masked frames, as a browser would;
//   - our client (ws.Dial) facing a raw TCP server that completes the
//     handshake by hand and sends hand-crafted unmasked frames.
//
// Our side runs a serve function (an echo loop by default) whose error is
// checked by the test. Every blocking step has a short deadline so that a
// hang fails the case instead of stalling the run.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// ioTimeout bounds every single blocking step of a case.
const ioTimeout = 5 * time.Second

// side is the role of package ws under test.
type side int

const (
	ourServer side = iota
	ourClient
)

func (s side) String() string {
	if s == ourServer {
		return "server"
	}
	return "client"
}

// mode is a compression configuration of our side.
type mode struct {
	name string
	comp ws.CompressionMode
}

var modes = []mode{
	{"off", ws.CompressionDisabled},
	{"ctx", ws.CompressionContextTakeover},
	{"noctx", ws.CompressionNoContextTakeover},
}

// harness is one (role, mode) combination. With poller set, the default
// serve function is the echo served by testPoller instead of a Read loop,
// so every case that uses the default runs through the event-driven read
// path too; cases with their own serve function are skipped in that
// variant (they would only repeat the Read variant).
type harness struct {
	side   side
	mode   mode
	poller bool
}

// serveFor picks the serve function of a case.
func (h harness) serveFor(t testing.TB, serve serveFunc) serveFunc {
	t.Helper()
	switch {
	case !h.poller && serve == nil:
		return echo
	case !h.poller:
		return serve
	case serve != nil:
		t.Skip("the case has its own serve function: covered by the Read variant")
	}
	return pollerEcho
}

func (h harness) compressed() bool { return h.mode.comp != ws.CompressionDisabled }

// forEach runs fn as a subtest for every role and mode, and once more for
// each with our side read by a Poller (see harness.poller).
func forEach(t *testing.T, fn func(t *testing.T, h harness)) {
	t.Helper()
	for _, s := range []side{ourServer, ourClient} {
		for _, m := range modes {
			for _, polled := range []bool{false, true} {
				h := harness{side: s, mode: m, poller: polled}
				t.Run(h.name(s.String()+"/"+m.name), func(t *testing.T) { fn(t, h) })
			}
		}
	}
}

// forEachSide runs fn for both roles in one mode, each also with a Poller.
func forEachSide(t *testing.T, m mode, fn func(t *testing.T, h harness)) {
	t.Helper()
	for _, s := range []side{ourServer, ourClient} {
		for _, polled := range []bool{false, true} {
			h := harness{side: s, mode: m, poller: polled}
			t.Run(h.name(s.String()), func(t *testing.T) { fn(t, h) })
		}
	}
}

// name is the subtest name of h.
func (h harness) name(base string) string {
	if h.poller {
		return base + "/poller"
	}
	return base
}

// serveFunc is what our side does with its Conn; its error is the case's
// API result.
type serveFunc func(ctx context.Context, c *ws.Conn) error

// echo reads messages and writes each back with its type.
func echo(ctx context.Context, c *ws.Conn) error {
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return fmt.Errorf("echo write: %w", err)
		}
	}
}

// config adjusts a case.
type config struct {
	serve     serveFunc
	readLimit int64
	// offer replaces the raw client's Sec-WebSocket-Extensions offer.
	offer *string
	// respond, for our client, chooses the raw server's extension response
	// from the client's offer; nil picks the default for the mode.
	respond func(t testing.TB, offers []extension) string
	// compression replaces the mode's options on our side.
	compression *ws.CompressionOptions
	// noCheckHandshake skips asserting the default negotiation.
	noCheckHandshake bool
	// early is raw bytes (frames) the raw peer sends in the same write as
	// its handshake, before it has seen the other side's.
	early []byte
	// acceptConn makes our server use AcceptConn on a plain listener
	// instead of Accept behind net/http.
	acceptConn bool
	// pingInterval and pongTimeout set our side's heartbeat.
	pingInterval, pongTimeout time.Duration
}

// pair is a connected (raw peer, our Conn) couple.
type pair struct {
	t    testing.TB
	h    harness
	peer *rawPeer
	conn *ws.Conn
	done chan error // result of serve
	// negotiated is the permessage-deflate agreement (nil when off).
	negotiated *pmdParams
	// respHeader is the handshake response seen by the raw client (server
	// side) or the request seen by the raw server (client side).
	header http.Header
}

// start connects a raw peer to our side in role h.side with mode h.mode.
func (h harness) start(t testing.TB, cfg config) *pair {
	t.Helper()
	cfg.serve = h.serveFor(t, cfg.serve)
	comp := ws.CompressionOptions{Mode: h.mode.comp}
	if cfg.compression != nil {
		comp = *cfg.compression
	}
	if h.side == ourServer {
		return startServer(t, h, cfg, comp)
	}
	return startClient(t, h, cfg, comp)
}

// runServe runs serve on c and reports its result on done.
func runServe(ctx context.Context, c *ws.Conn, serve serveFunc, done chan<- error) {
	done <- serve(ctx, c)
}

// cleanupPair makes sure both ends are closed and serve has returned.
func cleanupPair(t testing.TB, p *pair, cancel context.CancelFunc) {
	t.Cleanup(func() {
		cancel()
		if p.peer != nil {
			p.peer.nc.Close()
		}
		if p.conn != nil {
			p.conn.CloseNow()
		}
		select {
		case <-p.done:
		case <-time.After(ioTimeout):
			t.Errorf("our %v's serve goroutine did not return after CloseNow", p.h.side)
		}
	})
}

func startServer(t testing.TB, h harness, cfg config, comp ws.CompressionOptions) *pair {
	t.Helper()
	p := &pair{t: t, h: h, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	conns := make(chan *ws.Conn, 1)
	acceptErr := make(chan error, 1)
	opts := &ws.AcceptOptions{Compression: comp, ReadLimit: cfg.readLimit, PingInterval: cfg.pingInterval, PongTimeout: cfg.pongTimeout}
	var addr string
	if cfg.acceptConn {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		t.Cleanup(func() { ln.Close() })
		addr = ln.Addr().String()
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			c, _, err := ws.AcceptConn(ctx, nc, opts)
			if err != nil {
				nc.Close()
				acceptErr <- err
				return
			}
			conns <- c
			runServe(ctx, c, cfg.serve, p.done)
		}()
	} else {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := ws.Accept(w, r, opts)
			if err != nil {
				acceptErr <- err
				return
			}
			conns <- c
			runServe(ctx, c, cfg.serve, p.done)
		}))
		t.Cleanup(srv.Close)
		addr = srv.Listener.Addr().String()
	}

	offer := "permessage-deflate; client_max_window_bits"
	if cfg.offer != nil {
		offer = *cfg.offer
	}
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		cancel()
		t.Fatalf("dial: %v", err)
	}
	p.peer = &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc), client: true, early: cfg.early}
	resp, err := p.peer.clientHandshake("/", offer)
	if err != nil {
		nc.Close()
		cancel()
		t.Fatalf("raw client handshake: %v", err)
	}
	select {
	case p.conn = <-conns:
	case err := <-acceptErr:
		nc.Close()
		cancel()
		t.Fatalf("Accept: %v", err)
	case <-time.After(ioTimeout):
		nc.Close()
		cancel()
		t.Fatalf("Accept did not return")
	}
	cleanupPair(t, p, cancel)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	p.header = resp.Header
	exts := parseExtensions(resp.Header.Values("Sec-WebSocket-Extensions"))
	if !h.compressed() && !cfg.noCheckHandshake {
		if len(exts) != 0 {
			t.Fatalf("compression off but server answered extensions %v", exts)
		}
		return p
	}
	if len(exts) == 0 {
		if !cfg.noCheckHandshake {
			t.Fatalf("server declined permessage-deflate offer %q", offer)
		}
		return p
	}
	if len(exts) != 1 || exts[0].name != "permessage-deflate" {
		t.Fatalf("server answered extensions %v, want one permessage-deflate", exts)
	}
	neg, err := parsePMD(exts[0], true)
	if err != nil {
		t.Fatalf("server's permessage-deflate response %q: %v", exts[0], err)
	}
	p.negotiated = &neg
	p.peer.deflate = newRawDeflate(neg, true)
	return p
}

func startClient(t testing.TB, h harness, cfg config, comp ws.CompressionOptions) *pair {
	t.Helper()
	p, err := startClientErr(t, h, cfg, comp)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return p
}

// tryStartClient is start for our client, returning Dial's error instead of
// failing the test.
func (h harness) tryStartClient(t testing.TB, cfg config) (*pair, error) {
	t.Helper()
	cfg.serve = h.serveFor(t, cfg.serve)
	comp := ws.CompressionOptions{Mode: h.mode.comp}
	if cfg.compression != nil {
		comp = *cfg.compression
	}
	return startClientErr(t, h, cfg, comp)
}

func startClientErr(t testing.TB, h harness, cfg config, comp ws.CompressionOptions) (*pair, error) {
	t.Helper()
	p := &pair{t: t, h: h, done: make(chan error, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	type accepted struct {
		peer *rawPeer
		req  *http.Request
		neg  *pmdParams
		err  error
	}
	acc := make(chan accepted, 1)
	respond := cfg.respond
	if respond == nil {
		respond = defaultRespond(h)
	}
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			acc <- accepted{err: err}
			return
		}
		peer := &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc), early: cfg.early}
		req, neg, err := peer.serverHandshake(t, respond)
		if err != nil {
			nc.Close()
		}
		acc <- accepted{peer: peer, req: req, neg: neg, err: err}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, ioTimeout)
	defer dcancel()
	c, _, err := ws.Dial(dctx, "ws://"+ln.Addr().String()+"/", &ws.DialOptions{Compression: comp, ReadLimit: cfg.readLimit, PingInterval: cfg.pingInterval, PongTimeout: cfg.pongTimeout})
	if err != nil {
		ln.Close() // unblocks Accept if Dial never connected
		a := <-acc
		if a.peer != nil {
			a.peer.nc.Close()
		}
		cancel()
		return nil, err
	}
	a := <-acc
	if a.err != nil {
		c.CloseNow()
		cancel()
		t.Fatalf("raw server handshake: %v", a.err)
	}
	p.peer, p.conn, p.negotiated, p.header = a.peer, c, a.neg, a.req.Header
	if a.neg != nil {
		p.peer.deflate = newRawDeflate(*a.neg, false)
	}
	go runServe(ctx, c, cfg.serve, p.done)
	cleanupPair(t, p, cancel)
	if !cfg.noCheckHandshake {
		offers := pmdOffers(a.req.Header)
		if h.compressed() != (len(offers) > 0) {
			t.Fatalf("mode %s: client offered %v", h.mode.name, offers)
		}
		if h.compressed() && a.neg == nil {
			t.Fatalf("raw server did not accept the offer %v", offers)
		}
	}
	return p, nil
}

// pmdOffers returns the permessage-deflate elements of a request.
func pmdOffers(hd http.Header) []extension {
	var out []extension
	for _, e := range parseExtensions(hd.Values("Sec-WebSocket-Extensions")) {
		if e.name == "permessage-deflate" {
			out = append(out, e)
		}
	}
	return out
}

// defaultRespond accepts the client's first permessage-deflate offer when
// the mode compresses. In noctx mode the raw server also asks for no context
// takeover in both directions.
func defaultRespond(h harness) func(t testing.TB, offers []extension) string {
	return func(t testing.TB, offers []extension) string {
		if len(offers) == 0 {
			return ""
		}
		off, err := parsePMD(offers[0], false)
		if err != nil {
			t.Errorf("our client's offer %q is invalid: %v", offers[0], err)
			return ""
		}
		resp := pmdParams{serverNoCtx: off.serverNoCtx, serverBits: off.serverBits}
		if h.mode.comp == ws.CompressionNoContextTakeover {
			resp.serverNoCtx, resp.clientNoCtx = true, true
		}
		return resp.String()
	}
}

// wantResult waits for our side's serve to return and checks the close code
// its error carries (ws.CloseStatus).
func (pr *pair) wantResult(code ws.StatusCode) error {
	pr.t.Helper()
	select {
	case err := <-pr.done:
		pr.done <- err // keep it for cleanup
		if got := ws.CloseStatus(err); got != code {
			pr.t.Errorf("our %s returned %v (CloseStatus %d), want CloseStatus %d", pr.h.side, err, got, code)
		}
		return err
	case <-time.After(ioTimeout):
		pr.t.Fatalf("our %s's Read did not return within %v; goroutines of package ws:\n%s", pr.h.side, ioTimeout, wsStacks())
		return nil
	}
}

// wantNil waits for our side's serve to return and checks it succeeded.
func (pr *pair) wantNil() {
	pr.t.Helper()
	select {
	case err := <-pr.done:
		pr.done <- err
		if err != nil {
			pr.t.Errorf("our %s: %v", pr.h.side, err)
		}
	case <-time.After(ioTimeout):
		pr.t.Fatalf("our %s's serve did not return within %v; goroutines of package ws:\n%s", pr.h.side, ioTimeout, wsStacks())
	}
}

// failsWith checks the whole failure path of a case: our side sends a close
// frame with code, the raw peer answers it, the TCP connection ends, and
// our Read returns an error carrying code; errIs, if non-nil, must be in the
// error chain.
func (pr *pair) failsWith(code ws.StatusCode, errIs error) {
	pr.t.Helper()
	pr.peer.expectClose(int(code))
	pr.peer.finishClose(int(code))
	err := pr.wantResult(code)
	if errIs != nil && err != nil && !errors.Is(err, errIs) {
		pr.t.Errorf("our %s returned %v, want it to wrap %v", pr.h.side, err, errIs)
	}
}

// echoes sends a message and checks it comes back byte-exact with its type.
func (pr *pair) echoes(op byte, payload []byte, o sendOpts) {
	pr.t.Helper()
	pr.peer.sendMessage(op, payload, o)
	m := pr.peer.readMessage()
	if m.op != op || !bytes.Equal(m.payload, payload) {
		pr.t.Fatalf("echo of %d-byte op %#x came back as %d-byte op %#x (equal=%v)", len(payload), op, len(m.payload), m.op, bytes.Equal(m.payload, payload))
	}
}

// closeNormally ends a case that left the connection open: the raw peer
// starts a close handshake with 1000 and checks the echo and our result.
func (pr *pair) closeNormally() {
	pr.t.Helper()
	pr.peer.writeFrame(frame{fin: true, op: opClose, payload: closePayload(1000, "bye")})
	pr.peer.expectClose(1000)
	if pr.peer.client {
		pr.peer.expectEOF()
	} else {
		pr.peer.nc.Close()
	}
	pr.wantResult(ws.StatusNormalClosure)
}

// wsStacks returns the stacks of the goroutines running code of package ws,
// to show where a hang is.
func wsStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "duplex/ws.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
