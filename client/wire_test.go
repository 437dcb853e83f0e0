package client

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/duplexhq/duplex/protocol"
	"github.com/duplexhq/duplex/ws"
)

// frames the server sends on every message, as it encodes them, plus
// shapes another encoder could produce.
var hotFrames = []string{
	`{"type":"ack","id":"g1k","conv":"c_9f2","seq":42,"client_msg_id":"m-7c1e","ts":1763710000123}`,
	`{"type":"ack","id":"g1k","conv":"c_9f2","seq":42,"client_msg_id":"m-7c1e","ts":1763710000123,"duplicate":true}`,
	`{"type":"message","conv":"c_9f2","seq":43,"sender":"bob","client_msg_id":"b-19","body":"hey","meta":{"k":"v"},"ts":1763710000456}`,
	`{"type":"message","conv":"c_9f2","seq":43,"sender":"bob","client_msg_id":"b-19","body":"caf\u00e9 \u003cb\u003e \ud83d\ude00 \"q\" \\ \/ \n\t","ts":1}`,
	`{"type":"message","conv":"c","seq":1,"sender":"b","client_msg_id":"x","body":"café 😀","meta":{"t":[1,2.5e-3,{"a":null,"b":[true,false]}]},"ts":1}`,
	` { "ts" : -0 , "seq":9007199254740993, "type" : "message" , "body":"" , "x": {"nested":[1,"two",{}]} } `,
	`{"type":"sync.end","id":"g2","conv":"c_9f2","seq":42,"more":false}`,
	`{"type":"sync.end","id":"g2","conv":"c_9f2","seq":42,"more":true}`,
	`{"type":"result","id":"g3","data":{"conversation":{"id":"c1","kind":"direct","members":["a","b"],"last_seq":0}}}`,
	`{"type":"error","id":"g4","code":"rate_limited","message":"slow down"}`,
	`{"type":"receipt","conv":"c_9f2","user":"bob","seq":43}`,
	`{"type":"typing","conv":"c_9f2","user":"bob","ttl_ms":5000}`,
	`{}`,
}

func TestDecodeFrameFastPath(t *testing.T) {
	var d frameDecoder
	for _, s := range hotFrames {
		var f wireFrame
		if !d.decode([]byte(s), &f) {
			t.Errorf("decode(%s) fell back to encoding/json", s)
		}
	}
	var f wireFrame
	if !d.decode([]byte(hotFrames[3]), &f) || string(f.body) != "café <b> 😀 \"q\" \\ / \n\t" {
		t.Errorf("escaped body = %q", f.body)
	}
}

// Frames the decoder must leave to encoding/json: it would either refuse
// them or decode them in a way the fast path does not model.
func TestDecodeFrameFallsBack(t *testing.T) {
	var d frameDecoder
	for _, s := range []string{
		`{"type":"ack","seq":1.5}`, // not an int64
		`{"type":"ack","seq":1e3}`, // not an int64
		`{"type":"ack","seq":99999999999999999999}`,
		`{"type":"ack","seq":"1"}`,         // wrong type
		`{"Type":"ack"}`,                   // case-insensitive match
		`{"tſ":1}`,                         // folds onto "ts"
		`{"typ\u0065":"ack"}`,              // escaped key
		`{"type":"message","body":"\xff"}`, // invalid UTF-8 is replaced
		`{"type":"ack"} x`,                 // trailing data
		`{"type":"ack",}`,                  // invalid
		`{"type":"ack","x":[1,]}`,          // invalid in a skipped value
		`{"type":"ack","x":"\q"}`,          // bad escape
		`["ack"]`,                          // not an object
		`{"type":"ack","more":1}`,          // not a bool
	} {
		var f wireFrame
		if d.decode([]byte(s), &f) {
			t.Errorf("decode(%s) = true, want a fallback", s)
		}
	}
}

