package ws_test

// The raw peer: the hand-written end of a conformance case. It speaks the
// opening handshake and RFC 6455 framing by hand (see
// conformance_wire_test.go), so the test decides every byte our side sees
// and checks every byte it sends.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// rawPeer is the hand-written end of a connection.
type rawPeer struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	client  bool        // masks what it sends; expects unmasked frames
	deflate *rawDeflate // nil unless permessage-deflate was negotiated
	chop    bool        // write one byte per Write call
	early   []byte      // sent in the same write as the handshake
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
func (p *rawPeer) clientHandshake(path, offer string) (*http.Response, error) {
	var kb [16]byte
	rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, p.nc.RemoteAddr())
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	if offer != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Extensions: %s\r\n", offer)
	}
	b.WriteString("\r\n")
	b.Write(p.early)
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
	b.Write(p.early)
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
