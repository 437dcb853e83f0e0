package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// The interop tests pair one of our endpoints (ws.Accept or ws.Dial) with a
// peer library. One side, the driver, runs the scenarios; the other side runs
// serveEcho, which echoes every data message and obeys the commands below,
// then reports what it saw. Every scenario is written once against the
// endpoint interface, so each library only needs a small adapter.

// Commands the driver sends to the echo side as text messages. The payload
// generators never produce these strings.
const (
	cmdClose = "interop-cmd:close" // echo side closes with echoCloseCode
	cmdPing  = "interop-cmd:ping"  // echo side pings the driver, answers pingOK
	pingOK   = "interop-ping-ok"
)

// Close codes and reasons each side uses, distinct so a test can tell who
// closed. The driver's reason is non-ASCII: reasons are UTF-8 on the wire.
const (
	echoCloseCode     = 4000
	echoCloseReason   = "bye"
	driverCloseCode   = 4001
	driverCloseReason = "driver-bye ✓"
)

// sessionTimeout bounds one connection's whole exchange. It is generous
// because the race detector makes deflate of megabyte messages slow on a
// shared two-core machine; it is a hang guard, not a performance assertion.
const sessionTimeout = 3 * time.Minute

// endpoint is one side of a WebSocket connection, whatever library made it.
// Each adapter runs its own reader goroutine, so pongs and close frames are
// processed while the test is busy elsewhere, as in a real application.
type endpoint interface {
	// send writes one data message.
	send(ctx context.Context, typ ws.MessageType, p []byte) error
	// recv returns the next data message; once the connection has ended it
	// returns the error that ended reading (for a close frame, one that
	// closeInfo understands).
	recv(ctx context.Context) (ws.MessageType, []byte, error)
	// ping sends a ping and waits for the pong carrying the same payload.
	ping(ctx context.Context) error
	// closeWith starts the close handshake with code and reason.
	closeWith(code int, reason string) error
	// abort drops the TCP connection and waits for the reader goroutine to
	// exit; the error says when it did not.
	abort() error
}

// message is one received data message, copied out of the library's buffers.
type message struct {
	typ  ws.MessageType
	data []byte
}

// inbox hands messages from an adapter's reader goroutine to recv. It is
// bounded: a reader that gets ahead of the test waits (and so applies TCP
// backpressure) until recv catches up or the inbox is stopped.
type inbox struct {
	msgs     chan message
	done     chan struct{} // closed by finish, after err is set
	err      error
	stop     chan struct{} // closed by halt: deliver stops waiting
	stopOnce sync.Once
}

