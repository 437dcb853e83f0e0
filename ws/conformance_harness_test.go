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
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// harness is one (role, mode) combination.
type harness struct {
	side side
	mode mode
}

func (h harness) compressed() bool { return h.mode.comp != ws.CompressionDisabled }

// forEach runs fn as a subtest for every role and mode.
func forEach(t *testing.T, fn func(t *testing.T, h harness)) {
	t.Helper()
	for _, s := range []side{ourServer, ourClient} {
		for _, m := range modes {
			h := harness{side: s, mode: m}
			t.Run(s.String()+"/"+m.name, func(t *testing.T) { fn(t, h) })
		}
	}
}

// forEachSide runs fn for both roles in one mode.
func forEachSide(t *testing.T, m mode, fn func(t *testing.T, h harness)) {
	t.Helper()
	for _, s := range []side{ourServer, ourClient} {
		h := harness{side: s, mode: m}
		t.Run(s.String(), func(t *testing.T) { fn(t, h) })
	}
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
	if cfg.serve == nil {
		cfg.serve = echo
	}
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, &ws.AcceptOptions{Compression: comp, ReadLimit: cfg.readLimit, PingInterval: cfg.pingInterval, PongTimeout: cfg.pongTimeout})
		if err != nil {
			acceptErr <- err
			return
		}
		conns <- c
		runServe(ctx, c, cfg.serve, p.done)
	}))
	t.Cleanup(srv.Close)

	offer := "permessage-deflate; client_max_window_bits"
	if cfg.offer != nil {
		offer = *cfg.offer
	}
	nc, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), ioTimeout)
	if err != nil {
		cancel()
		t.Fatalf("dial: %v", err)
	}
	p.peer = &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc), client: true}
	resp, err := p.peer.clientHandshake("/", offer, nil)
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
	if cfg.serve == nil {
		cfg.serve = echo
	}
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
		peer := &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc)}
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

// rawPeer is the hand-written end of a connection.
type rawPeer struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	client  bool        // masks what it sends; expects unmasked frames
	deflate *rawDeflate // nil unless permessage-deflate was negotiated
	chop    bool        // write one byte per Write call
	timeout time.Duration
}

func (p *rawPeer) deadline() time.Time {
	d := p.timeout
	if d == 0 {
		d = ioTimeout
	}
	return time.Now().Add(d)
}