// FuzzDecodeFrame: whenever the fast decoder accepts a frame, encoding/json
// accepts it too and decodes it into every frame type the reader builds
// from it with exactly the same values.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range hotFrames {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"message","body":"\ud83d","conv":"\ud83dx\u0041"}`))
	f.Add([]byte(`{"seq":null,"seq":3,"ts":null,"more":null,"meta":null}`))
	f.Add([]byte(`{"meta":1,"meta":"x","id":"a","id":"b"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		var d frameDecoder
		var w wireFrame
		if !d.decode(p, &w) {
			return
		}
		check := func(name string, v any, want any) {
			t.Helper()
			if err := json.Unmarshal(p, v); err != nil {
				t.Fatalf("fast decoder accepted %q, encoding/json into %s: %v", p, name, err)
			}
			got := reflect.ValueOf(v).Elem().Interface()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q as %s:\nencoding/json %#v\nfast          %#v", p, name, got, want)
			}
		}
		check("Ack", new(protocol.Ack), protocol.Ack{Type: string(w.typ), ID: string(w.id), Conv: string(w.conv),
			Seq: w.seq, ClientMsgID: string(w.clientMsgID), TS: w.ts, Duplicate: w.dup})
		var meta json.RawMessage
		if w.meta != nil {
			meta = bytes.Clone(w.meta)
		}
		check("Message", new(protocol.Message), protocol.Message{Conv: string(w.conv), Seq: w.seq,
			Sender: string(w.sender), ClientMsgID: string(w.clientMsgID), Body: string(w.body), Meta: meta, TS: w.ts})
		check("SyncEnd", new(protocol.SyncEnd), protocol.SyncEnd{Type: string(w.typ), ID: string(w.id),
			Conv: string(w.conv), Seq: w.seq, More: w.more})
		check("ErrorFrame", new(protocol.ErrorFrame), protocol.ErrorFrame{Type: string(w.typ), ID: string(w.id),
			Code: protocol.Code(w.code), Message: string(w.message)})
		check("Receipt", new(protocol.Receipt), protocol.Receipt{Type: string(w.typ), Conv: string(w.conv),
			User: string(w.user), Seq: w.seq})
		check("Typing", new(protocol.Typing), protocol.Typing{Type: string(w.typ), Conv: string(w.conv),
			User: string(w.user), TTLMS: w.ttlMS})
	})
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, bc := range []struct{ name, frame string }{
		{"ack", hotFrames[0]},
		{"message", hotFrames[2]},
	} {
		p := []byte(bc.frame)
		b.Run("fast/"+bc.name, func(b *testing.B) {
			var d frameDecoder
			var f wireFrame
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if !d.decode(p, &f) {
					b.Fatal("fell back")
				}
			}
		})
		b.Run("encoding-json/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() { // the reader's old path: the head, then the typed frame
				var head inbound
				var m protocol.Message
				if json.Unmarshal(p, &head) != nil || json.Unmarshal(p, &m) != nil {
					b.Fatal("decode")
				}
			}
		})
	}
}

// BenchmarkHandleMessage: a message frame from the server, decoded,
// ordered by the tracker and handed to OnEvent: the receiving side of
// every delivery. Its allocations are what the event carries (the
// Message, one string for client_msg_id and body, the meta).
func BenchmarkHandleMessage(b *testing.B) {
	c := New(Options{URL: "ws://x", Token: "t", OnEvent: func(Event) {}})
	attempt := 0
	var frame []byte
	seq := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		frame = append(frame[:0], `{"type":"message","conv":"c_01JD8X3","seq":`...)
		frame = strconv.AppendInt(frame, seq, 10)
		frame = append(frame, `,"sender":"bench-1","client_msg_id":"9f86d081884c7d659a2feaa0c55ad015","body":"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl","meta":{"t":1763710000123456789},"ts":1763710000123}`...)
		if err := c.handle(context.Background(), nil, ws.MessageText, frame, &attempt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendAck: a send queued with SendFunc and its ack from the
// server handled (no I/O: the client is not connected, so nothing is
// written): the sending side of every message. Allocations: the queued
// send, and the ack event together with the sender's own message.
func BenchmarkSendAck(b *testing.B) {
	c := New(Options{URL: "ws://x", Token: "t", OnEvent: func(Event) {}})
	attempt := 0
	done := func(SendResult) {}
	meta := json.RawMessage(`{"t":1763710000123456789}`)
	var frame []byte
	seq := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		if err := c.SendFunc("c_01JD8X3", "9f86d081884c7d659a2feaa0c55ad015", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", meta, done); err != nil {
			b.Fatal(err)
		}
		c.queue[0].lastID = "g1" // the request id flushLocked gives it
		frame = append(frame[:0], `{"type":"ack","id":"g1","conv":"c_01JD8X3","seq":`...)
		frame = strconv.AppendInt(frame, seq, 10)
		frame = append(frame, `,"client_msg_id":"9f86d081884c7d659a2feaa0c55ad015","ts":1763710000123}`...)
		if err := c.handle(context.Background(), nil, ws.MessageText, frame, &attempt); err != nil {
			b.Fatal(err)
		}
	}
	if c.Pending() != 0 {
		b.Fatalf("%d sends left queued", c.Pending())
	}
}
