package ws

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// loopback returns both ends of a fresh 127.0.0.1 TCP connection.
func loopback(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// connPair returns a client and a server Conn joined by loopback TCP,
// skipping the handshake.
func connPair(t testing.TB, mutate func(cfg *connConfig)) (cli, srv *Conn) {
	t.Helper()
	cn, sn := loopback(t)
	ccfg, scfg := connConfig{role: roleClient}, connConfig{role: roleServer}
	if mutate != nil {
		mutate(&ccfg)
		mutate(&scfg)
		ccfg.role, scfg.role = roleClient, roleServer
	}
	cli, srv = newConn(cn, nil, ccfg), newConn(sn, nil, scfg)
	t.Cleanup(func() { cli.CloseNow(); srv.CloseNow() })
	return cli, srv
}

// rawServerFrame reads one unmasked frame written by a server Conn.
func rawServerFrame(t testing.TB, r io.Reader) (fin bool, op opcode, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading frame header: %v", err)
	}
	if h[1]&bitMask != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(b[0])<<8 | uint64(b[1])
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = 0
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("reading payload: %v", err)
	}
	return h[0]&bitFIN != 0, opcode(h[0] & 0x0F), payload
}

// rawServer wraps a server Conn whose peer is a raw socket the test drives.
func rawServer(t *testing.T, mutate func(cfg *connConfig)) (raw net.Conn, srv *Conn) {
	t.Helper()
	cn, sn := loopback(t)
	cfg := connConfig{role: roleServer}
	if mutate != nil {
		mutate(&cfg)
	}
	srv = newConn(sn, nil, cfg)
	t.Cleanup(func() { srv.CloseNow() })
	cn.SetDeadline(time.Now().Add(10 * time.Second))
	return cn, srv
}

// discardReads reads and drops messages from c until a read fails.
func discardReads(ctx context.Context, c *Conn) {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

func TestConnEchoSizes(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx := context.Background()
	go echo(srv)
	for _, n := range []int{0, 1, 63, 64, 65, 125, 126, 4095, 4096, 65535, 65536, 300 << 10, 2 << 20} {
		msg := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		typ := MessageBinary
		if n%2 == 1 {
			typ = MessageText
		}
		if err := cli.Write(ctx, typ, msg); err != nil {
			t.Fatalf("n=%d: write: %v", n, err)
		}
		gt, got, err := cli.Read(ctx)
		if err != nil {
			t.Fatalf("n=%d: read: %v", n, err)
		}
		if gt != typ || !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: echo mismatch (type %v, %d bytes)", n, gt, len(got))
		}
	}
	if err := cli.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestConnStreaming sends fragmented messages with Writer and reads them with
// Reader in small pieces, with pings from the other side in between.
func TestConnStreaming(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx := context.Background()
	msg := bytes.Repeat([]byte("stream-\u00e9-"), 9000) // > 4 fragments of 16 KiB
	errc := make(chan error, 1)
	go func() {
		w, err := cli.Writer(ctx, MessageText)
		if err != nil {
			errc <- err
			return
		}
		for p := msg; len(p) > 0; {
			k := min(len(p), 1000)
			if _, err := w.Write(p[:k]); err != nil {
				errc <- err
				return
			}
			p = p[k:]
		}
		errc <- w.Close()
	}()
	typ, r, err := srv.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if typ != MessageText || !bytes.Equal(got.Bytes(), msg) {
		t.Fatalf("got %v with %d bytes, want %d", typ, got.Len(), len(msg))
	}
	// An abandoned Reader is skipped by the next Read.
	go func() {
		cli.Write(ctx, MessageBinary, bytes.Repeat([]byte{1}, 10000))
		cli.Write(ctx, MessageBinary, []byte("next"))
	}()
	if _, r, err = srv.Reader(ctx); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(r, buf[:10])
	if _, p, err := srv.Read(ctx); err != nil || string(p) != "next" {
		t.Fatalf("after abandoned reader: %q, %v", p, err)
	}
}

// TestConnFailSendsCode: a violation makes the server send the close code and
// close TCP, and Read reports the code.
func TestConnFailSendsCode(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		in    []byte
		want  StatusCode
		err   error
	}{
		{"unmasked", 0, frameSpec{fin: true, op: opText, payload: []byte("x")}.bytes(), 1002, ErrProtocol},
		{"bad utf8 mid message", 0, maskedFrame(false, opText, "a\xff"), 1007, ErrInvalidUTF8},
		{"too big by header", 100, frameSpec{fin: true, op: opBinary, mask: true, lenBytes: 8, rawLen: 1 << 40}.bytes()[:14], 1009, ErrMessageTooBig},
		{"bad close code", 0, maskedFrame(true, opClose, closeBody(1005, "")), 1002, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, srv := rawServer(t, func(c *connConfig) { c.readLimit = tt.limit })
			readErr := make(chan error, 1)
			go func() {
				_, _, err := srv.Read(context.Background())
				readErr <- err
			}()
			if _, err := raw.Write(tt.in); err != nil {
				t.Fatal(err)
			}
			_, op, p := rawServerFrame(t, raw)
			if op != opClose || len(p) != 2 || StatusCode(p[0])<<8|StatusCode(p[1]) != tt.want {
				t.Fatalf("server sent op %d payload %x", op, p)
			}
			// The server half-closes after its close frame.
			if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("server did not close TCP: %v", err)
			}
			raw.Close()
			err := <-readErr
			if !errors.Is(err, tt.err) || CloseStatus(err) != tt.want {
				t.Fatalf("Read: %v (status %d), want %v with %d", err, CloseStatus(err), tt.err, tt.want)
			}
			// The error is sticky and the Conn is closed.
			if _, _, err2 := srv.Read(context.Background()); err2 == nil {
				t.Fatal("second Read succeeded")
			}
			if err := srv.Write(context.Background(), MessageText, []byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after failure: %v", err)
			}
		})
	}
}

