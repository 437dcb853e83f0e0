package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// batchModes are the connection settings WriteBatch is checked under.
var batchModes = []struct {
	name   string
	mutate func(*connConfig)
}{
	{"plain", nil},
	{"deflate-takeover", func(c *connConfig) {
		c.deflate = &deflateParams{serverMaxWindowBits: 15, clientMaxWindowBits: 15}
		c.compression = CompressionOptions{Threshold: 64}
	}},
	{"deflate-no-takeover", func(c *connConfig) {
		c.deflate = &deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true,
			serverMaxWindowBits: 15, clientMaxWindowBits: 15}
		c.compression = CompressionOptions{Threshold: 64}
	}},
}

// TestWriteBatch sends batches from either side, under every compression
// mode, and checks that the peer reads each message whole, in order, as a
// message of its own: empty, small, compressible, larger than the batch
// buffer, and enough small ones to need several buffers.
func TestWriteBatch(t *testing.T) {
	many := make([][]byte, 3000)
	for i := range many {
		many[i] = fmt.Appendf(nil, "message %d %s", i, bytes.Repeat([]byte{'x'}, i%200))
	}
	batches := []struct {
		name string
		msgs [][]byte
	}{
		{"empty", nil},
		{"one", [][]byte{[]byte("only")}},
		{"mixed", [][]byte{
			{},
			[]byte("short"),
			bytes.Repeat([]byte("compress me é "), 200),
			make([]byte, 300<<10),
			[]byte("after the big one"),
			bytes.Repeat([]byte("compress me é "), 200),
		}},
		{"many", many},
	}
	for _, m := range batchModes {
		for _, r := range []role{roleServer, roleClient} {
			t.Run(m.name+"/"+roleName(r), func(t *testing.T) {
				cli, srv := connPair(t, m.mutate)
				w, rd := srv, cli
				if r == roleClient {
					w, rd = cli, srv
				}
				// A hang is a step that makes no progress for 2 minutes:
				// each read, and the writer's return after the last read.
				// A step can be long: WriteBatch compresses up to 256 KiB
				// of frames before its first write (all of "many"), which
				// under -race takes about 3.5s on an idle machine and more
				// than 20s on a loaded one (0.1s without -race).
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				const stepTimeout = 2 * time.Minute
				step := func() (context.Context, context.CancelFunc) {
					return context.WithTimeout(ctx, stepTimeout)
				}
				read := func() (MessageType, []byte, error) {
					rctx, rcancel := step()
					defer rcancel()
					return rd.Read(rctx)
				}
				for _, b := range batches {
					errc := make(chan error, 1)
					go func() { errc <- w.WriteBatch(ctx, MessageBinary, b.msgs) }()
					for i, want := range b.msgs {
						typ, p, err := read()
						if err != nil {
							t.Fatalf("%s: message %d: %v", b.name, i, err)
						}
						if typ != MessageBinary || !bytes.Equal(p, want) {
							t.Fatalf("%s: message %d: type %v, %d bytes, want %d", b.name, i, typ, len(p), len(want))
						}
					}
					select {
					case err := <-errc:
						if err != nil {
							t.Fatalf("%s: WriteBatch: %v", b.name, err)
						}
					case <-time.After(stepTimeout):
						t.Fatalf("%s: WriteBatch still running %v after its last message was read", b.name, stepTimeout)
					}
				}
				// Nothing beyond the batches was written: the next message
				// read is this one.
				wctx, wcancel := step()
				defer wcancel()
				if err := w.Write(wctx, MessageText, []byte("end")); err != nil {
					t.Fatal(err)
				}
				if _, p, err := read(); err != nil || string(p) != "end" {
					t.Fatalf("after the batches: %q, %v", p, err)
				}
			})
		}
	}
}

