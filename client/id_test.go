package client

import (
	"regexp"
	"testing"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNewClientMsgIDOrdered checks the ids are UUIDv7 and strictly
// increasing within a process, also many in one millisecond (the counter,
// then the borrowed millisecond), and distinct.
func TestNewClientMsgIDOrdered(t *testing.T) {
	const n = 20000 // more than the counter holds in one millisecond
	prev := ""
	seen := make(map[string]bool, n)
	for i := range n {
		id := NewClientMsgID()
		if !uuidV7.MatchString(id) {
			t.Fatalf("id %d = %q, not a UUID version 7", i, id)
		}
		if id <= prev {
			t.Fatalf("id %d = %q, not after %q", i, id, prev)
		}
		if seen[id] {
			t.Fatalf("id %q twice", id)
		}
		seen[id] = true
		prev = id
	}
}