// TestConnPeerClose: the server echoes the peer's code (an empty close for
// an empty one) and closes TCP first.
func TestConnPeerClose(t *testing.T) {
	for _, tc := range []struct {
		payload string
		code    StatusCode
		reason  string
	}{
		{closeBody(1000, "bye"), 1000, "bye"},
		{closeBody(4001, ""), 4001, ""},
		{"", StatusNoStatusRcvd, ""},
	} {
		raw, srv := rawServer(t, nil)
		raw.Write(maskedFrame(true, opText, "last"))
		raw.Write(maskedFrame(true, opClose, tc.payload))
		if _, p, err := srv.Read(context.Background()); err != nil || string(p) != "last" {
			t.Fatalf("read before close: %q %v", p, err)
		}
		_, _, err := srv.Read(context.Background())
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason != tc.reason {
			t.Fatalf("got %v, want close %d %q", err, tc.code, tc.reason)
		}
		_, op, p := rawServerFrame(t, raw)
		wantEcho := tc.payload[:min(2, len(tc.payload))]
		if op != opClose || string(p) != wantEcho {
			t.Fatalf("echo op %d %x, want %x", op, p, wantEcho)
		}
		if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("server did not close TCP: %v", err)
		}
		if err := srv.Close(StatusNormalClosure, ""); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Close after peer close: %v", err)
		}
	}
}

func TestConnCloseHandshakeBothWays(t *testing.T) {
	for _, initiator := range []string{"server", "client"} {
		t.Run(initiator, func(t *testing.T) {
			cli, srv := connPair(t, nil)
			closer, reader := srv, cli
			if initiator == "client" {
				closer, reader = cli, srv
			}
			readErr := make(chan error, 1)
			go func() {
				_, _, err := reader.Read(context.Background())
				readErr <- err
			}()
			if err := closer.Close(StatusGoingAway, "restart"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			err := <-readErr
			if CloseStatus(err) != StatusGoingAway {
				t.Fatalf("reader got %v", err)
			}
			select {
			case <-reader.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("reader side not closed")
			}
			if _, _, err := closer.Read(context.Background()); err == nil {
				t.Fatal("Read after Close succeeded")
			}
		})
	}
}

// TestConnCloseWithoutReader: Close reads the peer's reply itself when no
// goroutine is reading, discarding data sent meanwhile.
func TestConnCloseWithoutReader(t *testing.T) {
	raw, srv := rawServer(t, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Close(StatusNormalClosure, "") }()
	_, op, p := rawServerFrame(t, raw)
	if op != opClose || !bytes.Equal(p, []byte{0x03, 0xE8}) {
		t.Fatalf("got op %d %x", op, p)
	}
	raw.Write(maskedFrame(true, opText, "late data"))
	raw.Write(maskedFrame(true, opClose, string(p)))
	if err := <-done; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server did not close TCP: %v", err)
	}
}