// clientHandshake sends an opening handshake and reads the response.
func (p *rawPeer) clientHandshake(path, offer string, extra http.Header) (*http.Response, error) {
	var kb [16]byte
	rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, p.nc.RemoteAddr())
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	if offer != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", offer)
	}
	for k, vs := range extra {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	p.nc.SetDeadline(p.deadline())
	defer p.nc.SetDeadline(time.Time{})
	if _, err := p.nc.Write(b.Bytes()); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(p.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := checkUpgradeResponse(resp, key); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// checkUpgradeResponse applies RFC 6455 section 4.1's client checks.
func checkUpgradeResponse(resp *http.Response, key string) error {
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("Upgrade: %q", resp.Header.Get("Upgrade"))
	}
	if !headerHas(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("Connection: %q", resp.Header.Values("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(key); got != want {
		return fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return nil
}

// headerHas reports whether a comma-separated header has token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serverHandshake reads an opening handshake (checking it the way RFC 6455
// section 4.2.1 requires), answers 101 with the extension response chosen
// by respond, and returns the request and negotiated parameters.
func (p *rawPeer) serverHandshake(t testing.TB, respond func(testing.TB, []extension) string) (*http.Request, *pmdParams, error) {
	p.nc.SetDeadline(p.deadline())
	defer p.nc.SetDeadline(time.Time{})
	req, err := http.ReadRequest(p.br)
	if err != nil {
		return nil, nil, err
	}
	if req.Method != http.MethodGet || !req.ProtoAtLeast(1, 1) {
		return req, nil, fmt.Errorf("request line %s %s", req.Method, req.Proto)
	}
	if !headerHas(req.Header, "Upgrade", "websocket") || !headerHas(req.Header, "Connection", "upgrade") {
		return req, nil, fmt.Errorf("Upgrade %q Connection %q", req.Header.Values("Upgrade"), req.Header.Values("Connection"))
	}
	if req.Host == "" {
		return req, nil, errors.New("no Host")
	}
	if v := req.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return req, nil, fmt.Errorf("Sec-WebSocket-Version %q", v)
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if kb, err := base64.StdEncoding.DecodeString(key); err != nil || len(kb) != 16 {
		return req, nil, fmt.Errorf("Sec-WebSocket-Key %q", key)
	}
	ext := respond(t, pmdOffers(req.Header))
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", acceptFor(key))
	if ext != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", ext)
	}
	b.WriteString("\r\n")
	if _, err := p.nc.Write(b.Bytes()); err != nil {
		return req, nil, err
	}
	var neg *pmdParams
	if es := parseExtensions([]string{ext}); len(es) == 1 && es[0].name == "permessage-deflate" {
		n, err := parsePMD(es[0], true)
		if err != nil {
			return req, nil, fmt.Errorf("test bug: response %q: %v", ext, err)
		}
		neg = &n
	}
	return req, neg, nil
}

// write sends b, one byte per Write call when chop is set.
func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	p.nc.SetWriteDeadline(p.deadline())
	if !p.chop {
		if _, err := p.nc.Write(b); err != nil {
			p.t.Fatalf("raw write: %v", err)
		}
		return
	}
	for i := range b {
		if _, err := p.nc.Write(b[i : i+1]); err != nil {
			p.t.Fatalf("raw write of byte %d: %v", i, err)
		}
	}
}

// writeFrame sends f, masked when this peer is the client.
func (p *rawPeer) writeFrame(f frame) {
	p.t.Helper()
	p.write(appendFrame(nil, f, p.client))
}

// writeFrames sends fs in one write (or chopped).
func (p *rawPeer) writeFrames(fs ...frame) {
	p.t.Helper()
	var b []byte
	for _, f := range fs {
		b = appendFrame(b, f, p.client)
	}
	p.write(b)
}

// readFrame reads a frame from our side and checks its masking: a client
// must mask every frame and a server must not (RFC 6455 section 5.1).
func (p *rawPeer) readFrame() frame {
	p.t.Helper()
	f, err := p.tryReadFrame()
	if err != nil {
		p.t.Fatalf("reading frame from our %s: %v", p.ourRole(), err)
	}
	return f
}

func (p *rawPeer) ourRole() string {
	if p.client {
		return "server"
	}
	return "client"
}

func (p *rawPeer) tryReadFrame() (frame, error) {
	p.nc.SetReadDeadline(p.deadline())
	f, err := readFrame(p.br)
	if err != nil {
		return f, err
	}
	if f.masked == p.client {
		return f, fmt.Errorf("%v: masked=%v from our %s", f, f.masked, p.ourRole())
	}
	return f, nil
}

// message is a data message as sent or received by the raw peer.
type message struct {
	op      byte
	payload []byte
}

// sendOpts shape how sendMessage frames a message.
type sendOpts struct {
	fragments  int  // number of frames (>= 1)
	uncompress bool // never set RSV1 even if negotiated
}

// sendMessage sends a data message, compressed when negotiated (and
// possible within the window), split into o.fragments frames.
func (p *rawPeer) sendMessage(op byte, payload []byte, o sendOpts) {
	p.t.Helper()
	var rsv byte
	body := payload
	if p.deflate != nil && !o.uncompress && p.deflate.canCompress(payload) {
		body = p.deflate.compress(payload)
		rsv = bitRSV1
	}
	n := max(o.fragments, 1)
	var fs []frame
	for i := range n {
		lo, hi := len(body)*i/n, len(body)*(i+1)/n
		f := frame{fin: i == n-1, op: opCont, payload: body[lo:hi]}
		if i == 0 {
			f.op, f.rsv = op, rsv
		}
		fs = append(fs, f)
	}
	p.writeFrames(fs...)
}

// readMessage reads one data message from our side, checking the framing
// rules on the way: no RSV bits except RSV1 on a first frame when deflate is
// negotiated, continuation only inside a message, valid UTF-8 text. A close
// or any control frame fails the test.
func (p *rawPeer) readMessage() message {
	p.t.Helper()
	m, err := p.tryReadMessage()
	if err != nil {
		p.t.Fatalf("reading message from our %s: %v", p.ourRole(), err)
	}
	return m
}

func (p *rawPeer) tryReadMessage() (message, error) {
	var m message
	var compressed bool
	for {
		f, err := p.tryReadFrame()
		if err != nil {
			return m, err
		}
		if f.op >= 0x8 {
			if f.op == opClose {
				code, reason, _ := parseClose(f.payload)
				return m, fmt.Errorf("unexpected close %d %q", code, reason)
			}
			return m, fmt.Errorf("unexpected control frame %v", f)
		}
		first := m.op == 0
		switch {
		case first && f.op == opCont:
			return m, fmt.Errorf("continuation frame without a message")
		case !first && f.op != opCont:
			return m, fmt.Errorf("%v inside an unfinished message", f)
		}
		if f.rsv&^bitRSV1 != 0 || (f.rsv != 0 && (!first || p.deflate == nil)) {
			return m, fmt.Errorf("reserved bits %#x on %v (first=%v, deflate=%v)", f.rsv, f, first, p.deflate != nil)
		}
		if first {
			m.op = f.op
			compressed = f.rsv&bitRSV1 != 0
		}
		m.payload = append(m.payload, f.payload...)
		if f.fin {
			break
		}
	}
	if compressed {
		out, err := p.deflate.decompress(m.payload, maxTestFrame)
		if err != nil {
			return m, err
		}
		m.payload = out
	}
	if m.payload == nil {
		m.payload = []byte{}
	}
	if m.op == opText && !utf8.Valid(m.payload) {
		return m, errors.New("text message from our side is not valid UTF-8")
	}
	return m, nil
}

// expectClose reads the next frame, which must be a close frame, and checks
// its code (-1 for an empty body). Anything else first (an echo, a pong)
// means our side accepted what it should have refused. It returns the
// reason.
func (p *rawPeer) expectClose(want int) string {
	p.t.Helper()
	{
		f, err := p.tryReadFrame()
		if err != nil {
			p.t.Fatalf("waiting for close %d from our %s: %v", want, p.ourRole(), err)
		}
		if f.op != opClose {
			p.t.Fatalf("waiting for close %d, our %s sent %v %.40q", want, p.ourRole(), f, f.payload)
		}
		if !f.fin || f.rsv != 0 {
			p.t.Errorf("close frame %v: must be FIN without RSV bits", f)
		}
		code, reason, err := parseClose(f.payload)
		if err != nil {
			p.t.Fatalf("close frame from our %s: %v", p.ourRole(), err)
		}
		if code != want {
			p.t.Fatalf("our %s sent close code %d (%q), want %d", p.ourRole(), code, reason, want)
		}
		if !utf8.ValidString(reason) {
			p.t.Errorf("close reason %q is not UTF-8", reason)
		}
		return reason
	}
}

// finishClose completes a close handshake our side started: it answers with
// a close frame and checks the TCP connection ends. Our server must close
// TCP itself (RFC 6455 section 7.1.1); facing our client, the raw server
// closes it.
func (p *rawPeer) finishClose(code int) {
	p.t.Helper()
	p.nc.SetWriteDeadline(p.deadline())
	p.nc.Write(appendFrame(nil, frame{fin: true, op: opClose, payload: closePayload(code, "")}, p.client))
	if p.client {
		p.expectEOF()
	} else {
		p.nc.Close()
	}
}

// expectEOF checks that our side closes the TCP connection: nothing but EOF
// (or a reset) may follow.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	p.nc.SetReadDeadline(p.deadline())
	var buf [512]byte
	n, err := io.ReadFull(p.br, buf[:])
	if n > 0 {
		p.t.Errorf("%d unexpected bytes after the close frame: %x", n, buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.t.Fatalf("our %s did not close the TCP connection within %v after the close handshake", p.ourRole(), ioTimeout)
	}
	// Our side may only have half-closed and be waiting for our FIN, as a
	// browser would send it.
	p.nc.Close()
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
