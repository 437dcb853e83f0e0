package ws_test

// The read limit (1009, RFC 6455 section 7.4.1), including decompression
// bombs under permessage-deflate.

import (
	"bytes"
	"compress/flate"
	"context"
	"testing"

	"github.com/duplexhq/duplex/ws"
)

const testLimit = 4096

func TestConformanceReadLimit(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		t.Run("atLimit", func(t *testing.T) {
			pr := h.start(t, config{readLimit: testLimit})
			pr.echoes(opBinary, testPayload(opBinary, testLimit, 9), sendOpts{})
			pr.echoes(opText, testPayload(opText, testLimit, 9), sendOpts{fragments: 4})
			pr.closeNormally()
		})
		t.Run("oneFrameOver", func(t *testing.T) {
			pr := h.start(t, config{readLimit: testLimit})
			pr.peer.sendMessage(opBinary, testPayload(opBinary, testLimit+1, 9), sendOpts{})
			pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
		})
		t.Run("fragmentsOver", func(t *testing.T) {
			pr := h.start(t, config{readLimit: testLimit})
			pr.peer.sendMessage(opText, testPayload(opText, testLimit+10, 9), sendOpts{fragments: 5})
			pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
		})
		t.Run("headerOnly", func(t *testing.T) {
			// A frame header announcing too much fails before the payload:
			// the 1009 must come with only the header sent.
			pr := h.start(t, config{readLimit: testLimit})
			hdr := appendFrame(nil, frame{fin: true, op: opBinary, payload: make([]byte, 1<<20)}, pr.peer.client)
			pr.peer.write(hdr[:len(hdr)-(1<<20)])
			pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
		})
		if !h.compressed() {
			return
		}
		t.Run("bomb", func(t *testing.T) {
			// 2 MiB of zeros deflate to a few KiB: the limit applies to
			// the inflated size.
			pr := h.start(t, config{readLimit: testLimit})
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestCompression)
			fw.Write(make([]byte, 2<<20))
			fw.Flush()
			body := bytes.TrimSuffix(buf.Bytes(), deflateTail)
			if len(body) >= testLimit {
				t.Fatalf("test bug: compressed bomb is %d bytes", len(body))
			}
			pr.peer.writeFrame(frame{fin: true, rsv: bitRSV1, op: opBinary, payload: body})
			pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
		})
		t.Run("compressedNoFin", func(t *testing.T) {
			// Incompressible data in compressed fragments that never end:
			// the limit must hold while the message is still arriving, or a
			// peer can make us buffer without bound.
			pr := h.start(t, config{readLimit: testLimit})
			body := pr.peer.deflate.compress(testPayload(opBinary, 4*testLimit, 10))
			q := len(body) / 4
			pr.peer.writeFrames(
				frame{rsv: bitRSV1, op: opBinary, payload: body[:q]},
				frame{op: opCont, payload: body[q : 2*q]},
				frame{op: opCont, payload: body[2*q : 3*q]},
			)
			pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
		})
		t.Run("bombFragmented", func(t *testing.T) {
			pr := h.start(t, config{readLimit: testLimit})
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestCompression)
			fw.Write(make([]byte, 1<<20))
			fw.Flush()
			body := bytes.TrimSuffix(buf.Bytes(), deflateTail)
			half := len(body) / 2
			pr.peer.writeFrames(frame{rsv: bitRSV1, op: opText, payload: body[:half]}, frame{fin: true, op: opCont, payload: body[half:]})
			pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
		})
	})
}

// TestConformanceSetReadLimit: SetReadLimit changes the limit for later
// messages.
func TestConformanceSetReadLimit(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			c.SetReadLimit(100)
			return echo(ctx, c)
		}})
		pr.echoes(opBinary, make([]byte, 100), sendOpts{})
		pr.peer.sendMessage(opBinary, make([]byte, 101), sendOpts{})
		pr.failsWith(ws.StatusMessageTooBig, ws.ErrMessageTooBig)
	})
}