func TestConnCloseRefusesInvalid(t *testing.T) {
	cli, _ := connPair(t, nil)
	for _, tc := range []struct {
		code   StatusCode
		reason string
	}{
		{0, ""}, {999, ""}, {1004, ""}, {1005, ""}, {1006, ""}, {1012, ""}, {1015, ""}, {2999, ""}, {5000, ""},
		{1000, strings.Repeat("x", 124)}, {1000, "\xff"},
	} {
		if err := cli.Close(tc.code, tc.reason); !errors.Is(err, ErrInvalidClose) {
			t.Errorf("Close(%d, %d bytes) = %v", tc.code, len(tc.reason), err)
		}
	}
	if cli.isClosed() {
		t.Fatal("refused Close closed the connection")
	}
}

func TestConnUseAfterClose(t *testing.T) {
	cli, srv := connPair(t, nil)
	srv.CloseNow()
	cli.CloseNow()
	ctx := context.Background()
	pm, _ := NewPreparedMessage(MessageText, []byte("x"))
	checks := map[string]error{
		"Write":         cli.Write(ctx, MessageText, []byte("x")),
		"WritePrepared": cli.WritePrepared(ctx, pm),
		"Ping":          cli.Ping(ctx),
		"Close":         cli.Close(StatusNormalClosure, ""),
		"CloseNow":      cli.CloseNow(),
	}
	_, _, checks["Read"] = cli.Read(ctx)
	_, _, checks["Reader"] = cli.Reader(ctx)
	_, checks["Writer"] = cli.Writer(ctx, MessageBinary)
	for name, err := range checks {
		if !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrClosed) {
			t.Errorf("%s after close: %v", name, err)
		}
	}
}

