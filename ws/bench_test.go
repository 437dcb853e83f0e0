package ws

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// replayConn is a net.Conn whose reads replay one byte stream forever and
// whose writes are discarded, so benchmarks measure the Conn, not the
// kernel.
type replayConn struct {
	stream []byte
	off    int
	chunk  int // bytes returned per Read at most (0: as much as fits)
}

func (r *replayConn) Read(p []byte) (int, error) {
	if r.off == len(r.stream) {
		r.off = 0
	}
	src := r.stream[r.off:]
	if r.chunk > 0 && len(src) > r.chunk {
		src = src[:r.chunk]
	}
	n := copy(p, src)
	r.off += n
	return n, nil
}
func (r *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (r *replayConn) Close() error                     { return nil }
func (r *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (r *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (r *replayConn) SetDeadline(time.Time) error      { return nil }
func (r *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (r *replayConn) SetWriteDeadline(time.Time) error { return nil }

var benchSizes = []int{16, 128, 1 << 10, 16 << 10, 256 << 10}

func benchText(n int) []byte {
	return bytes.Repeat([]byte("duplex chat msg "), n/16+1)[:n]
}

// BenchmarkFrameRead measures the parser alone on masked client frames:
// header decode, unmasking and UTF-8 validation.
func BenchmarkFrameRead(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			frame := maskedFrame(true, opText, string(benchText(n)))
			buf := make([]byte, len(frame))
			p := &parser{server: true, limit: 1 << 30}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, frame)
				in := buf
				for len(in) > 0 {
					k, _, err := p.feed(in)
					if err != nil {
						b.Fatal(err)
					}
					in = in[k:]
				}
			}
		})
	}
}

// BenchmarkFrameWrite measures encoding one frame (header, masking for a
// client, copy into the pooled buffer) and the write call.
func BenchmarkFrameWrite(b *testing.B) {
	for _, r := range []role{roleServer, roleClient} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", roleName(r), n), func(b *testing.B) {
				c := newConn(&replayConn{}, nil, connConfig{role: r})
				p := benchText(n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if err := c.writeFrameLocked(true, false, opText, p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func roleName(r role) string {
	if r == roleServer {
		return "server"
	}
	return "client"
}

func BenchmarkMask(b *testing.B) {
	for _, n := range []int{15, 128, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			buf := make([]byte, n+1)[1:] // unaligned
			b.SetBytes(int64(n))
			b.ReportAllocs()
			pos := 0
			for b.Loop() {
				pos = maskBytes(0x3d21fa37, pos, buf)
			}
		})
	}
}

func BenchmarkUTF8(b *testing.B) {
	inputs := map[string][]byte{
		"ascii": benchText(4 << 10),
		"mixed": []byte(strings.Repeat("héllo wörld – ", 300)),
		"cjk":   []byte(strings.Repeat("你好世界", 340)),
		"emoji": []byte(strings.Repeat("\U0001F600 ok ", 500)),
	}
	for _, name := range []string{"ascii", "mixed", "cjk", "emoji"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				var s utf8State
				if !s.write(in) || !s.complete() {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkReadMessage measures Conn.Read of whole text messages from a
// stream of masked client frames (server side), steady state. "frag8"
// splits each message into 8 frames; "trickle" delivers 100 bytes per read
// system call, so messages span reads.
func BenchmarkReadMessage(b *testing.B) {
	type variant struct {
		name  string
		frags int
		chunk int
	}
	for _, v := range []variant{{"whole", 1, 0}, {"frag8", 8, 0}, {"trickle", 1, 100}} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", v.name, n), func(b *testing.B) {
				msg := benchText(n)
				var stream []byte
				for range 16 {
					step := (n + v.frags - 1) / v.frags
					for i := 0; i < v.frags; i++ {
						op := opContinuation
						if i == 0 {
							op = opText
						}
						part := msg[min(i*step, n):min((i+1)*step, n)]
						stream = append(stream, maskedFrame(i == v.frags-1, op, string(part))...)
					}
				}
				c := newConn(&replayConn{stream: stream, chunk: v.chunk}, nil, connConfig{role: roleServer})
				ctx := context.Background()
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					_, p, err := c.Read(ctx)
					if err != nil || len(p) != n {
						b.Fatalf("%d bytes, %v", len(p), err)
					}
				}
			})
		}
	}
}

// BenchmarkWriteMessage measures Conn.Write of whole messages, server
// (unmasked) and client (masked).
func BenchmarkWriteMessage(b *testing.B) {
	for _, r := range []role{roleServer, roleClient} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", roleName(r), n), func(b *testing.B) {
				c := newConn(&replayConn{}, nil, connConfig{role: r})
				ctx := context.Background()
				p := benchText(n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if err := c.Write(ctx, MessageText, p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkWritePrepared measures fan-out of one prepared message.
func BenchmarkWritePrepared(b *testing.B) {
	c := newConn(&replayConn{}, nil, connConfig{role: roleServer})
	pm, _ := NewPreparedMessage(MessageText, benchText(128))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WritePrepared(ctx, pm); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEchoLoopback is a round trip over real loopback TCP, for scale.
func BenchmarkEchoLoopback(b *testing.B) {
	cli, srv := connPair(b, nil)
	ctx := context.Background()
	go echo(srv)
	msg := benchText(128)
	b.ReportAllocs()
	for b.Loop() {
		if err := cli.Write(ctx, MessageText, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := cli.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cli.Close(StatusNormalClosure, "")
}

// BenchmarkWriteLoopbackLarge writes 128 KiB server frames over real TCP,
// the writev path (header and payload as two iovecs, no copy).
func BenchmarkWriteLoopbackLarge(b *testing.B) {
	cn, sn := loopback(b)
	srv := newConn(sn, nil, connConfig{role: roleServer})
	defer srv.CloseNow()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 256<<10)
		for {
			if _, err := cn.Read(buf); err != nil {
				return
			}
		}
	}()
	p := make([]byte, 128<<10)
	ctx := context.Background()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := srv.Write(ctx, MessageBinary, p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	srv.CloseNow()
	cn.Close()
	<-drained
}

// benchEcho is the Handler of BenchmarkPollerEchoLoopback.
type benchEcho struct{ done chan struct{} }

func (h benchEcho) OnMessage(c *Conn, typ MessageType, p []byte) {
	_ = c.Write(context.Background(), typ, p)
}
func (h benchEcho) OnClose(*Conn, error) { close(h.done) }

// BenchmarkPollerEchoLoopback is BenchmarkEchoLoopback with the server side
// read by a Poller: readiness event, non-blocking read, parse, handler,
// write. Its allocs/op show the event path allocates nothing per message.
func BenchmarkPollerEchoLoopback(b *testing.B) {
	cli, srv := connPair(b, nil)
	p, err := NewPoller(&PollerOptions{Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	h := benchEcho{done: make(chan struct{})}
	if err := p.Serve(srv, h); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msg := benchText(128)
	b.ReportAllocs()
	for b.Loop() {
		if err := cli.Write(ctx, MessageText, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := cli.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cli.Close(StatusNormalClosure, "")
	<-h.done
}
