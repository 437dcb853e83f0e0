package ws_test

// The closing handshake (RFC 6455 sections 5.5.1, 7 and 7.4).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/ws"
)

// validCodes may appear in a close frame (RFC 6455 section 7.4.1 and 7.4.2:
// 1000-1003, 1007-1011 defined; 3000-4999 registered or private).
var validCodes = []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}

// invalidCodes must never appear on the wire: reserved, local-only or
// outside every range.
var invalidCodes = []int{0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}

func TestConformanceCloseValidCodes(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		for _, code := range validCodes {
			t.Run(fmt.Sprint(code), func(t *testing.T) {
				pr := h.start(t, config{})
				reason := "reason é " + fmt.Sprint(code)
				pr.peer.writeFrame(frame{fin: true, op: opClose, payload: closePayload(code, reason)})
				pr.peer.expectClose(code)
				if pr.peer.client {
					pr.peer.expectEOF()
				} else {
					pr.peer.nc.Close()
				}
				err := pr.wantResult(ws.StatusCode(code))
				var ce *ws.CloseError
				if errors.As(err, &ce) && ce.Reason != reason {
					t.Errorf("CloseError.Reason %q, want %q", ce.Reason, reason)
				}
			})
		}
	})
}

func TestConformanceCloseInvalid(t *testing.T) {
	var cases []failCase
	for _, code := range invalidCodes {
		cases = append(cases, failCase{name: fmt.Sprint(code), frames: []frame{{fin: true, op: opClose, payload: closePayload(code, "")}}, code: 1002, errIs: ws.ErrProtocol})
	}
	cases = append(cases,
		failCase{name: "oneByte", frames: []frame{{fin: true, op: opClose, payload: []byte{0x03}}}, code: 1002, errIs: ws.ErrProtocol},
		failCase{name: "badUTF8Reason", frames: []frame{{fin: true, op: opClose, payload: closePayload(1000, "ok\xff")}}, code: 1007, errIs: ws.ErrInvalidUTF8},
		failCase{name: "surrogateReason", frames: []frame{{fin: true, op: opClose, payload: closePayload(1000, "\xed\xa0\x80")}}, code: 1007, errIs: ws.ErrInvalidUTF8},
	)
	runFailCases(t, cases)
}

func TestConformanceCloseEmpty(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		pr.peer.writeFrame(frame{fin: true, op: opClose})
		f := pr.peer.readFrame()
		code, _, err := parseClose(f.payload)
		if f.op != opClose || err != nil || (code != -1 && code != 1000) {
			t.Fatalf("empty close answered with %v code %d (%v), want empty close or 1000", f, code, err)
		}
		if pr.peer.client {
			pr.peer.expectEOF()
		} else {
			pr.peer.nc.Close()
		}
		pr.wantResult(ws.StatusNoStatusRcvd)
	})
}

// TestConformanceCloseInsideMessage: a close frame may arrive between the
// fragments of a message; it is answered and the partial message dropped.
func TestConformanceCloseInsideMessage(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		pr.peer.writeFrames(frame{op: opText, payload: []byte("partial")}, frame{fin: true, op: opClose, payload: closePayload(1001, "")})
		pr.peer.expectClose(1001)
		if pr.peer.client {
			pr.peer.expectEOF()
		} else {
			pr.peer.nc.Close()
		}
		pr.wantResult(ws.StatusGoingAway)
	})
}

// TestConformanceCloseFromUs: Close(code, reason) sends exactly that, waits
// for the peer's answer, and then the TCP connection ends.
func TestConformanceCloseFromUs(t *testing.T) {
	for _, tc := range []struct {
		code   ws.StatusCode
		reason string
	}{
		{1000, ""},
		{1001, "going away"},
		{1011, "oops"},
		{4999, strings.Repeat("é", 61) + "x"}, // 123 bytes, the most a reason can have
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			forEach(t, func(t *testing.T, h harness) {
				pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
					return c.Close(tc.code, tc.reason)
				}})
				if reason := pr.peer.expectClose(int(tc.code)); reason != tc.reason {
					t.Fatalf("close reason %q, want %q", reason, tc.reason)
				}
				// Close must wait for the peer's close frame.
				time.Sleep(50 * time.Millisecond)
				select {
				case err := <-pr.done:
					pr.done <- err
					t.Fatalf("Close returned (%v) before the peer answered", err)
				default:
				}
				pr.peer.finishClose(int(tc.code))
				pr.wantNil()
			})
		})
	}
}

