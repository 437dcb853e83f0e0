package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/chat"
	"github.com/duplexhq/duplex/internal/testcert"
	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	if body := e.get(t, "/healthz"); !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %s", body)
	}
	if body := e.get(t, "/readyz"); !strings.Contains(body, "ready") {
		t.Fatalf("readyz: %s", body)
	}
	if info := e.get(t, "/api/info"); !strings.Contains(info, `"dev":false`) {
		t.Fatalf("info outside dev mode: %s", info)
	}

	conv := e.direct("alice", "bob")
	alice, _ := e.dial("alice")
	bob, _ := e.dial("bob")
	for i := 0; i < 3; i++ {
		alice.reply(alice.request(map[string]any{"type": "send", "conv": conv.ID, "client_msg_id": fmt.Sprint(i), "body": "x"}))
		bob.waitType("message")
	}
	m := e.get(t, "/metrics")
	for _, want := range []string{
		"duplex_connections 2",
		"duplex_messages_in_total 3",
		"duplex_send_to_ack_seconds_count 3",
		"duplex_send_to_deliver_seconds_count",
		`duplex_store_seconds_count{op="Append"}`,
		`duplex_api_requests_total{code="200",route="create_direct"} 1`,
		"duplex_frames_in_total",
		"duplex_frames_out_total",
		"duplex_queue_drops_total 0",
		"go_goroutines",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(m)
	}

	// Not ready once the store is gone.
	e.st.Close()
	if st, body := e.getStatus(t, "/readyz"); st != 503 {
		t.Fatalf("readyz with a closed store: %d %s", st, body)
	}
	if st, _ := e.getStatus(t, "/healthz"); st != 200 {
		t.Fatalf("healthz with a closed store: %d", st)
	}
}

func TestGracefulShutdownGoingAway(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.direct("alice", "bob")
	var clients []*testClient
	for _, u := range []string{"alice", "bob", "carol"} {
		c, _ := e.dial(u)
		clients = append(clients, c)
	}
	if err := e.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for _, c := range clients {
		if code := c.closed(); code != ws.StatusGoingAway {
			t.Fatalf("%s: close code %d, want 1001", c.user, code)
		}
	}
	// A handler still reachable (say, mounted elsewhere) reports not ready
	// and refuses new WebSockets.
	for path, want := range map[string]int{"/readyz": 503, "/ws": 503, "/healthz": 200} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+e.token("alice"))
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s after shutdown: %d, want %d", path, w.Code, want)
		}
	}
	// The listener is closed: new connections fail.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, _, err := ws.Dial(ctx, e.wsBase+"/ws", e.dialOpts("alice")); err == nil {
		c.CloseNow()
		t.Fatal("dial after shutdown succeeded")
	}
}

func TestSlowConsumer(t *testing.T) {
	// The kernel buffers up to a few MB per connection before the writer
	// blocks; total*body must exceed that so the queue overflows.
	const queue, total, senders = 8, 640, 4
	// The writer stays blocked while bob does not read; it must not give
	// up before bob reads again and can see the close frame.
	e := newEnv(t, envOpts{sendQueue: queue, writeTimeout: 2 * time.Minute, chat: chat.Config{RatePerSecond: 1000, RateBurst: 1000}})
	conv := e.direct("alice", "bob")

	// bob connects and does not read. (Shrinking his socket's receive
	// buffer would make the test faster but stalls TCP in the zero-window
	// persist backoff once he reads again.)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bobConn, _, err := ws.Dial(ctx, e.wsBase+"/ws", e.dialOpts("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bobConn.CloseNow()

	body := strings.Repeat("a", 15000)
	var wg sync.WaitGroup
	errs := make(chan string, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < total; i += senders {
				var r msgResp
				st := e.call("POST", "/api/conversations/"+conv.ID+"/messages", "alice",
					map[string]string{"client_msg_id": fmt.Sprint("m", i), "body": body}, &r)
				if st != 200 || r.Message.Seq < 1 {
					errs <- fmt.Sprintf("send %d: %d %+v", i, st, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// bob reads again: what was buffered, then the slow-consumer close.
	bob := startClient(t, bobConn, "bob")
	if code := bob.closed(); code != protocol.CloseSlowConsumer {
		t.Fatalf("slow consumer closed with %d, want %d", code, protocol.CloseSlowConsumer)
	}
	if m := e.get(t, "/metrics"); strings.Contains(m, "duplex_queue_drops_total 0\n") {
		t.Fatal("no queue drop counted")
	}

	// A new connection's sync recovers every message, in order. Pages stay
	// below the tiny queue: the chat replies sync.end without waiting for
	// room, so a replay that fills the queue would close the client again.
	bob2, _ := e.dial("bob")
	var seqs []int64
	after := int64(0)
	for {
		id := bob2.request(map[string]any{"type": "sync", "conv": conv.ID, "after": after, "limit": queue / 2})
		var end frame
		for {
			f := bob2.next()
			if f.Type == "message" && f.Conv == conv.ID {
				seqs = append(seqs, f.Seq)
				continue
			}
			if f.ID == id {
				end = f
				break
			}
		}
		if end.Type != "sync.end" {
			t.Fatalf("sync reply: %+v", end)
		}
		after = end.Seq
		if !end.More {
			break
		}
	}
	if len(seqs) != total {
		t.Fatalf("sync recovered %d messages, want %d", len(seqs), total)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("seq %d at position %d", s, i)
		}
	}
}

func TestTLS(t *testing.T) {
	serverCfg, pool := selfSigned(t)
	e := newEnv(t, envOpts{tls: serverCfg})
	e.tlsCfg = &tls.Config{RootCAs: pool}
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if !strings.HasPrefix(e.wsBase, "wss://") {
		t.Fatalf("base %s", e.wsBase)
	}
	if body := e.get(t, "/healthz"); !strings.Contains(body, "ok") {
		t.Fatal(body)
	}
	conv := e.direct("alice", "bob")
	alice, _ := e.dial("alice")
	bob, _ := e.dial("bob")
	alice.reply(alice.request(map[string]any{"type": "send", "conv": conv.ID, "client_msg_id": "t1", "body": "over tls"}))
	if m := bob.waitType("message"); m.Body != "over tls" {
		t.Fatalf("bob got %+v", m)
	}
	// A client that does not trust the certificate cannot connect.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := e.dialOpts("alice")
	opts.TLSConfig = nil
	if c, _, err := ws.Dial(ctx, e.wsBase+"/ws", opts); err == nil {
		c.CloseNow()
		t.Fatal("untrusted certificate accepted")
	}
}

// selfSigned returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	c := testcert.New(t)
	return c.Server, c.Pool
}
