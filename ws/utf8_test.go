package ws

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUTF8Classes(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		valid bool
	}{
		{"empty", "", true},
		{"ascii", "Hello, world", true},
		{"ascii long", strings.Repeat("abcdefgh", 9) + "x", true},
		{"2-byte", "\u00e9t\u00e9", true},
		{"3-byte", "\u20ac \uffff", true},
		{"4-byte", "\U0001F600 \U0010FFFF", true},
		{"greek kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true},
		{"boundary U+D7FF", "\xed\x9f\xbf", true},
		{"boundary U+E000", "\xee\x80\x80", true},
		{"overlong 2-byte C0", "\xc0\xaf", false},
		{"overlong 2-byte C1", "\xc1\xbf", false},
		{"overlong 3-byte", "\xe0\x80\xaf", false},
		{"overlong 3-byte max", "\xe0\x9f\xbf", false},
		{"overlong 4-byte", "\xf0\x80\x80\xaf", false},
		{"overlong 4-byte max", "\xf0\x8f\xbf\xbf", false},
		{"surrogate low", "\xed\xa0\x80", false},
		{"surrogate high", "\xed\xbf\xbf", false},
		{"above U+10FFFF", "\xf4\x90\x80\x80", false},
		{"F5 lead", "\xf5\x80\x80\x80", false},
		{"FF", "a\xff", false},
		{"FE", "\xfe", false},
		{"stray continuation", "a\x80b", false},
		{"truncated 2-byte", "\xc3", false},
		{"truncated 3-byte", "\xe2\x82", false},
		{"truncated 4-byte", "\xf0\x9f\x98", false},
		{"lead then ascii", "\xe2a\x82", false},
		{"bad after ascii run", strings.Repeat("a", 17) + "\xc0\x80", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validUTF8([]byte(tt.in)); got != tt.valid {
				t.Fatalf("validUTF8(%q) = %v, want %v", tt.in, got, tt.valid)
			}
			if utf8.ValidString(tt.in) != tt.valid {
				t.Fatalf("test table disagrees with unicode/utf8")
			}
			// Any split into two writes gives the same verdict.
			for i := 0; i <= len(tt.in); i++ {
				var s utf8State
				ok := s.write([]byte(tt.in[:i])) && s.write([]byte(tt.in[i:])) && s.complete()
				if ok != tt.valid {
					t.Fatalf("split at %d: got %v", i, ok)
				}
			}
		})
	}
}

// TestUTF8FailsAtFirstBadByte: a prefix that cannot be completed is refused
// when its bad byte arrives, not at the end of the message.
func TestUTF8FailsAtFirstBadByte(t *testing.T) {
	for _, prefix := range []string{"\xc0", "\xed\xa0", "\xf4\x90", "ok\xff", "\x80", "\xe0\x80"} {
		var s utf8State
		if s.write([]byte(prefix)) {
			t.Errorf("prefix %q accepted", prefix)
		}
	}
	// An incomplete but completable prefix is accepted until the end.
	var s utf8State
	if !s.write([]byte("ok\xf0\x9f")) || s.complete() {
		t.Fatal("incomplete valid prefix handled wrongly")
	}
	if !s.write([]byte("\x98\x80")) || !s.complete() {
		t.Fatal("completion refused")
	}
}

func TestUTF8RandomAgainstStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{'a', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff}
	for range 20000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		want := utf8.Valid(b)
		cut := r.IntN(len(b) + 1)
		var s utf8State
		got := s.write(b[:cut]) && s.write(b[cut:]) && s.complete()
		if got != want {
			t.Fatalf("%x (cut %d): got %v want %v", b, cut, got, want)
		}
	}
}
