package client

import (
	"bytes"
	"encoding/json"
	"testing"
)

func checkAppendSend(t *testing.T, id, conv, cmid, body string, meta []byte) {
	t.Helper()
	norm, err := normalizeMeta(meta)
	if err != nil {
		if json.Valid(meta) {
			t.Fatalf("normalizeMeta(%q) refused valid JSON: %v", meta, err)
		}
		return
	}
	o := &outgoing{conv: conv, clientMsgID: cmid, body: body, meta: norm}
	got := o.appendSend(nil, id)
	want, err := json.Marshal(frame{Type: "send", ID: id, Conv: conv, ClientMsgID: cmid, Body: body, Meta: meta})
	if err != nil {
		t.Fatalf("json.Marshal: %v (normalizeMeta accepted %q)", err, meta)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendSend:\n got %s\nwant %s", got, want)
	}
}

func TestAppendSendMatchesMarshal(t *testing.T) {
	for _, tc := range []struct {
		conv, cmid, body string
		meta             string
	}{
		{"c_9f2", "m-7c1e", "hello", `{"reply_to":41}`},
		{"c", "x", "", `{"t":1}`},
		{"c", "x", "only body", ``},
		{"", "", "", ``},
		{"c", "x", "<b>&amp;</b> \"q\" \\ \n\r\t\b\f \x01 \x7f café 😀 \u2028\u2029 \xff\xfe", ` { "a" : [ 1 , "<&>\u2028" ] } `},
	} {
		checkAppendSend(t, "g1k", tc.conv, tc.cmid, tc.body, []byte(tc.meta))
	}
	if _, err := normalizeMeta(json.RawMessage(`{"a":`)); err == nil {
		t.Fatal("normalizeMeta accepted invalid JSON")
	}
}

// FuzzAppendSend: the append encoder writes exactly what encoding/json
// writes for the same send frame.
func FuzzAppendSend(f *testing.F) {
	f.Add("c_9f2", "m-7c1e", "hello <&> \u2028 \xff", []byte(`{"k": "v"}`))
	f.Add("", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, conv, cmid, body string, meta []byte) {
		checkAppendSend(t, "g42", conv, cmid, body, meta)
	})
}

func BenchmarkAppendSend(b *testing.B) {
	o := &outgoing{conv: "c_01JD8X3", clientMsgID: "9f86d081884c7d659a2feaa0c55ad015", body: "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", meta: json.RawMessage(`{"t":1763710000123456789}`)}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = o.appendSend(buf[:0], "g1k")
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f := frame{Type: "send", ID: "g1k", Conv: o.conv, ClientMsgID: o.clientMsgID, Body: o.body, Meta: o.meta}
			if _, err := json.Marshal(f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
