package ws

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptConn is a net.Conn whose peer is a script: reads return in (then
// EOF), writes are collected. If onFirstRead is set, it may rewrite in once
// the first write (the request) has been seen.
type scriptConn struct {
	mu          sync.Mutex
	in          *bytes.Reader
	out         bytes.Buffer
	onFirstRead func(written []byte) []byte
	closed      bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onFirstRead != nil {
		c.in = bytes.NewReader(c.onFirstRead(c.out.Bytes()))
		c.onFirstRead = nil
	}
	return c.in.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzHandshakeRequest feeds arbitrary bytes to the server handshake: it
// must never panic, must answer 101 only to a valid request (with the right
// Sec-WebSocket-Accept), and must answer every refusal with a well-formed
// HTTP error.
func FuzzHandshakeRequest(f *testing.F) {
	valid := "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, s := range []string{
		valid + "\r\n",
		valid + "Sec-WebSocket-Protocol: b, a\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
		valid + "Origin: http://example.com\r\n\r\n\x81\x85\x01\x02\x03\x04abcde",
		valid + "Origin: null\r\n\r\n",
		valid + "Content-Length: 2\r\n\r\nhi",
		valid + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		strings.Replace(valid, "13", "8", 1) + "\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"\x16\x03\x01\x00\x05hello",
		"GET / HTTP/1.1\r\nHost: a\r\n X: folded\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	opts := &AcceptOptions{
		Subprotocols:   []string{"a", "b"},
		OriginPatterns: []string{"*.example.com"},
		Compression:    CompressionOptions{Mode: CompressionContextTakeover},
		MaxHeaderBytes: 2048,
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		nc := &scriptConn{in: bytes.NewReader(raw)}
		br, cfg, req, err := acceptConn(context.Background(), nc, opts)
		out := nc.out.Bytes()
		if len(out) == 0 {
			if err == nil || errors.Is(err, ErrBadHandshake) || errors.Is(err, ErrOriginRefused) {
				t.Fatalf("no response, error %v", err)
			}
			return
		}
		resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if perr != nil {
			t.Fatalf("unparsable response %q: %v", out, perr)
		}
		if err != nil {
			if !nc.closed || !slices.Contains([]int{400, 403, 405, 426, 431}, resp.StatusCode) {
				t.Fatalf("refusal %v answered %q (closed %v)", err, out, nc.closed)
			}
			body, _ := io.ReadAll(resp.Body)
			if len(body) == 0 || int64(len(body)) != resp.ContentLength {
				t.Fatalf("refusal body %q, Content-Length %d", body, resp.ContentLength)
			}
			return
		}
		key := req.Header.Get("Sec-WebSocket-Key")
		if resp.StatusCode != 101 || !validKey(key) || req.Method != "GET" ||
			resp.Header.Get("Sec-WebSocket-Accept") != computeAccept(key) {
			t.Fatalf("accepted %q with %q", raw, out)
		}
		if p := cfg.subprotocol; p != "" && (!slices.Contains(opts.Subprotocols, p) || resp.Header.Get("Sec-WebSocket-Protocol") != p) {
			t.Fatalf("subprotocol %q, header %q", p, resp.Header.Get("Sec-WebSocket-Protocol"))
		}
		if (cfg.deflate != nil) != (resp.Header.Get("Sec-WebSocket-Extensions") != "") {
			t.Fatalf("deflate %v, header %q", cfg.deflate, resp.Header.Get("Sec-WebSocket-Extensions"))
		}
		// Whatever followed the head is handed on intact.
		if br != nil {
			rest, _ := io.ReadAll(br)
			if !bytes.HasSuffix(raw, rest) || len(rest) == 0 {
				t.Fatalf("handed-over bytes %q are not the tail of %q", rest, raw)
			}
		}
	})
}

// FuzzHandshakeResponse feeds arbitrary server responses to the client
// handshake. "ACCEPT" in the input is replaced by the right
// Sec-WebSocket-Accept for the key the client sent, so the fuzzer can reach
// the checks past it. Dial must never panic and must succeed only on a
// valid 101.
func FuzzHandshakeResponse(f *testing.F) {
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\n"
	for _, s := range []string{
		ok + "\r\n",
		ok + "Sec-WebSocket-Protocol: b\r\n\r\n",
		ok + "Sec-WebSocket-Protocol: c\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n\r\n",
		ok + "\r\n\x81\x02hi",
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 101\r\n\r\n",
		"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\n\r\n",
		"garbage",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var nc *scriptConn
		var accept string
		nc = &scriptConn{onFirstRead: func(written []byte) []byte {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(written)))
			if err != nil {
				t.Fatalf("client wrote an unparsable request %q: %v", written, err)
			}
			accept = computeAccept(req.Header.Get("Sec-WebSocket-Key"))
			return bytes.ReplaceAll(raw, []byte("ACCEPT"), []byte(accept))
		}}
		opts := &DialOptions{
			Proxy:                  direct,
			Subprotocols:           []string{"a", "b"},
			Compression:            CompressionOptions{Mode: CompressionContextTakeover},
			MaxResponseHeaderBytes: 2048,
			NetDialContext: func(context.Context, string, string) (net.Conn, error) {
				return nc, nil
			},
		}
		_, br, cfg, resp, err := clientHandshake(context.Background(), "ws://example.com/", opts)
		if err != nil {
			if !nc.closed {
				t.Fatalf("connection left open after %v", err)
			}
			if resp != nil && resp.StatusCode != 101 {
				if body, _ := io.ReadAll(resp.Body); len(body) > maxErrorBodyBytes {
					t.Fatalf("kept %d bytes of error body", len(body))
				}
			}
			return
		}
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != accept ||
			!tokenListHas(resp.Header, "Upgrade", "websocket") || !tokenListHas(resp.Header, "Connection", "upgrade") {
			t.Fatalf("accepted response %q", raw)
		}
		if p := cfg.subprotocol; p != "" && !slices.Contains(opts.Subprotocols, p) {
			t.Fatalf("accepted unoffered subprotocol %q", p)
		}
		if br != nil && br.Buffered() == 0 {
			t.Fatal("handed over an empty bufio.Reader")
		}
	})
}