// TestWriteBatchConcurrent runs WriteBatch, Write and pings from several
// goroutines at once (run it with -race): every message must arrive whole,
// and the messages of one batch must arrive consecutively and in order.
func TestWriteBatchConcurrent(t *testing.T) {
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) {
			cli, srv := connPair(t, m.mutate)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			const writers, rounds, perBatch = 4, 50, 7
			go discardReads(ctx, cli)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					msgs := make([][]byte, perBatch)
					for r := range rounds {
						for i := range msgs {
							msgs[i] = fmt.Appendf(msgs[i][:0], "w%d r%d i%d %s", w, r, i, bytes.Repeat([]byte("pad "), (r*i)%40))
						}
						var err error
						if w == 0 {
							err = srv.Write(ctx, MessageText, msgs[0])
						} else {
							err = srv.WriteBatch(ctx, MessageText, msgs)
						}
						if err != nil {
							t.Errorf("writer %d: %v", w, err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				for range 20 {
					pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
					err := srv.Ping(pctx)
					pcancel()
					if err != nil {
						t.Errorf("ping: %v", err)
						return
					}
				}
			})
			// The server reads to answer the pongs of its pings; the
			// client echoes nothing, so the server's reader only sees
			// pongs.
			go discardReads(ctx, srv)
			wg.Wait()
		})
	}
}

// TestWriteBatchOrderConcurrent checks, from the reader's side, that a
// batch is not interleaved with other writers' messages.
func TestWriteBatchOrderConcurrent(t *testing.T) {
	cli, srv := connPair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const writers, rounds, perBatch = 3, 100, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msgs := make([][]byte, perBatch)
			for r := range rounds {
				for i := range msgs {
					msgs[i] = []byte{byte(w), byte(r), byte(i)}
				}
				if err := srv.WriteBatch(ctx, MessageBinary, msgs); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	for n := 0; n < writers*rounds; n++ {
		var first []byte
		for i := range perBatch {
			_, p, err := cli.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = p
			}
			if len(p) != 3 || p[0] != first[0] || p[1] != first[1] || int(p[2]) != i {
				t.Fatalf("batch %d, message %d: got %v after %v", n, i, p, first)
			}
		}
	}
	wg.Wait()
}

// TestWriteBatchErrors covers the calls that must fail: an invalid
// message type, a closed connection, and a write after the peer is gone.
func TestWriteBatchErrors(t *testing.T) {
	ctx := context.Background()
	cli, srv := connPair(t, nil)
	if err := srv.WriteBatch(ctx, MessageType(9), [][]byte{[]byte("x")}); err == nil {
		t.Fatal("invalid type accepted")
	}
	srv.CloseNow()
	if err := srv.WriteBatch(ctx, MessageText, [][]byte{[]byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after CloseNow: %v", err)
	}
	cli.CloseNow()

	cn, sn := loopback(t)
	s := newConn(sn, nil, connConfig{role: roleServer})
	defer s.CloseNow()
	cn.Close()
	big := [][]byte{make([]byte, 100<<10), make([]byte, 100<<10), make([]byte, 100<<10)}
	var err error
	for range 50 {
		if err = s.WriteBatch(ctx, MessageBinary, big); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	if err := s.WriteBatch(ctx, MessageBinary, big[:1]); err == nil {
		t.Fatal("write after a failed write succeeded")
	}
}

// BenchmarkWriteBatch measures WriteBatch of 16 small messages (the shape
// of a server flushing its outbound queue), against 16 Write calls.
func BenchmarkWriteBatch(b *testing.B) {
	msgs := make([][]byte, 16)
	for i := range msgs {
		msgs[i] = benchText(128)
	}
	for _, m := range batchModes {
		b.Run(m.name+"/batch", func(b *testing.B) {
			c := newConn(&replayConn{}, nil, benchConfig(m.mutate))
			ctx := context.Background()
			b.SetBytes(16 * 128)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.WriteBatch(ctx, MessageText, msgs); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(m.name+"/write", func(b *testing.B) {
			c := newConn(&replayConn{}, nil, benchConfig(m.mutate))
			ctx := context.Background()
			b.SetBytes(16 * 128)
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range msgs {
					if err := c.Write(ctx, MessageText, p); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchConfig is a server configuration with mutate applied.
func benchConfig(mutate func(*connConfig)) connConfig {
	cfg := connConfig{role: roleServer}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.role = roleServer
	return cfg
}