// TestConformanceCloseInvalidFromUs: Close refuses codes and reasons that
// must not be sent, sends nothing, and leaves the connection usable.
func TestConformanceCloseInvalidFromUs(t *testing.T) {
	type bad struct {
		code   ws.StatusCode
		reason string
	}
	var cases []bad
	for _, c := range invalidCodes {
		cases = append(cases, bad{ws.StatusCode(c), ""})
	}
	cases = append(cases, bad{1000, strings.Repeat("x", 124)}, bad{1000, "bad\xff"})
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			for _, b := range cases {
				if err := c.Close(b.code, b.reason); !errors.Is(err, ws.ErrInvalidClose) {
					return fmt.Errorf("Close(%d, %q) = %v, want ErrInvalidClose", b.code, b.reason, err)
				}
			}
			return c.Close(ws.StatusNormalClosure, "done")
		}})
		// The first frame must be the valid close: nothing was sent before.
		f := pr.peer.readFrame()
		code, reason, _ := parseClose(f.payload)
		if f.op != opClose || code != 1000 || reason != "done" {
			t.Fatalf("first frame %v code %d %q, want close 1000 \"done\"", f, code, reason)
		}
		pr.peer.finishClose(1000)
		pr.wantNil()
	})
}

// TestConformanceWriteAfterClose: once our side sent its close frame, it
// sends no more data frames, and writes fail with ErrClosed.
func TestConformanceWriteAfterClose(t *testing.T) {
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
				return err
			}
			if err := c.Write(ctx, ws.MessageText, []byte("late")); !errors.Is(err, ws.ErrClosed) {
				return fmt.Errorf("Write after Close = %v, want ErrClosed", err)
			}
			return nil
		}})
		pr.peer.expectClose(1000)
		pr.peer.finishClose(1000)
		pr.wantNil()
	})
}

// TestConformanceDataAfterPeerClose: frames after the peer's close frame
// are ignored (RFC 6455 section 5.5.1: the close frame is the last one).
func TestConformanceDataAfterPeerClose(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{})
		pr.peer.writeFrames(
			frame{fin: true, op: opClose, payload: closePayload(1000, "")},
			frame{fin: true, op: opText, payload: []byte("ignored")},
			frame{fin: true, op: opPing, payload: []byte("ignored")},
		)
		pr.peer.expectClose(1000)
		if pr.peer.client {
			pr.peer.expectEOF()
		} else {
			pr.peer.nc.Close()
		}
		pr.wantResult(ws.StatusNormalClosure)
	})
}

// TestConformanceSimultaneousClose: both ends send a close frame at once
// (RFC 6455 section 7.1.3 allows it); Close still completes cleanly.
func TestConformanceSimultaneousClose(t *testing.T) {
	forEach(t, func(t *testing.T, h harness) {
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			return c.Close(ws.StatusGoingAway, "")
		}})
		pr.peer.writeFrame(frame{fin: true, op: opClose, payload: closePayload(1000, "")})
		// Our side's own close (1001) crossed ours; it must not send a
		// second close frame.
		f := pr.peer.readFrame()
		if code, _, _ := parseClose(f.payload); f.op != opClose || (code != 1001 && code != 1000) {
			t.Fatalf("got %v code %d, want one close frame", f, code)
		}
		if pr.peer.client {
			pr.peer.expectEOF()
		} else {
			pr.peer.nc.Close()
		}
		pr.wantNil()
	})
}

// TestConformanceCloseUnansweredPeer: Close against a peer that never
// answers still returns and closes the TCP connection, after its timeout.
func TestConformanceCloseUnansweredPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the close timeout")
	}
	forEachSide(t, modes[0], func(t *testing.T, h harness) {
		t.Parallel() // both roles wait out the same timeout together
		pr := h.start(t, config{serve: func(ctx context.Context, c *ws.Conn) error {
			return c.Close(ws.StatusNormalClosure, "")
		}})
		pr.peer.expectClose(1000)
		// Say nothing; our side must give up and close TCP.
		pr.peer.timeout = 4 * ioTimeout
		pr.peer.expectEOF()
		select {
		case err := <-pr.done:
			pr.done <- err
			t.Logf("Close returned %v", err)
		case <-time.After(ioTimeout):
			t.Fatal("Close did not return after closing the connection")
		}
	})
}
