package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/auth"
	brokermem "github.com/duplexhq/duplex/broker/memory"
	"github.com/duplexhq/duplex/chat"
	presencemem "github.com/duplexhq/duplex/presence/memory"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/store/sqlite"
	"github.com/duplexhq/duplex/ws"
)

var testSecret = []byte("test-secret-test-secret-test-secret!")

const testAdminKey = "test-admin-key"

// envOpts varies the server under test.
type envOpts struct {
	dev         bool
	sendQueue   int
	chat        chat.Config
	tls         *tls.Config
	origins     []string
	compression ws.CompressionOptions
	// pingInterval and pongTimeout override the heartbeat defaults.
	pingInterval, pongTimeout time.Duration
	// writeTimeout overrides DefaultWriteTimeout.
	writeTimeout time.Duration
	// transports and ssePing set Config.Transports and SSEPingInterval.
	transports []string
	ssePing    time.Duration
}

// testEnv is a real server (sqlite in a temp dir, in-memory broker and
// presence, the chat service) served by Serve on a loopback listener.
type testEnv struct {
	t      testing.TB
	srv    *Server
	st     *sqlite.Store
	base   string // http(s)://host:port
	wsBase string // ws(s)://host:port
	client *http.Client
	tlsCfg *tls.Config // client side, for wss

	cancel   context.CancelFunc
	served   chan error
	stopOnce sync.Once
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t testing.TB, o envOpts) *testEnv {
	t.Helper()
	log := testLogger(t)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "duplex.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	br := brokermem.New(brokermem.Options{Logger: log})
	pr := presencemem.New(presencemem.Options{})
	metrics := NewMetrics()
	ccfg := o.chat
	ccfg.Metrics = metrics
	if ccfg.Namespaces == nil {
		ccfg.Namespaces = map[string]chat.Namespace{"": {Subscribe: true, Publish: true, History: 10}}
	}
	svc, err := chat.New(ccfg, st, br, pr, log)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Secret: testSecret, AdminKey: testAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Chat:            svc,
		Auth:            a,
		Ready:           st.Ping,
		Metrics:         metrics,
		Logger:          log,
		SendQueue:       o.sendQueue,
		OriginPatterns:  o.origins,
		DrainTimeout:    2 * time.Second,
		WriteTimeout:    o.writeTimeout,
		Compression:     o.compression,
		PingInterval:    o.pingInterval,
		PongTimeout:     o.pongTimeout,
		Transports:      o.transports,
		SSEPingInterval: o.ssePing,
	}
	if o.dev {
		cfg.DevMint = func(u string) (string, error) { return auth.Mint(testSecret, u, time.Hour, time.Now()) }
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &testEnv{t: t, srv: srv, st: st, cancel: cancel, served: make(chan error, 1), client: &http.Client{Timeout: 10 * time.Second}}
	scheme := "http"
	if o.tls != nil {
		scheme = "https"
	}
	e.base = scheme + "://" + ln.Addr().String()
	e.wsBase = strings.Replace(e.base, "http", "ws", 1)
	go func() { e.served <- srv.Serve(ctx, ln, o.tls, 5*time.Second) }()
	t.Cleanup(func() {
		e.stop()
		svc.Close()
		br.Close()
		pr.Close()
		st.Close()
	})
	return e
}

// stop shuts the server down gracefully and returns Serve's error.
func (e *testEnv) stop() error {
	var err error
	e.stopOnce.Do(func() {
		e.cancel()
		select {
		case err = <-e.served:
		case <-time.After(15 * time.Second):
			err = errors.New("Serve did not return")
		}
	})
	return err
}