func newInbox() *inbox {
	return &inbox{
		msgs: make(chan message, 8),
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
}

// deliver queues a copy of p; the reader goroutine calls it.
func (in *inbox) deliver(typ ws.MessageType, p []byte) {
	m := message{typ: typ, data: bytes.Clone(p)}
	select {
	case in.msgs <- m:
	case <-in.stop:
	}
}

// finish records the error that ended reading; the reader goroutine calls
// it exactly once, as it exits.
func (in *inbox) finish(err error) {
	if err == nil {
		err = errors.New("interop: reader ended without an error")
	}
	in.err = err
	close(in.done)
}

// halt makes a blocked deliver give up; abort calls it.
func (in *inbox) halt() { in.stopOnce.Do(func() { close(in.stop) }) }

func (in *inbox) recv(ctx context.Context) (ws.MessageType, []byte, error) {
	select {
	case m := <-in.msgs:
		return m.typ, m.data, nil
	case <-in.done:
		select {
		case m := <-in.msgs: // delivered before the end: still ours
			return m.typ, m.data, nil
		default:
			return 0, nil, in.err
		}
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("recv: %w", ctx.Err())
	}
}

// waitDone waits for the reader goroutine to exit.
func (in *inbox) waitDone(d time.Duration) error {
	select {
	case <-in.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("reader goroutine still running %v after the connection was dropped", d)
	}
}

// pongWaiter matches pongs to the ping an adapter sent, for libraries whose
// ping API does not wait for the pong itself.
type pongWaiter struct {
	ch chan []byte
}

func newPongWaiter() *pongWaiter { return &pongWaiter{ch: make(chan []byte, 4)} }

// got is called from the library's pong callback.
func (pw *pongWaiter) got(p []byte) {
	select {
	case pw.ch <- bytes.Clone(p):
	default: // nobody is waiting for that many pongs
	}
}

// ping sends a random payload with write and waits for the matching pong,
// ignoring stale ones, until ctx ends or the connection does.
func (pw *pongWaiter) ping(ctx context.Context, done <-chan struct{}, write func([]byte) error) error {
	payload := make([]byte, 8)
	rand.Read(payload)
	if err := write(payload); err != nil {
		return fmt.Errorf("write ping: %w", err)
	}
	for {
		select {
		case p := <-pw.ch:
			if bytes.Equal(p, payload) {
				return nil
			}
		case <-done:
			return errors.New("connection ended before the pong")
		case <-ctx.Done():
			return fmt.Errorf("no pong: %w", ctx.Err())
		}
	}
}

// echoReport is what the echo side of one connection saw.
type echoReport struct {
	setupErr error    // the echo side's handshake failed
	term     error    // what ended its reading
	closed   bool     // it was asked to close
	closeErr error    // the result of its closeWith
	errs     []string // anything else that went wrong on the echo side
}

// serveEcho echoes data messages and obeys the driver's commands until the
// connection ends.
func serveEcho(ctx context.Context, ep endpoint) echoReport {
	var (
		rep echoReport
		mu  sync.Mutex // guards rep.errs against the ping goroutines
		wg  sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		rep.errs = append(rep.errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for {
		typ, p, err := ep.recv(ctx)
		if err != nil {
			rep.term = err
			break
		}
		switch {
		case typ == ws.MessageText && string(p) == cmdClose:
			rep.closed = true
			rep.closeErr = ep.closeWith(echoCloseCode, echoCloseReason)
		case typ == ws.MessageText && string(p) == cmdPing:
			wg.Add(1)
			go func() {
				defer wg.Done()
				reply := pingOK
				if err := ep.ping(ctx); err != nil {
					reply = "interop-ping-failed: " + err.Error()
				}
				if err := ep.send(ctx, ws.MessageText, []byte(reply)); err != nil {
					fail("send ping result: %v", err)
				}
			}()
		default:
			if err := ep.send(ctx, typ, p); err != nil {
				fail("echo %v message of %d bytes: %v", typ, len(p), err)
			}
		}
	}
	wg.Wait()
	return rep
}

// closeInfo extracts the close code and reason from a read error of any of
// the libraries under test.
func closeInfo(err error) (code int, reason string, ok bool) {
	var ours *ws.CloseError
	if errors.As(err, &ours) {
		return int(ours.Code), ours.Reason, true
	}
	for _, peer := range []func(error) (int, string, bool){gorillaCloseInfo, coderCloseInfo, gwsCloseInfo} {
		if code, reason, ok := peer(err); ok {
			return code, reason, true
		}
	}
	return 0, "", false
}

// wireCounter counts the bytes our side writes to TCP, to check that
// compression really happens rather than merely being negotiated.
type wireCounter struct{ written atomic.Int64 }

type countingConn struct {
	net.Conn
	ctr *wireCounter
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.ctr.written.Add(int64(n))
	return n, err
}

type countingListener struct {
	net.Listener
	ctr *wireCounter
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, ctr: l.ctr}, nil
}

// echoServer is an httptest server whose handler upgrades with some library
// and runs serveEcho, reporting each connection on reports.
type echoServer struct {
	url     string
	reports chan echoReport
	wire    *wireCounter
	// tls is the configuration a client needs to trust the server, nil
	// for plain ws://.
	tls *tls.Config
}

// startEchoServer serves upgrade on 127.0.0.1 until the test ends, over TLS
// (wss://, with httptest's certificate) when useTLS is set.
func startEchoServer(t *testing.T, useTLS bool, upgrade func(w http.ResponseWriter, r *http.Request) (endpoint, error)) *echoServer {
	t.Helper()
	s := &echoServer{reports: make(chan echoReport, 16), wire: new(wireCounter)}
	ctx := t.Context()
	report := func(rep echoReport) {
		select {
		case s.reports <- rep:
		default: // nobody reads this many reports: the test already failed
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep, err := upgrade(w, r)
		if err != nil {
			report(echoReport{setupErr: err})
			return
		}
		rep := serveEcho(ctx, ep)
		if err := ep.abort(); err != nil {
			rep.errs = append(rep.errs, err.Error())
		}
		report(rep)
	}))
	srv.Listener = countingListener{Listener: srv.Listener, ctr: s.wire}
	if useTLS {
		srv.StartTLS()
		s.tls = srv.Client().Transport.(*http.Transport).TLSClientConfig
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
	return s
}

// tri is an expectation that may also be "don't care".
type tri int

const (
	either tri = iota
	yes
	no
)

func (x tri) allows(b bool) bool { return x == either || (x == yes) == b }

// negotiation is what the handshake response's Sec-WebSocket-Extensions
// must say.
type negotiation struct {
	deflate bool
	// mayDecline allows the server to decline permessage-deflate.
	mayDecline bool
	serverNCT  tri // server_no_context_takeover
	clientNCT  tri // client_no_context_takeover
}

var (
	wantPlain = negotiation{}
	// wantDeflate takes whatever context-takeover parameters the two sides
	// may legitimately agree on.
	wantDeflate = negotiation{deflate: true}
	wantCtx     = negotiation{deflate: true, serverNCT: no, clientNCT: no}
	wantNoCtx   = negotiation{deflate: true, serverNCT: yes, clientNCT: yes}
	// wantServerNoCtx is for offers with server_no_context_takeover, which
	// a server must echo (RFC 7692 section 7.1.1.1).
	wantServerNoCtx = negotiation{deflate: true, serverNCT: yes}
	// wantMaybeDeflate is for offers a server may decline.
	wantMaybeDeflate = negotiation{deflate: true, mayDecline: true}
)

// extParams parses the first extension of a Sec-WebSocket-Extensions value.
func extParams(h http.Header) (name string, params map[string]string) {
	v := strings.Join(h.Values("Sec-WebSocket-Extensions"), ",")
	if strings.TrimSpace(v) == "" {
		return "", nil
	}
	first, _, _ := strings.Cut(v, ",")
	parts := strings.Split(first, ";")
	params = make(map[string]string)
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return strings.TrimSpace(parts[0]), params
}

// peerDial connects a peer's client to url, trusting tc for wss:// URLs.
type peerDial func(ctx context.Context, url string, tc *tls.Config) (endpoint, http.Header, error)

// pair is one of our endpoints matched with a peer.
type pair struct {
	// dial opens a connection and returns the driver's endpoint and the
	// handshake response headers the client saw.
	dial func(ctx context.Context) (endpoint, http.Header, error)
	// reports receives one echoReport per connection from the echo side.
	reports <-chan echoReport
	// ourServer is true when our side is the server.
	ourServer bool
	// ourCompressed reports Compressed() of our side's connection.
	ourCompressed func() (bool, error)
	// wire counts the bytes our side writes.
	wire *wireCounter
	want negotiation
	// lastPings keeps pings out of the compressed traffic, for peers that
	// cannot mix them (see peer_gws_test.go).
	lastPings bool
	// halfUncompressed says our side sends every other message
	// uncompressed on purpose, which relaxes the burst's ratio bound.
	halfUncompressed bool
}

// session is one connection of a pair, torn down when the test ends.
type session struct {
	ep     endpoint
	p      pair
	rep    echoReport
	gotRep bool
	ourCtx bool // our side compresses with context takeover
	deflt  bool // permessage-deflate was negotiated
}

func (p pair) open(t *testing.T, ctx context.Context) *session {
	t.Helper()
	ep, hdr, err := p.dial(ctx)
	if err != nil {
		select { // the echo side may say why
		case rep := <-p.reports:
			t.Fatalf("dial: %v (echo side: setup %v, errors %v)", err, rep.setupErr, rep.errs)
		case <-time.After(2 * time.Second):
			t.Fatalf("dial: %v", err)
		}
	}
	s := &session{ep: ep, p: p}
	t.Cleanup(func() {
		if err := ep.abort(); err != nil {
			t.Errorf("driver: %v", err)
		}
		s.report(t)
	})

	name, params := extParams(hdr)
	_, snct := params["server_no_context_takeover"]
	_, cnct := params["client_no_context_takeover"]
	s.deflt = name == "permessage-deflate"
	t.Logf("negotiated extensions: %q", hdr.Values("Sec-WebSocket-Extensions"))
	switch {
	case s.deflt != p.want.deflate && !(p.want.mayDecline && !s.deflt):
		t.Errorf("permessage-deflate negotiated = %v, want %v", s.deflt, p.want.deflate)
	case !p.want.serverNCT.allows(snct):
		t.Errorf("server_no_context_takeover = %v, want %v", snct, p.want.serverNCT == yes)
	case !p.want.clientNCT.allows(cnct):
		t.Errorf("client_no_context_takeover = %v, want %v", cnct, p.want.clientNCT == yes)
	}
	if got, err := p.ourCompressed(); err != nil {
		t.Errorf("our side: %v", err)
	} else if got != s.deflt {
		t.Errorf("our Conn.Compressed() = %v, but the handshake said permessage-deflate = %v", got, s.deflt)
	}
	if p.ourServer {
		s.ourCtx = s.deflt && !snct
	} else {
		s.ourCtx = s.deflt && !cnct
	}
	return s
}

// report waits for the echo side's report of this session.
func (s *session) report(t *testing.T) echoReport {
	t.Helper()
	if s.gotRep {
		return s.rep
	}
	select {
	case s.rep = <-s.p.reports:
		s.gotRep = true
		if s.rep.setupErr != nil {
			t.Errorf("echo side handshake: %v", s.rep.setupErr)
		}
		for _, e := range s.rep.errs {
			t.Errorf("echo side: %s", e)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("no report from the echo side")
		s.gotRep = true
	}
	return s.rep
}

// run exercises a pair: one connection for data, pings and a close started
// by the driver, a second one for a close started by the echo side.
func (p pair) run(t *testing.T) {
	t.Run("exchange", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), sessionTimeout)
		defer cancel()
		s := p.open(t, ctx)
		s.echoSizes(t, ctx)
		if !p.lastPings {
			// Control frames between compressed messages must leave
			// both sides' sliding windows alike.
			s.pings(t, ctx)
		}
		s.burst(t, ctx)
		s.pings(t, ctx)
		s.driverCloses(t)
	})
	t.Run("echo-closes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), sessionTimeout)
		defer cancel()
		s := p.open(t, ctx)
		s.roundTrip(t, ctx, ws.MessageText, textPayload(300, 1))
		s.echoCloses(t, ctx)
	})
}

