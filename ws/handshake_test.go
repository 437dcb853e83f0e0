package ws

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestHandshakeComputeAcceptRFCVector(t *testing.T) {
	// RFC 6455 section 1.3.
	if got, want := computeAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("computeAccept = %q, want %q", got, want)
	}
}

func TestHandshakeValidKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"dGhlIHNhbXBsZSBub25jZQ==", true},
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), true},
		{"", false},
		{base64.StdEncoding.EncodeToString(make([]byte, 15)), false},
		{base64.StdEncoding.EncodeToString(make([]byte, 17)), false},
		{"dGhlIHNhbXBsZSBub25jZQ", false},   // unpadded
		{"dGhlIHNhbXBsZSBub25jZQ=", false},  // half padded
		{"dGhlIHNhbXBsZSBub25jZ!==", false}, // not base64
		{"dGhlIHNhbXBsZSBub25jZQ==\x00", false},
		{base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), false},
	}
	for _, tt := range tests {
		if got := validKey(tt.key); got != tt.want {
			t.Errorf("validKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestHandshakeNewKey(t *testing.T) {
	k1, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	if !validKey(k1) || !validKey(k2) {
		t.Fatalf("newKey returned invalid keys %q, %q", k1, k2)
	}
	if k1 == k2 {
		t.Fatalf("two calls to newKey returned the same key %q", k1)
	}
}

func TestHandshakeTokenList(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		token  string
		has    bool
		list   []string
	}{
		{"single", []string{"Upgrade"}, "upgrade", true, []string{"Upgrade"}},
		{"list", []string{"keep-alive, Upgrade"}, "upgrade", true, []string{"keep-alive", "Upgrade"}},
		{"no spaces", []string{"keep-alive,UPGRADE"}, "upgrade", true, []string{"keep-alive", "UPGRADE"}},
		{"tabs and empties", []string{" ,\tkeep-alive ,, upgrade\t,"}, "upgrade", true, []string{"keep-alive", "upgrade"}},
		{"several headers", []string{"keep-alive", "Upgrade"}, "upgrade", true, []string{"keep-alive", "Upgrade"}},
		{"absent", []string{"keep-alive, close"}, "upgrade", false, []string{"keep-alive", "close"}},
		{"prefix is not a token", []string{"upgraded"}, "upgrade", false, []string{"upgraded"}},
		{"inside a token", []string{"keep-alive upgrade"}, "upgrade", false, []string{"keep-alive upgrade"}},
		{"no header", nil, "upgrade", false, nil},
		{"empty value", []string{""}, "upgrade", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.values != nil {
				h["Connection"] = tt.values
			}
			if got := tokenListHas(h, "Connection", tt.token); got != tt.has {
				t.Errorf("tokenListHas = %v, want %v", got, tt.has)
			}
			if got := tokenList(h, "Connection"); !slices.Equal(got, tt.list) {
				t.Errorf("tokenList = %q, want %q", got, tt.list)
			}
		})
	}
}

func TestHandshakeValidSubprotocol(t *testing.T) {
	for _, s := range []string{"chat", "v2.chat.example.com", "graphql-ws", "a!#$%&'*+-.^_`|~z"} {
		if !validSubprotocol(s) {
			t.Errorf("validSubprotocol(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a,b", "a/b", "ä", "a\x00", "(x)", `"q"`} {
		if validSubprotocol(s) {
			t.Errorf("validSubprotocol(%q) = true", s)
		}
	}
}

func TestHandshakeHeadLimitReader(t *testing.T) {
	lr := &headLimitReader{r: strings.NewReader("0123456789"), n: 4}
	got, err := io.ReadAll(lr)
	if string(got) != "0123" || !errors.Is(err, errHeadTooLarge) {
		t.Fatalf("limited read = %q, %v; want %q, errHeadTooLarge", got, err, "0123")
	}
	lr.n = -1
	got, err = io.ReadAll(lr)
	if string(got) != "456789" || err != nil {
		t.Fatalf("unlimited read = %q, %v; want %q, nil", got, err, "456789")
	}
}

func TestHandshakeErrorUnwrap(t *testing.T) {
	cause := errors.New("boom")
	err := error(&handshakeError{status: 400, reason: "bad thing", kind: ErrBadHandshake, cause: cause})
	if !errors.Is(err, ErrBadHandshake) || !errors.Is(err, cause) || errors.Is(err, ErrOriginRefused) {
		t.Fatalf("unwrap chain of %v is wrong", err)
	}
	if got, want := err.Error(), "ws: bad handshake: bad thing: boom"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// BenchmarkHandshakeServer measures the server side of a handshake on an
// in-memory connection: parsing, checks, deflate negotiation and the 101.
func BenchmarkHandshakeServer(b *testing.B) {
	raw := []byte("GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Origin: https://example.com\r\nSec-WebSocket-Protocol: v1, v2\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
	opts := &AcceptOptions{Subprotocols: []string{"v2"}, Compression: CompressionOptions{Mode: CompressionContextTakeover}}
	b.ReportAllocs()
	for b.Loop() {
		nc := &scriptConn{in: bytes.NewReader(raw)}
		if _, _, _, err := acceptConn(context.Background(), nc, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshakeLoopback measures Dial against Accept on an httptest
// server over loopback TCP, up to (not including) the Conn.
func BenchmarkHandshakeLoopback(b *testing.B) {
	results := make(chan serverResult, 1)
	srv := httptest.NewServer(handshakeHandler(nil, nil, results))
	defer srv.Close()
	u := "ws" + strings.TrimPrefix(srv.URL, "http")
	opts := &DialOptions{Proxy: direct}
	b.ReportAllocs()
	for b.Loop() {
		nc, _, _, _, err := clientHandshake(context.Background(), u, opts)
		if err != nil {
			b.Fatal(err)
		}
		res := <-results
		if res.err != nil {
			b.Fatal(res.err)
		}
		nc.Close()
		res.close()
	}
}
