package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// decodeReference is Decode without the fast path: what Decode did before
// decodeFast existed, and what it must keep answering.
func decodeReference(frame []byte, maxFrame int, r *Request) error {
	if err := r.start(frame, maxFrame); err != nil {
		return err
	}
	if err := decodeReflect(frame, r); err != nil {
		return err
	}
	return r.check()
}

// sameDecode fails t unless Decode and the reference decoder agree on
// frame: the same error (code, id and message) or none, and the same
// request. It reports whether the fast path took the frame.
func sameDecode(t *testing.T, frame []byte) bool {
	t.Helper()
	var got, want Request
	errGot := Decode(frame, 4096, &got)
	errWant := decodeReference(frame, 4096, &want)
	var pg, pw *Error
	if errors.As(errGot, &pg) != errors.As(errWant, &pw) || (errGot == nil) != (errWant == nil) {
		t.Fatalf("Decode(%q) = %v, reference %v", frame, errGot, errWant)
	}
	if pg != nil && *pg != *pw {
		t.Fatalf("Decode(%q) = %+v, reference %+v", frame, *pg, *pw)
	}
	if errGot == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %+v, reference %+v", frame, got, want)
	}
	var fast Request
	if !decodeFast(frame, &fast) {
		return false
	}
	// Whatever the fast path takes, encoding/json must take too and read
	// the same way, whether or not the request then validates.
	var ref Request
	if err := decodeReflect(frame, &ref); err != nil {
		t.Fatalf("fast path took %q, which the reference refuses: %v", frame, err)
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Fatalf("fast path read %q as %+v, reference as %+v", frame, fast, ref)
	}
	return true
}

var fastDecodeSeeds = []string{
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"hi"}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"hi","meta":{"k":[1,2.5e3,-0,true,null,"\u00e9"]}}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","meta":null}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","meta":[1]}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00 é €"}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"\ud800"}`,
	"{\"type\":\"send\",\"id\":\"1\",\"conv\":\"c\",\"client_msg_id\":\"m1\",\"body\":\"\xff\"}",
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":5}`,
	`{"type":"send","id":"1","id":"2","conv":"c","client_msg_id":"m1","body":"x"}`,
	`{"TYPE":"send","Id":"1","conv":"c","client_msg_id":"m1","body":"x"}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","unknown":{"a":[{},[],"",0]}}`,
	` { "type" : "read" , "id" : "a" , "conv" : "c" , "seq" : 3 } `,
	`{"type":"read","id":"a","conv":"c","seq":-3}`,
	`{"type":"read","id":"a","conv":"c","seq":3.0}`,
	`{"type":"read","id":"a","conv":"c","seq":1e2}`,
	`{"type":"read","id":"a","conv":"c","seq":01}`,
	`{"type":"read","id":"a","conv":"c","seq":99999999999999999999}`,
	`{"type":"sync","id":"a","conv":"c","after":10,"limit":5}`,
	`{"type":"sync","id":"a","conv":"c","limit":9999999999}`,
	`{"type":"history","id":"a","conv":"c","before":10,"limit":5}`,
	`{"type":"typing","id":"a","conv":"c"}`,
	`{"type":"ping","id":"a"}`,
	`{"type":"ping","id":"a","future":true}`,
	`{"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`,
	`{"type":"ping","id":5}`,
	`{"type":"ping","id":null}`,
	`{"type":"ping"}`,
	`{"id":"a"}`,
	`{}`,
	`{"type":"explode","id":"a"}`,
	`{"type":"ping","id":"a"} x`,
	`{"type":"ping","id":"a",}`,
	`{"type":"ping" "id":"a"}`,
	`{"type":`,
	`[1,2]`, `"ping"`, `null`, ``, `{`, `}`,
	`{"type":"subscribe","id":"a","channel":"news:x","since":0}`,
	`{"type":"publish","id":"a","channel":"n","data":[1]}`,
	`{"type":"presence","id":"a","users":["u","v"]}`,
	`{"type":"create_direct","id":"a","peer":"bob"}`,
	`{"type":"create_group","id":"a","title":"t","members":["b"]}`,
	`{"type":"add_member","id":"a","conv":"c","user":"u"}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","meta":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","meta":{"a":"\u12"}}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","x":1.}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","x":-}`,
	`{"type":"send","id":"1","conv":"c","client_msg_id":"m1","body":"x","x":tru}`,
}

func TestDecodeFastMatchesReference(t *testing.T) {
	fast := 0
	for _, s := range fastDecodeSeeds {
		if sameDecode(t, []byte(s)) {
			fast++
		}
	}
	// The fast path must actually serve the everyday frames, not decline
	// everything (which would also match the reference).
	for _, s := range []string{
		`{"type":"send","id":"42","conv":"c_0123456789","client_msg_id":"m-000001","body":"hello there"}`,
		`{"type":"read","id":"a","conv":"c","seq":3}`,
		`{"type":"typing","id":"a","conv":"c"}`,
		`{"type":"ping","id":"a"}`,
		`{"type":"sync","id":"a","conv":"c","after":10,"limit":5}`,
	} {
		var r Request
		if !decodeFast([]byte(s), &r) {
			t.Errorf("fast path declined %s", s)
		}
	}
	if fast == 0 {
		t.Fatal("fast path took none of the seeds")
	}
}

// FuzzDecodeFastMatches is the differential test of the fast path: for any
// input, Decode answers exactly as the reflective decoder alone does.
func FuzzDecodeFastMatches(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		sameDecode(t, frame)
	})
}

func TestDecodeSendAllocs(t *testing.T) {
	frame := []byte(`{"type":"send","id":"42","conv":"c_0123456789","client_msg_id":"m-000001","body":"hello there, how are you doing today?"}`)
	var r Request
	allocs := testing.AllocsPerRun(100, func() {
		if err := Decode(frame, 0, &r); err != nil {
			t.Fatal(err)
		}
	})
	// One allocation holds every string of the request.
	if allocs > 1 {
		t.Fatalf("Decode of a send: %v allocations, want at most 1", allocs)
	}
}

// BenchmarkDecodeSendReference is BenchmarkDecodeSend through the
// reflective decoder alone, for comparison.
func BenchmarkDecodeSendReference(b *testing.B) {
	frame := []byte(`{"type":"send","id":"42","conv":"c_0123456789","client_msg_id":"m-000001","body":"hello there, how are you doing today?"}`)
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeReference(frame, 0, &r); err != nil {
			b.Fatal(err)
		}
	}
}