// TestConnConcurrentWritersAndPings: writers interleave whole messages and
// streamed ones with pings; every message arrives intact.
func TestConnConcurrentWritersAndPings(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx := context.Background()
	const writers, per = 6, 150
	srvReadDone := make(chan error, 1)
	go func() { // receives the pongs for srv.Ping
		_, _, err := srv.Read(ctx)
		srvReadDone <- err
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				msg := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("p", i*50))
				var err error
				if i%3 == 0 {
					var wr io.WriteCloser
					if wr, err = srv.Writer(ctx, MessageText); err == nil {
						io.WriteString(wr, msg[:len(msg)/2])
						io.WriteString(wr, msg[len(msg)/2:])
						err = wr.Close()
					}
				} else {
					err = srv.Write(ctx, MessageText, []byte(msg))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := srv.Ping(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	msgs := make(chan string, 16)
	go func() { // cli keeps reading so that pongs keep flowing
		defer close(msgs)
		for {
			_, p, err := cli.Read(ctx)
			if err != nil {
				return
			}
			msgs <- string(p)
		}
	}()
	seen := map[string]bool{}
	for len(seen) < writers*per {
		p, ok := <-msgs
		if !ok {
			t.Fatalf("client read ended after %d messages", len(seen))
		}
		var w, i int
		fmt.Sscanf(p, "w%d-%d-", &w, &i)
		want := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("p", i*50))
		if p != want || seen[want] {
			t.Fatalf("corrupt or duplicate message %.40q", p)
		}
		seen[want] = true
	}
	wg.Wait()
	if err := srv.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-srvReadDone; CloseStatus(err) != StatusNormalClosure {
		t.Fatalf("server read: %v", err)
	}
	for range msgs {
	}
}

func TestConnContextCancel(t *testing.T) {
	t.Run("read fails the connection", func(t *testing.T) {
		_, srv := connPair(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		_, _, err := srv.Read(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		if !srv.isClosed() {
			t.Fatal("cancelled read left the connection open")
		}
	})
	t.Run("waiting writer gives up, connection survives", func(t *testing.T) {
		cli, srv := connPair(t, nil)
		w, err := srv.Writer(context.Background(), MessageBinary)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := srv.Write(ctx, MessageText, []byte("blocked")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
		w.Write([]byte("streamed"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, p, err := cli.Read(context.Background()); err != nil || string(p) != "streamed" {
			t.Fatalf("%q %v", p, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, srv := connPair(t, nil)
		srv.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, _, err := srv.Read(context.Background()); err == nil {
			t.Fatal("read past deadline succeeded")
		}
	})
}

// TestConnPing: Ping waits for its own pong, answered automatically by the
// peer's reader.
func TestConnPing(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx := context.Background()
	done := make(chan struct{})
	go func() { srv.Read(ctx); close(done) }()
	go func() { cli.Read(ctx) }()
	for range 3 {
		if err := cli.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cli.Close(StatusNormalClosure, "")
	<-done
}

// TestConnPongPayload: the automatic pong carries the ping's payload.
func TestConnPongPayload(t *testing.T) {
	raw, srv := rawServer(t, nil)
	go srv.Read(context.Background())
	payload := strings.Repeat("p", 125)
	raw.Write(maskedFrame(true, opPing, payload))
	if _, op, p := rawServerFrame(t, raw); op != opPong || string(p) != payload {
		t.Fatalf("got op %d %q", op, p)
	}
}

// TestConnHeartbeat: an unanswered heartbeat closes the connection, and the
// heartbeat goroutine ends with it.
func TestConnHeartbeat(t *testing.T) {
	raw, srv := rawServer(t, func(c *connConfig) {
		c.pingInterval = 20 * time.Millisecond
		c.pongTimeout = 30 * time.Millisecond
	})
	errc := make(chan error, 1)
	go func() { _, _, err := srv.Read(context.Background()); errc <- err }()
	// Answer the first ping, then play dead.
	_, op, p := rawServerFrame(t, raw)
	if op != opPing {
		t.Fatalf("expected a ping, got op %d", op)
	}
	raw.Write(maskedFrame(true, opPong, string(p)))
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrPongTimeout) {
			t.Fatalf("read ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dead peer not detected")
	}
}

// TestConnHeartbeatDuringClose: a heartbeat ping that cannot go out
// because the close handshake has begun is not a pong timeout: the
// handshake completes when the peer answers, however many heartbeat ticks
// pass while it waits (the heartbeat once took "ping after close" for a
// timed-out pong and cut the handshake short).
func TestConnHeartbeatDuringClose(t *testing.T) {
	raw, srv := rawServer(t, func(c *connConfig) {
		c.pingInterval = 2 * time.Millisecond
		c.pongTimeout = time.Minute
	})
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := srv.Read(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	closed := make(chan error, 1)
	var once sync.Once
	for {
		_, op, p := rawServerFrame(t, raw)
		switch op {
		case opPing:
			raw.Write(maskedFrame(true, opPong, string(p)))
			once.Do(func() { go func() { closed <- srv.Close(StatusNormalClosure, "bye") }() })
			continue
		case opClose:
		default:
			t.Fatalf("unexpected op %d", op)
		}
		// Many heartbeat ticks pass before the peer answers the close.
		time.Sleep(100 * time.Millisecond)
		raw.Write(maskedFrame(true, opClose, string(p[:2])))
		break
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; errors.Is(err, ErrPongTimeout) {
		t.Fatalf("read ended with %v", err)
	}
}

// TestConnPipelinedBytes: bytes read past the handshake by the caller's
// bufio.Reader are the start of the frame stream.
func TestConnPipelinedBytes(t *testing.T) {
	cn, sn := loopback(t)
	frames := append(maskedFrame(true, opText, "first"), maskedFrame(true, opText, "second")...)
	cn.Write(append([]byte("junk\n"), frames[:9]...))
	br := bufio.NewReader(sn)
	br.ReadString('\n')
	br.Peek(9)
	srv := newConn(sn, br, connConfig{role: roleServer})
	defer srv.CloseNow()
	cn.Write(frames[9:])
	for _, want := range []string{"first", "second"} {
		if _, p, err := srv.Read(context.Background()); err != nil || string(p) != want {
			t.Fatalf("got %q %v, want %q", p, err, want)
		}
	}
}

// TestConnIdleHoldsNoBuffers: after a message was read and the next Read
// started, and after any write, the Conn holds no pooled buffer.
func TestConnIdleHoldsNoBuffers(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx := context.Background()
	for _, n := range []int{10, 1000, 100000} {
		msg := make([]byte, n)
		if err := cli.Write(ctx, MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		if _, p, err := srv.Read(ctx); err != nil || len(p) != n {
			t.Fatalf("read %d: %v", len(p), err)
		}
		// The last message may pin one buffer until the next Read; an
		// empty input buffer is dropped unless the message lives in it.
		if srv.rbuf != nil && !srv.mr.inRbuf {
			t.Fatalf("n=%d: read buffer held after Read", n)
		}
	}
	// A Read waiting for input holds nothing but the inline buffer.
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	srv.Read(ctx2)
	if srv.rbuf != nil || srv.msg != nil {
		t.Fatal("buffers held by a waiting reader")
	}
	t.Logf("Conn struct: %d bytes", unsafe.Sizeof(Conn{}))
}

// TestConnCompressedRoundTrip runs messages both ways with permessage-deflate
// in each context mode, checking RSV1 is used and text is validated after
// inflating.
func TestConnCompressedRoundTrip(t *testing.T) {
	for _, noCtx := range []bool{false, true} {
		t.Run(fmt.Sprintf("noContextTakeover=%v", noCtx), func(t *testing.T) {
			cli, srv := connPair(t, func(c *connConfig) {
				c.deflate = &deflateParams{serverNoContextTakeover: noCtx, clientNoContextTakeover: noCtx,
					serverMaxWindowBits: 15, clientMaxWindowBits: 12}
				c.compression = CompressionOptions{Threshold: 64}
			})
			ctx := context.Background()
			go echo(srv)
			pm, _ := NewPreparedMessage(MessageText, bytes.Repeat([]byte("prepared "), 50))
			for i, msg := range [][]byte{
				[]byte("short"),
				bytes.Repeat([]byte("compress me é "), 200),
				bytes.Repeat([]byte("compress me é "), 200),
				make([]byte, 300<<10),
			} {
				typ := MessageText
				if i == 3 {
					typ = MessageBinary
				}
				if err := cli.Write(ctx, typ, msg); err != nil {
					t.Fatal(err)
				}
				if _, p, err := cli.Read(ctx); err != nil || !bytes.Equal(p, msg) {
					t.Fatalf("message %d: %d bytes, %v", i, len(p), err)
				}
				if err := cli.WritePrepared(ctx, pm); err != nil {
					t.Fatal(err)
				}
				if _, p, err := cli.Read(ctx); err != nil || !bytes.Equal(p, pm.data) {
					t.Fatalf("prepared after %d: %v", i, err)
				}
			}
			w, _ := cli.Writer(ctx, MessageText)
			io.WriteString(w, strings.Repeat("streamed and compressed ", 100))
			w.Close()
			if _, r, err := cli.Reader(ctx); err != nil {
				t.Fatal(err)
			} else if b, err := io.ReadAll(r); err != nil || string(b) != strings.Repeat("streamed and compressed ", 100) {
				t.Fatalf("streamed: %d bytes, %v", len(b), err)
			}
			cli.Close(StatusNormalClosure, "")
		})
	}
}

// TestConnCompressedFlagOnWire checks RSV1 on a compressed frame and its
// absence on small messages and WriteUncompressed.
func TestConnCompressedFlagOnWire(t *testing.T) {
	cn, sn := loopback(t)
	srv := newConn(sn, nil, connConfig{role: roleServer, deflate: &deflateParams{serverMaxWindowBits: 15, clientMaxWindowBits: 15},
		compression: CompressionOptions{Threshold: 10}})
	defer srv.CloseNow()
	ctx := context.Background()
	big := strings.Repeat("a", 100)
	srv.Write(ctx, MessageText, []byte(big))
	srv.Write(ctx, MessageText, []byte("tiny"))
	srv.WriteUncompressed(ctx, MessageText, []byte(big))
	cn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, want := range []bool{true, false, false} {
		var h [2]byte
		io.ReadFull(cn, h[:])
		io.ReadFull(cn, make([]byte, h[1]&0x7F))
		if got := h[0]&bitRSV1 != 0; got != want {
			t.Fatalf("frame %d: RSV1 %v, want %v", i, got, want)
		}
	}
}

// TestPreparedMessageSharedFrame: a server writes the cached frame bytes;
// a client masks them per write.
func TestPreparedMessageSharedFrame(t *testing.T) {
	pm, err := NewPreparedMessage(MessageBinary, []byte("fan-out"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPreparedMessage(MessageType(9), nil); err == nil {
		t.Fatal("invalid type accepted")
	}
	ctx := context.Background()
	for range 3 {
		cli, srv := connPair(t, nil)
		if err := srv.WritePrepared(ctx, pm); err != nil {
			t.Fatal(err)
		}
		if typ, p, err := cli.Read(ctx); err != nil || typ != MessageBinary || string(p) != "fan-out" {
			t.Fatalf("client got %v %q %v", typ, p, err)
		}
		if err := cli.WritePrepared(ctx, pm); err != nil {
			t.Fatal(err)
		}
		if _, p, err := srv.Read(ctx); err != nil || string(p) != "fan-out" {
			t.Fatalf("server got %q %v", p, err)
		}
	}
}

// TestConnCompressedFailsEarly: invalid UTF-8 and an oversized inflation in
// the first fragment of a compressed message fail the connection before the
// message ends.
func TestConnCompressedFailsEarly(t *testing.T) {
	comp := newCompressor(1, 15, false)
	defer comp.release()
	tests := []struct {
		name  string
		op    opcode
		plain []byte
		limit int64
		want  StatusCode
	}{
		{"invalid utf8", opText, []byte("fine so far, then \xed\xa0\x80 and more"), 0, StatusInvalidPayload},
		{"bomb", opBinary, make([]byte, 1<<20), 64 << 10, StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, srv := rawServer(t, func(c *connConfig) {
				c.deflate = &deflateParams{serverMaxWindowBits: 15, clientMaxWindowBits: 15}
				c.readLimit = tt.limit
			})
			body := comp.compress(nil, tt.plain)
			raw.Write(frameSpec{rsv: bitRSV1, op: tt.op, mask: true, payload: body}.bytes())
			errc := make(chan error, 1)
			go func() { _, _, err := srv.Read(context.Background()); errc <- err }()
			_, op, p := rawServerFrame(t, raw)
			if op != opClose || StatusCode(p[0])<<8|StatusCode(p[1]) != tt.want {
				t.Fatalf("got op %d %x, want close %d", op, p, tt.want)
			}
			raw.Close()
			if err := <-errc; CloseStatus(err) != tt.want {
				t.Fatalf("Read: %v", err)
			}
		})
	}
}

// TestConnWriteFailures: a write that fails (peer gone, or ctx expiring
// while blocked on a full socket) closes the connection, since a partial
// frame may be on the wire.
func TestConnWriteFailures(t *testing.T) {
	t.Run("peer gone", func(t *testing.T) {
		raw, srv := rawServer(t, nil)
		raw.Close()
		big := make([]byte, 1<<20)
		var err error
		for range 100 {
			if err = srv.Write(context.Background(), MessageBinary, big); err != nil {
				break
			}
		}
		if err == nil || !srv.isClosed() {
			t.Fatalf("writes to a closed peer: %v, closed %v", err, srv.isClosed())
		}
		if err := srv.Write(context.Background(), MessageBinary, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("next write: %v", err)
		}
	})
	t.Run("ctx expires mid-write", func(t *testing.T) {
		_, srv := rawServer(t, nil) // the peer never reads
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		big := make([]byte, 1<<20)
		var err error
		for range 100 {
			if err = srv.Write(ctx, MessageBinary, big); err != nil {
				break
			}
		}
		if !errors.Is(err, context.DeadlineExceeded) || !srv.isClosed() {
			t.Fatalf("got %v, closed %v", err, srv.isClosed())
		}
	})
}

// TestConnMisuse: wrong use returns errors, never panics.
func TestConnMisuse(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx := context.Background()
	if err := cli.Write(ctx, MessageType(7), nil); err == nil {
		t.Error("invalid message type accepted")
	}
	if _, err := cli.Writer(ctx, MessageType(0)); err == nil {
		t.Error("invalid writer type accepted")
	}
	// A second concurrent reader gets an error; the first one reads the
	// message written below.
	readDone := make(chan error, 1)
	go func() { _, _, err := srv.Read(ctx); readDone <- err }()
	for !srv.reading.Load() {
		time.Sleep(time.Millisecond)
	}
	if _, _, err := srv.Read(ctx); err == nil {
		t.Error("concurrent Read succeeded")
	}
	w, err := cli.Writer(ctx, MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte{1}, 40000)) // grows past one chunk
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("first reader: %v", err)
	}
	if srv.LocalAddr() == nil || srv.RemoteAddr() == nil || srv.SetWriteDeadline(time.Time{}) != nil {
		t.Error("address or deadline passthrough broken")
	}
}
