package ws_test

// The write-side API on the wire: streamed messages, uncompressed writes
// and prepared messages must produce frames a conforming peer decodes, in
// every mode, also when mixed with ordinary compressed writes (the peer's
// decompression history must stay in step with our compressor's).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/duplexhq/duplex/ws"
)

func TestConformanceWriteVariants(t *testing.T) {
	a := seriesText(0, 2000)
	b := seriesText(1, 3000)
	pm, err := ws.NewPreparedMessage(ws.MessageText, b)
	if err != nil {
		t.Fatalf("NewPreparedMessage: %v", err)
	}
	chunks := [][]byte{a[:1], a[1:700], {}, a[700:]}
	type sent struct {
		op      byte
		payload []byte
	}
	// The order matters: each message repeats text of the ones before, so
	// a compressor whose history diverged from the peer's shows up as a
	// corrupt or wrong message.
	want := []sent{
		{opText, a},                            // Write
		{opText, b},                            // WritePrepared
		{opText, a},                            // Write again: references a and b
		{opBinary, a},                          // WriteUncompressed
		{opText, b},                            // Write
		{opBinary, a},                          // Writer, in chunks
		{opText, b},                            // WritePrepared again
		{opText, append(bytes.Clone(a), b...)}, // Write
	}
	serve := func(ctx context.Context, c *ws.Conn) error {
		steps := []func() error{
			func() error { return c.Write(ctx, ws.MessageText, a) },
			func() error { return c.WritePrepared(ctx, pm) },
			func() error { return c.Write(ctx, ws.MessageText, a) },
			func() error { return c.WriteUncompressed(ctx, ws.MessageBinary, a) },
			func() error { return c.Write(ctx, ws.MessageText, b) },
			func() error {
				w, err := c.Writer(ctx, ws.MessageBinary)
				if err != nil {
					return err
				}
				for _, ch := range chunks {
					if _, err := w.Write(ch); err != nil {
						return err
					}
				}
				return w.Close()
			},
			func() error { return c.WritePrepared(ctx, pm) },
			func() error { return c.Write(ctx, ws.MessageText, append(bytes.Clone(a), b...)) },
		}
		for i, step := range steps {
			if err := step(); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
		}
		return echo(ctx, c)
	}
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: serve})
		for i, w := range want {
			if i == 3 {
				// WriteUncompressed: check the frame itself.
				f := pr.peer.readFrame()
				if f.rsv != 0 || f.op != w.op || !f.fin || !bytes.Equal(f.payload, w.payload) {
					t.Fatalf("WriteUncompressed sent %v", f)
				}
				continue
			}
			m := pr.peer.readMessage()
			if m.op != w.op || !bytes.Equal(m.payload, w.payload) {
				t.Fatalf("message %d: op %#x, %d bytes, want op %#x, %d bytes", i, m.op, len(m.payload), w.op, len(w.payload))
			}
		}
		pr.closeNormally()
	})
}

// TestConformanceReaderStream reads a fragmented message through Reader in
// small pieces.
func TestConformanceReaderStream(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			for {
				typ, r, err := c.Reader(ctx)
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				p := make([]byte, 7)
				for {
					n, err := r.Read(p)
					buf.Write(p[:n])
					if err != nil {
						if !errors.Is(err, io.EOF) {
							return err
						}
						break
					}
				}
				if err := c.Write(ctx, typ, buf.Bytes()); err != nil {
					return err
				}
			}
		}})
		for _, n := range []int{0, 1, 500, 70000} {
			pr.echoes(opText, testPayload(opText, n, 11), sendOpts{fragments: 5})
		}
		// An invalid byte still fails with 1007 through Reader.
		pr.peer.writeFrames(frame{op: opText, payload: []byte("ok")}, frame{fin: true, op: opCont, payload: []byte{0xff}})
		pr.failsWith(ws.StatusInvalidPayload, ws.ErrInvalidUTF8)
	})
}
