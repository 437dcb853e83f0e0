package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

// sameEncoding fails t unless the append encoders write exactly what
// Encode (encoding/json) writes for the same frames.
func sameEncoding(t *testing.T, s string, n int64, meta []byte, dup bool) {
	t.Helper()
	ack := Ack{Type: TypeAck, ID: s, Conv: s + "c", Seq: n, ClientMsgID: "m" + s, TS: -n, Duplicate: dup}
	want, err := Encode(ack)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendAck([]byte("x"), &ack); !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("AppendAck(%+v)\n got %s\nwant %s", ack, got[1:], want)
	}
	ev := MessageEvent{Type: TypeMessage, Message: Message{Conv: s, Seq: n, Sender: s + "s", ClientMsgID: s, Body: s + s, Meta: meta, TS: n}}
	want, wantErr := Encode(ev)
	got, gotErr := AppendMessageEvent(nil, &ev)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("AppendMessageEvent(%+v) error %v, Encode error %v", ev, gotErr, wantErr)
	}
	if wantErr == nil && !bytes.Equal(got, want) {
		t.Fatalf("AppendMessageEvent(%+v)\n got %s\nwant %s", ev, got, want)
	}
}

var encodeSeeds = []string{
	"", "hello", `a"b\c`, "<script>&amp;</script>", "\b\f\n\r\t\x00\x01\x1f\x7f",
	"é€😀", "\u2028\u2029", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "\ufffd",
}

func TestAppendEncodersMatchEncode(t *testing.T) {
	for _, s := range encodeSeeds {
		for _, meta := range []string{"", `{"t":1763710000123456789}`, "{\"a\":\"\u2028\"}", "{\"a\":\"\u00e9\u2029\"}", `{"a":[1, 2],  "b":"<&>\u2028"}`, " {\"x\":\"\u2028\"} ", `{"a":`, `null`} {
			sameEncoding(t, s, 42, []byte(meta), false)
			sameEncoding(t, s, -1<<63, []byte(meta), true)
		}
	}
}

func FuzzAppendEncoders(f *testing.F) {
	for _, s := range encodeSeeds {
		f.Add(s, int64(7), []byte(`{"k":"<v>"}`), true)
	}
	f.Fuzz(func(t *testing.T, s string, n int64, meta []byte, dup bool) {
		if len(meta) > 0 && !json.Valid(meta) {
			meta = nil // chat only stores meta that is valid JSON
		}
		sameEncoding(t, s, n, meta, dup)
	})
}

func TestAppendAckAllocs(t *testing.T) {
	a := Ack{Type: TypeAck, ID: "42", Conv: "c_0123456789", Seq: 12345, ClientMsgID: "m-000001", TS: 1763710000123}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendAck(buf[:0], &a) }); n != 0 {
		t.Fatalf("AppendAck into a large enough buffer: %v allocations, want 0", n)
	}
}

func BenchmarkAppendMessageEvent(b *testing.B) {
	ev := MessageEvent{Type: TypeMessage, Message: Message{Conv: "c_0123456789", Seq: 12345, Sender: "bench-user-0001",
		ClientMsgID: "m-000001", Body: "hello there, how are you doing today? a sixty-four byte body....", TS: 1763710000123,
		Meta: []byte(`{"t":1763710000123456789}`)}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendMessageEvent(buf[:0], &ev)
	}
}

func BenchmarkEncodeMessageEvent(b *testing.B) {
	ev := MessageEvent{Type: TypeMessage, Message: Message{Conv: "c_0123456789", Seq: 12345, Sender: "bench-user-0001",
		ClientMsgID: "m-000001", Body: "hello there, how are you doing today? a sixty-four byte body....", TS: 1763710000123}}
	b.ReportAllocs()
	for b.Loop() {
		Encode(ev)
	}
}

// TestNormalizeRawJSONKeepsPlain: meta already in encoding/json's form
// (non-ASCII such as U+2014, whose UTF-8 also starts with 0xE2, included)
// comes back as the same slice; U+2028 is escaped.
func TestNormalizeRawJSONKeepsPlain(t *testing.T) {
	plain := json.RawMessage("{\"a\":\"x\u2014y\u20ac\"}")
	got, err := NormalizeRawJSON(plain)
	if err != nil || len(got) == 0 || &got[0] != &plain[0] || len(got) != len(plain) {
		t.Fatalf("NormalizeRawJSON(%q) = %q, %v; want the input itself", plain, got, err)
	}
	sep := json.RawMessage("{\"a\":\"\u2028\"}")
	got, err = NormalizeRawJSON(sep)
	if want, _ := json.Marshal(sep); err != nil || string(got) != string(want) {
		t.Fatalf("NormalizeRawJSON(%q) = %q, %v; want %q", sep, got, err, want)
	}
}
