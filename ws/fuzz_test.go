package ws_test

// Fuzz targets for every parser of network input in package ws: frames in
// both roles, the opening handshake and UTF-8 validation. Each runs the real
// Conn over an in-memory net.Conn, so an input is a complete conversation
// and a run is deterministic. Beyond "no panic, no hang", each target checks
// what our side wrote back.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/duplexhq/duplex/ws"
)

// memConn is an in-memory net.Conn: reads come from in (then EOF), writes
// are kept in out. respond, if set, produces in from the first complete
// HTTP head written (for a client handshake); reads wait for it.
type memConn struct {
	mu      sync.Mutex
	in      []byte
	out     bytes.Buffer
	ready   chan struct{} // closed when in is set
	closed  chan struct{}
	once    sync.Once
	respond func(head []byte) []byte
}

func newMemConn(in []byte) *memConn {
	c := &memConn{in: in, ready: make(chan struct{}), closed: make(chan struct{})}
	close(c.ready)
	return c
}

func newMemConnResponder(respond func(head []byte) []byte) *memConn {
	return &memConn{ready: make(chan struct{}), closed: make(chan struct{}), respond: respond}
}

func (c *memConn) Read(p []byte) (int, error) {
	select {
	case <-c.ready:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.Write(p)
	if c.respond != nil {
		if i := bytes.Index(c.out.Bytes(), []byte("\r\n\r\n")); i >= 0 {
			c.in = c.respond(c.out.Bytes()[:i+4])
			c.respond = nil
			close(c.ready)
		}
	}
	return len(p), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// written returns everything written so far.
func (c *memConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// fuzzLimit bounds messages so inputs cannot make the target allocate much.
const fuzzLimit = 1 << 16

// fuzzRequest is a valid opening handshake, offering deflate if asked.
func fuzzRequest(deflate bool) []byte {
	r := "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + rfcKey + "\r\nSec-WebSocket-Version: 13\r\n"
	if deflate {
		r += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	return []byte(r + "\r\n")
}

// fuzzSeedFrames are conversations worth starting from, unmasked; each
// target masks them as its role requires.
func fuzzSeedFrames() [][]frame {
	return [][]frame{
		{{fin: true, op: opText, payload: []byte("hello")}},
		{{fin: true, op: opBinary, payload: bytes.Repeat([]byte{0xAB}, 300)}},
		{{op: opText, payload: []byte("he")}, {fin: true, op: opPing, payload: []byte("p")}, {fin: true, op: opCont, payload: []byte("llo")}},
		{{fin: true, op: opPing, payload: []byte("ping")}, {fin: true, op: opPong}},
		{{fin: true, op: opClose, payload: closePayload(1000, "bye")}},
		{{fin: true, op: opClose, payload: []byte{3}}},
		{{fin: true, op: opText, payload: []byte("\xed\xa0\x80")}},
		{{fin: true, op: 0x3}},
		{{fin: true, op: opCont, payload: []byte("x")}},
		{{fin: true, rsv: bitRSV1, op: opText, payload: []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}}, // "Hello", RFC 7692 section 7.2.3.1
		{{rsv: bitRSV1, op: opText, payload: []byte{0xf2, 0x48, 0xcd}}, {fin: true, op: opCont, payload: []byte{0xc9, 0xc9, 0x07, 0x00}}},
		{{fin: true, rsv: bitRSV1 | bitRSV2, op: opBinary}},
		{{fin: true, op: opPing, payload: make([]byte, 126)}},
	}
}

// encodeFrames encodes a conversation, masked with a fixed key when mask.
func encodeFrames(fs []frame, mask bool) []byte {
	var b []byte
	for _, f := range fs {
		enc := appendFrame(nil, f, false)
		if mask {
			enc = maskFixed(enc)
		}
		b = append(b, enc...)
	}
	return b
}

// maskFixed turns an unmasked encoded frame into a masked one with key
// 01 02 03 04 (deterministic seeds).
func maskFixed(enc []byte) []byte {
	hdr := 2
	switch enc[1] & 0x7F {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	key := []byte{1, 2, 3, 4}
	out := append(bytes.Clone(enc[:hdr]), key...)
	out[1] |= 0x80
	for i, c := range enc[hdr:] {
		out = append(out, c^key[i&3])
	}
	return out
}

// readAll reads messages until an error (or a bound on the count), checking
// what Read promises: text is valid UTF-8, sizes respect the limit, and a
// failure names its close code consistently.
func readAll(t *testing.T, c *ws.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 1000 {
		typ, p, err := c.Read(ctx)
		if err != nil {
			checkFailure(t, err)
			return err
		}
		if typ != ws.MessageText && typ != ws.MessageBinary {
			t.Fatalf("Read returned message type %v", typ)
		}
		if typ == ws.MessageText && !utf8.Valid(p) {
			t.Fatalf("Read returned invalid UTF-8 text %q", p)
		}
		if len(p) > fuzzLimit {
			t.Fatalf("Read returned %d bytes over the %d limit", len(p), fuzzLimit)
		}
	}
	return nil
}

// checkFailure checks that sentinel and close code agree.
func checkFailure(t *testing.T, err error) {
	code := ws.CloseStatus(err)
	for _, c := range []struct {
		sentinel error
		code     ws.StatusCode
	}{
		{ws.ErrProtocol, ws.StatusProtocolError},
		{ws.ErrInvalidUTF8, ws.StatusInvalidPayload},
		{ws.ErrMessageTooBig, ws.StatusMessageTooBig},
	} {
		if errors.Is(err, c.sentinel) && code != c.code {
			t.Fatalf("error %v wraps %v but carries close code %d", err, c.sentinel, code)
		}
	}
}

// checkWritten parses what our side sent after its handshake head: well-
// formed frames, masked exactly when we are the client, control frames
// within 125 bytes, close codes that may be sent.
func checkWritten(t *testing.T, out []byte, client bool, readErr error) {
	i := bytes.Index(out, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no handshake head in output %q", out)
	}
	br := bufio.NewReader(bytes.NewReader(out[i+4:]))
	lastClose := -2 // none
	for {
		f, err := readFrame(br)
		if err == io.EOF {
			checkCloseSent(t, readErr, lastClose)
			return
		}
		if err != nil {
			t.Fatalf("our side wrote a malformed frame: %v", err)
		}
		if f.masked != client {
			t.Fatalf("our side (client=%v) wrote %v", client, f)
		}
		if f.op >= 0x8 && (len(f.payload) > 125 || !f.fin) {
			t.Fatalf("our side wrote control frame %v", f)
		}
		if f.op == opClose {
			code, reason, err := parseClose(f.payload)
			if err != nil || (code != -1 && !validWireCode(code)) || !utf8.ValidString(reason) {
				t.Fatalf("our side wrote close code %d %q (%v)", code, reason, err)
			}
			if lastClose != -2 {
				t.Fatalf("our side wrote a second close frame")
			}
			lastClose = code
		}
	}
}

// checkCloseSent checks that the close code Read reported is the one our
// side sent: the code it failed with, or the echo of the peer's (an empty
// close, 1005, is answered empty or with 1000). sent is -2 when no close
// frame was written, -1 for an empty one.
func checkCloseSent(t *testing.T, readErr error, sent int) {
	code := int(ws.CloseStatus(readErr))
	switch {
	case code == -1, code == int(ws.StatusAbnormalClosure):
		return // the connection ended without a close handshake (EOF)
	case sent == -2:
		t.Fatalf("Read failed with close code %d (%v) but no close frame was sent", code, readErr)
	case code == int(ws.StatusNoStatusRcvd):
		if sent != -1 && sent != 1000 {
			t.Fatalf("empty close answered with %d", sent)
		}
	case sent != code:
		t.Fatalf("Read reported close code %d (%v) but %d was sent", code, readErr, sent)
	}
}

// validWireCode reports whether a close code may be sent (RFC 6455 7.4).
func validWireCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func FuzzFrameReader(f *testing.F) {
	for _, fs := range fuzzSeedFrames() {
		f.Add(encodeFrames(fs, true), false)
		f.Add(encodeFrames(fs, true), true)
	}
	f.Add(encodeFrames(fuzzSeedFrames()[0], false), false) // unmasked to a server
	f.Fuzz(func(t *testing.T, data []byte, deflate bool) {
		nc := newMemConn(append(fuzzRequest(deflate), data...))
		opts := &ws.AcceptOptions{ReadLimit: fuzzLimit, HandshakeTimeout: time.Second}
		if deflate {
			opts.Compression.Mode = ws.CompressionContextTakeover
		}
		c, _, err := ws.AcceptConn(context.Background(), nc, opts)
		if err != nil {
			t.Fatalf("AcceptConn refused the valid request: %v", err)
		}
		defer c.CloseNow()
		err = readAll(t, c)
		c.CloseNow()
		checkWritten(t, nc.written(), false, err)
	})
}

// dialMem dials our client over a memConn whose server answers with a 101
// (accepting deflate when asked and offered) followed by data.
func dialMem(t *testing.T, data []byte, deflate bool) (*ws.Conn, *memConn) {
	nc := newMemConnResponder(func(head []byte) []byte {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			return []byte("HTTP/1.1 400 Bad Request\r\n\r\n")
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			acceptFor(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if deflate && strings.Contains(req.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
			resp += "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		}
		return append([]byte(resp+"\r\n"), data...)
	})
	opts := &ws.DialOptions{
		ReadLimit:        fuzzLimit,
		HandshakeTimeout: time.Second,
		NetDialContext: func(context.Context, string, string) (net.Conn, error) {
			return nc, nil
		},
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
	}
	if deflate {
		opts.Compression.Mode = ws.CompressionContextTakeover
	}
	c, _, err := ws.Dial(context.Background(), "ws://example.com/ws", opts)
	if err != nil {
		t.Fatalf("Dial refused a valid answer: %v", err)
	}
	return c, nc
}

func FuzzClientFrameReader(f *testing.F) {
	for _, fs := range fuzzSeedFrames() {
		f.Add(encodeFrames(fs, false), false)
		f.Add(encodeFrames(fs, false), true)
	}
	f.Add(encodeFrames(fuzzSeedFrames()[0], true), false) // masked to a client
	f.Fuzz(func(t *testing.T, data []byte, deflate bool) {
		c, nc := dialMem(t, data, deflate)
		defer c.CloseNow()
		err := readAll(t, c)
		c.CloseNow()
		checkWritten(t, nc.written(), true, err)
	})
}

func FuzzHandshake(f *testing.F) {
	good := string(fuzzRequest(true))
	f.Add([]byte(good))
	f.Add([]byte(strings.Replace(good, "13", "8", 1)))
	f.Add([]byte(strings.Replace(good, "GET", "POST", 1)))
	f.Add([]byte(strings.Replace(good, "Upgrade: websocket\r\n", "", 1)))
	f.Add([]byte(strings.Replace(good, "client_max_window_bits", "server_max_window_bits=9; client_max_window_bits=10, permessage-deflate", 1)))
	f.Add([]byte(strings.Replace(good, "client_max_window_bits", "foo; foo", 1)))
	f.Add([]byte(strings.Replace(good, "Host: example.com\r\n", "Origin: http://evil.example\r\nHost: example.com\r\nSec-WebSocket-Protocol: a, b\r\n", 1)))
	f.Add([]byte(good[:40]))
	f.Add([]byte("GET / HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", 2000) + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nc := newMemConn(data)
		c, req, err := ws.AcceptConn(context.Background(), nc, &ws.AcceptOptions{
			Subprotocols:     []string{"a", "b"},
			Compression:      ws.CompressionOptions{Mode: ws.CompressionContextTakeover},
			HandshakeTimeout: time.Second,
		})
		out := nc.written()
		if err == nil {
			defer c.CloseNow()
			resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
			if rerr != nil || resp.StatusCode != 101 {
				t.Fatalf("AcceptConn succeeded but wrote %q (%v)", out, rerr)
			}
			if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(req.Header.Get("Sec-WebSocket-Key")); got != want {
				t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
			}
			if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" && p != "a" && p != "b" {
				t.Fatalf("selected subprotocol %q", p)
			}
			if ext := parseExtensions(resp.Header.Values("Sec-WebSocket-Extensions")); len(ext) > 0 {
				if len(ext) != 1 || ext[0].name != "permessage-deflate" {
					t.Fatalf("answered extensions %v", ext)
				}
				if _, err := parsePMD(ext[0], true); err != nil {
					t.Fatalf("answered %q: %v", ext[0], err)
				}
			}
			return
		}
		if len(out) == 0 {
			return // nothing to answer, e.g. the request never completed
		}
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if rerr != nil || resp.StatusCode < 400 {
			t.Fatalf("AcceptConn failed (%v) and wrote %q", err, out)
		}
	})
}

func FuzzUTF8(f *testing.F) {
	for _, b := range badUTF8 {
		f.Add([]byte(badMessage(b.seq, b.atEnd)), uint8(1), false)
	}
	for _, s := range []string{"", "a", "é", "€", "😀", "\U0010FFFF", "aé€😀", "\xed\x9f\xbf", "\xee\x80\x80"} {
		f.Add([]byte(s), uint8(2), false)
		f.Add([]byte(s), uint8(3), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8, deflate bool) {
		if len(data) > fuzzLimit {
			return
		}
		var fs []frame
		body, rsv := data, byte(0)
		if deflate {
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
			fw.Write(data)
			fw.Flush()
			body, rsv = bytes.TrimSuffix(buf.Bytes(), deflateTail), bitRSV1
		}
		cut := 0
		if len(body) > 0 {
			cut = int(split) % (len(body) + 1)
		}
		fs = append(fs, frame{rsv: rsv, op: opText, payload: body[:cut]}, frame{fin: true, op: opCont, payload: body[cut:]})
		nc := newMemConn(append(fuzzRequest(deflate), encodeFrames(fs, true)...))
		opts := &ws.AcceptOptions{ReadLimit: fuzzLimit, HandshakeTimeout: time.Second}
		if deflate {
			opts.Compression.Mode = ws.CompressionContextTakeover
		}
		c, _, err := ws.AcceptConn(context.Background(), nc, opts)
		if err != nil {
			t.Fatalf("AcceptConn: %v", err)
		}
		defer c.CloseNow()
		typ, p, err := c.Read(context.Background())
		valid := utf8.Valid(data)
		switch {
		case valid && err != nil:
			t.Fatalf("valid text %q refused: %v", data, err)
		case valid && (typ != ws.MessageText || !bytes.Equal(p, data)):
			t.Fatalf("valid text %q read as %v %q", data, typ, p)
		case !valid && err == nil:
			t.Fatalf("invalid text %q accepted", data)
		case !valid && (ws.CloseStatus(err) != ws.StatusInvalidPayload || !errors.Is(err, ws.ErrInvalidUTF8)):
			t.Fatalf("invalid text %q: %v (close status %d), want 1007 and ErrInvalidUTF8", data, err, ws.CloseStatus(err))
		}
	})
}