// messageSizes cross every frame-length encoding boundary (RFC 6455 section
// 5.2: 7-bit, 16-bit and 64-bit lengths).
var messageSizes = []int{0, 1, 125, 126, 127, 65535, 64 << 10, 65537, 1 << 20}

func (s *session) roundTrip(t *testing.T, ctx context.Context, typ ws.MessageType, p []byte) {
	t.Helper()
	if err := s.ep.send(ctx, typ, p); err != nil {
		t.Fatalf("send %v message of %d bytes: %v", typ, len(p), err)
	}
	gotTyp, got, err := s.ep.recv(ctx)
	if err != nil {
		t.Fatalf("recv echo of %v message of %d bytes: %v", typ, len(p), err)
	}
	if gotTyp != typ || !bytes.Equal(got, p) {
		t.Fatalf("echo of %v message of %d bytes: got %v message of %d bytes (%s)",
			typ, len(p), gotTyp, len(got), firstDiff(got, p))
	}
}

// echoSizes sends text and binary messages of every size and checks their
// echoes byte for byte: compressible text and incompressible binary, so
// deflate takes both its compressing and its stored-block paths.
func (s *session) echoSizes(t *testing.T, ctx context.Context) {
	for _, typ := range []ws.MessageType{ws.MessageText, ws.MessageBinary} {
		for i, n := range messageSizes {
			if typ == ws.MessageText {
				s.roundTrip(t, ctx, typ, textPayload(n, i))
			} else {
				s.roundTrip(t, ctx, typ, binaryPayload(n, uint64(i)))
			}
		}
	}
}

