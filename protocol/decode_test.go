package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		code  Code   // "" = accepted
		id    string // id expected on the error
	}{
		{"send", `{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"hi"}`, "", ""},
		{"send meta only", `{"type":"send","id":"1","conv":"c","client_msg_id":"m1","meta":{"a":1}}`, "", ""},
		{"send meta null", `{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","meta":null}`, "", ""},
		{"send meta array", `{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","meta":[1]}`, CodeBadRequest, "1"},
		{"send no body", `{"type":"send","id":"1","conv":"c","client_msg_id":"m1"}`, CodeMissingField, "1"},
		{"send no conv", `{"type":"send","id":"1","client_msg_id":"m1","body":"x"}`, CodeMissingField, "1"},
		{"send no client id", `{"type":"send","id":"1","conv":"c","body":"x"}`, CodeMissingField, "1"},
		{"body wrong type", `{"type":"send","id":"7","conv":"c","client_msg_id":"m","body":5}`, CodeBadRequest, "7"},
		{"id wrong type", `{"type":"ping","id":5}`, CodeBadRequest, ""},
		{"type wrong type", `{"type":1,"id":"a"}`, CodeBadRequest, "a"},
		{"missing type", `{"id":"a"}`, CodeMissingField, "a"},
		{"missing id", `{"type":"ping"}`, CodeMissingField, ""},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`, CodeBadRequest, ""},
		{"unknown type", `{"type":"explode","id":"a"}`, CodeUnknownType, "a"},
		{"not json", `{"type":`, CodeInvalidJSON, ""},
		{"trailing garbage", `{"type":"ping","id":"a"} x`, CodeInvalidJSON, ""},
		{"array", `[1,2]`, CodeBadRequest, ""},
		{"string", `"ping"`, CodeBadRequest, ""},
		{"null", `null`, CodeBadRequest, ""},
		{"empty", ``, CodeInvalidJSON, ""},
		{"too large", `{"type":"ping","id":"a","pad":"` + strings.Repeat("x", 200) + `"}`, CodeTooLarge, ""},
		{"unknown field ignored", `{"type":"ping","id":"a","future":true}`, "", ""},
		{"sync", `{"type":"sync","id":"a","conv":"c","after":10}`, "", ""},
		{"sync negative", `{"type":"sync","id":"a","conv":"c","after":-1}`, CodeBadRequest, "a"},
		{"sync float", `{"type":"sync","id":"a","conv":"c","after":1.5}`, CodeBadRequest, "a"},
		{"history", `{"type":"history","id":"a","conv":"c","before":10,"limit":5}`, "", ""},
		{"read", `{"type":"read","id":"a","conv":"c","seq":3}`, "", ""},
		{"read zero", `{"type":"read","id":"a","conv":"c"}`, CodeMissingField, "a"},
		{"typing", `{"type":"typing","id":"a","conv":"c"}`, "", ""},
		{"subscribe", `{"type":"subscribe","id":"a","channel":"news:x","since":0}`, "", ""},
		{"subscribe negative", `{"type":"subscribe","id":"a","channel":"news:x","since":-2}`, CodeBadRequest, "a"},
		{"subscribe since string", `{"type":"subscribe","id":"a","channel":"n","since":"0"}`, CodeBadRequest, "a"},
		{"unsubscribe", `{"type":"unsubscribe","id":"a","channel":"n"}`, "", ""},
		{"publish", `{"type":"publish","id":"a","channel":"n","data":[1]}`, "", ""},
		{"publish no data", `{"type":"publish","id":"a","channel":"n"}`, CodeMissingField, "a"},
		{"publish null data", `{"type":"publish","id":"a","channel":"n","data":null}`, CodeMissingField, "a"},
		{"presence", `{"type":"presence","id":"a","users":["u","v"]}`, "", ""},
		{"presence empty", `{"type":"presence","id":"a","users":[]}`, CodeMissingField, "a"},
		{"presence wrong elem", `{"type":"presence","id":"a","users":[1]}`, CodeBadRequest, "a"},
		{"presence empty elem", `{"type":"presence","id":"a","users":[""]}`, CodeBadRequest, "a"},
		{"conversations", `{"type":"conversations","id":"a"}`, "", ""},
		{"create_direct", `{"type":"create_direct","id":"a","peer":"bob"}`, "", ""},
		{"create_direct no peer", `{"type":"create_direct","id":"a"}`, CodeMissingField, "a"},
		{"create_group", `{"type":"create_group","id":"a","title":"t","members":["b"]}`, "", ""},
		{"create_group long title", `{"type":"create_group","id":"a","title":"` + strings.Repeat("t", 201) + `"}`, CodeTooLarge, "a"},
		{"add_member", `{"type":"add_member","id":"a","conv":"c","user":"u"}`, "", ""},
		{"remove_member no user", `{"type":"remove_member","id":"a","conv":"c"}`, CodeMissingField, "a"},
		{"ping", ` {"type":"ping","id":"a"}`, "", ""},
	}
	var r Request
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := 0
			if tt.name == "too large" {
				max = 100
			}
			err := Decode([]byte(tt.frame), max, &r)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode error = %v, want *Error with code %s", err, tt.code)
			}
			if pe.Code != tt.code || pe.ID != tt.id {
				t.Fatalf("Decode = (%s, id %q) %v; want (%s, id %q)", pe.Code, pe.ID, pe, tt.code, tt.id)
			}
		})
	}
}

func TestDecodeReuseClearsFields(t *testing.T) {
	var r Request
	if err := Decode([]byte(`{"type":"send","id":"1","conv":"c","client_msg_id":"m","body":"b","meta":{"x":1}}`), 0, &r); err != nil {
		t.Fatal(err)
	}
	if err := Decode([]byte(`{"type":"ping","id":"2"}`), 0, &r); err != nil {
		t.Fatal(err)
	}
	if r.Conv != "" || r.Body != "" || r.Meta != nil || r.ID != "2" {
		t.Fatalf("stale fields after reuse: %+v", r)
	}
}

func TestEncodeError(t *testing.T) {
	got := string(EncodeError("9", CodeNotFound, `no "such" conversation`))
	want := `{"type":"error","id":"9","code":"not_found","message":"no \"such\" conversation"}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func BenchmarkDecodeSend(b *testing.B) {
	frame := []byte(`{"type":"send","id":"42","conv":"c_0123456789","client_msg_id":"m-000001","body":"hello there, how are you doing today?"}`)
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(frame, 0, &r); err != nil {
			b.Fatal(err)
		}
	}
}
