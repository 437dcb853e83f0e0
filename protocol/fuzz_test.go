package protocol

import (
	"errors"
	"testing"
)

// FuzzDecode checks that no input panics Decode and that every refusal is a
// *Error with a known code, and every accepted request has a type and id.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"hi","meta":{"k":[1,2]}}`,
		`{"type":"sync","id":"2","conv":"c","after":5,"limit":10}`,
		`{"type":"subscribe","id":"3","channel":"news:x","since":0}`,
		`{"type":"publish","id":"4","channel":"n","data":{"a":"\u00e9"}}`,
		`{"type":"presence","id":"5","users":["a","b"]}`,
		`{"type":"create_group","id":"6","title":"t","members":["a"]}`,
		`{"type":1}`, `[]`, `null`, `{"id":"x"}`, `{"type":"send","id":"1","meta":null}`,
	} {
		f.Add([]byte(s))
	}
	known := map[Code]bool{CodeBadRequest: true, CodeUnknownType: true, CodeInvalidJSON: true,
		CodeMissingField: true, CodeTooLarge: true}
	var r Request
	f.Fuzz(func(t *testing.T, frame []byte) {
		err := Decode(frame, 4096, &r)
		if err == nil {
			if r.Type == "" || r.ID == "" {
				t.Fatalf("accepted frame without type or id: %q", frame)
			}
			return
		}
		var pe *Error
		if !errors.As(err, &pe) || !known[pe.Code] {
			t.Fatalf("Decode(%q) = %v: not a *Error with a decode code", frame, err)
		}
	})
}