func (e *testEnv) token(user string) string {
	tok, err := auth.Mint(testSecret, user, time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// call makes an API request as user ("" for none, "admin" with the admin
// key) and decodes a JSON answer into out (when non-nil).
func (e *testEnv) call(method, path, user string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				e.t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	switch user {
	case "":
	case "admin":
		req.Header.Set(auth.AdminKeyHeader, testAdminKey)
	default:
		req.Header.Set("Authorization", "Bearer "+e.token(user))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// apiErr is the JSON error body.
type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// frame is any duplex.v1 server frame, decoded loosely.
type frame struct {
	Type          string                  `json:"type"`
	ID            string                  `json:"id"`
	Conv          string                  `json:"conv"`
	Seq           int64                   `json:"seq"`
	Sender        string                  `json:"sender"`
	ClientMsgID   string                  `json:"client_msg_id"`
	Body          string                  `json:"body"`
	Code          string                  `json:"code"`
	Message       string                  `json:"message"`
	More          bool                    `json:"more"`
	Duplicate     bool                    `json:"duplicate"`
	User          string                  `json:"user"`
	Session       string                  `json:"session"`
	Data          json.RawMessage         `json:"data"`
	Conversations []protocol.Conversation `json:"conversations"`
}

// testClient is a WebSocket client whose reader goroutine decodes frames
// into a channel; closed is set when the connection ended.
type testClient struct {
	t      testing.TB
	c      *ws.Conn
	user   string
	frames chan frame
	end    chan error // receives the read error once
	nextID int
}

func (e *testEnv) dialOpts(user string) *ws.DialOptions {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+e.token(user))
	return &ws.DialOptions{Header: h, Subprotocols: []string{protocol.Subprotocol}, TLSConfig: e.tlsCfg}
}

// dial connects user and waits for the welcome frame.
func (e *testEnv) dial(user string) (*testClient, frame) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, e.wsBase+"/ws", e.dialOpts(user))
	if err != nil {
		e.t.Fatalf("dial %s: %v", user, err)
	}
	tc := startClient(e.t, c, user)
	w := tc.waitType("welcome")
	return tc, w
}

func startClient(t testing.TB, c *ws.Conn, user string) *testClient {
	tc := &testClient{t: t, c: c, user: user, frames: make(chan frame, 1<<16), end: make(chan error, 1)}
	go func() {
		defer close(tc.frames)
		for {
			_, p, err := c.Read(context.Background())
			if err != nil {
				tc.end <- err
				return
			}
			var f frame
			if err := json.Unmarshal(p, &f); err != nil {
				tc.end <- fmt.Errorf("bad frame %q: %w", p, err)
				return
			}
			tc.frames <- f
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return tc
}

// next returns the next frame, failing the test after a timeout or when
// the connection ended.
func (c *testClient) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection ended: %v", c.user, <-c.end)
		}
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no frame within 10s", c.user)
	}
	panic("unreachable")
}

// waitFor skips frames until one satisfies ok.
func (c *testClient) waitFor(what string, ok func(frame) bool) frame {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, open := <-c.frames:
			if !open {
				c.t.Fatalf("%s: connection ended waiting for %s: %v", c.user, what, <-c.end)
			}
			if ok(f) {
				return f
			}
		case <-deadline:
			c.t.Fatalf("%s: no %s within 10s", c.user, what)
		}
	}
}

func (c *testClient) waitType(typ string) frame {
	c.t.Helper()
	return c.waitFor(typ, func(f frame) bool { return f.Type == typ })
}

// reply waits for the reply (ack, result, sync.end or error) to request id.
func (c *testClient) reply(id string) frame {
	c.t.Helper()
	return c.waitFor("reply to "+id, func(f frame) bool { return f.ID == id })
}

// request sends req (a map without "id") and returns the id given to it.
func (c *testClient) request(req map[string]any) string {
	c.t.Helper()
	c.nextID++
	id := fmt.Sprintf("r%d", c.nextID)
	req["id"] = id
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.c.Write(context.Background(), ws.MessageText, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.user, err)
	}
	return id
}

// closed waits for the connection to end and returns the close code.
func (c *testClient) closed() ws.StatusCode {
	c.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case _, open := <-c.frames:
			if !open {
				return ws.CloseStatus(<-c.end)
			}
		case <-deadline:
			c.t.Fatalf("%s: connection still open after 15s", c.user)
		}
	}
}