// burstCount is the number of messages in a burst: enough for context
// takeover to matter.
const burstCount = 200

// burst sends many similar messages back to back while the echoes come
// back, exercising the sliding window carried between messages, and checks
// from the bytes our side wrote that compression was really used.
func (s *session) burst(t *testing.T, ctx context.Context) {
	msgs := burstPayloads(burstCount)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	before := s.p.wire.written.Load()
	sendErr := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := s.ep.send(ctx, ws.MessageText, m); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for i, m := range msgs {
		typ, got, err := s.ep.recv(ctx)
		if err != nil {
			t.Fatalf("burst: recv echo %d: %v (send: %v)", i, err, <-sendErr)
		}
		if typ != ws.MessageText || !bytes.Equal(got, m) {
			t.Fatalf("burst: echo %d: got %v %q, want text %q", i, typ, got, m)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("burst: send: %v", err)
	}
	// Context takeover compresses these messages to about a fifth; half
	// of them sent as they are stays well under three quarters.
	ctxBound := 0.5
	if s.p.halfUncompressed {
		ctxBound = 0.75
	}
	written := s.p.wire.written.Load() - before
	ratio := float64(written) / float64(total)
	t.Logf("burst: our side wrote %d bytes on the wire for %d bytes of messages (%.2f)", written, total, ratio)
	switch {
	case !s.deflt && written < int64(total):
		t.Errorf("burst: wrote %d bytes for %d bytes of messages without compression", written, total)
	case s.deflt && s.ourCtx && ratio > ctxBound:
		t.Errorf("burst: ratio %.2f with context takeover, want <= %.2f: is the window kept between messages?", ratio, ctxBound)
	case s.deflt && !s.ourCtx && ratio >= 1:
		t.Errorf("burst: ratio %.2f with permessage-deflate, want < 1: are messages compressed?", ratio)
	}
}

// pings checks both directions: the driver pings the echo side, then the
// echo side pings the driver.
func (s *session) pings(t *testing.T, ctx context.Context) {
	if err := s.ep.ping(ctx); err != nil {
		t.Errorf("driver ping: %v", err)
	}
	if err := s.ep.send(ctx, ws.MessageText, []byte(cmdPing)); err != nil {
		t.Fatalf("send ping command: %v", err)
	}
	typ, got, err := s.ep.recv(ctx)
	if err != nil {
		t.Fatalf("recv ping result: %v", err)
	}
	if typ != ws.MessageText || string(got) != pingOK {
		t.Errorf("echo side ping: got %v %q, want text %q", typ, got, pingOK)
	}
}

// driverCloses closes from the driver and checks the echo side saw the
// code and reason.
func (s *session) driverCloses(t *testing.T) {
	if err := s.ep.closeWith(driverCloseCode, driverCloseReason); err != nil {
		t.Errorf("driver close handshake: %v", err)
	}
	rep := s.report(t)
	code, reason, ok := closeInfo(rep.term)
	if !ok || code != driverCloseCode || reason != driverCloseReason {
		t.Errorf("echo side saw %v (code %d, reason %q), want close %d %q",
			rep.term, code, reason, driverCloseCode, driverCloseReason)
	}
}

// echoCloses asks the echo side to close and checks the driver saw the
// code and reason and the echo side's handshake completed.
func (s *session) echoCloses(t *testing.T, ctx context.Context) {
	if err := s.ep.send(ctx, ws.MessageText, []byte(cmdClose)); err != nil {
		t.Fatalf("send close command: %v", err)
	}
	typ, got, err := s.ep.recv(ctx)
	if err == nil {
		t.Fatalf("after the close command: got %v message %q, want the connection closed", typ, got)
	}
	code, reason, ok := closeInfo(err)
	if !ok || code != echoCloseCode || reason != echoCloseReason {
		t.Errorf("driver saw %v (code %d, reason %q), want close %d %q",
			err, code, reason, echoCloseCode, echoCloseReason)
	}
	rep := s.report(t)
	if !rep.closed {
		t.Errorf("echo side never got the close command")
	}
	if rep.closeErr != nil {
		t.Errorf("echo side close handshake: %v", rep.closeErr)
	}
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want []byte) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: %#x, want %#x", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
