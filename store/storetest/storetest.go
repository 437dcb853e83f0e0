package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/store"
)

// Run runs the whole suite. open must return a new, empty store for each
// call and arrange (t.Cleanup) for it to be closed; the suite may also close
// it itself, so Close must be idempotent.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"DirectIdempotent", testDirectIdempotent},
		{"DirectConcurrent", testDirectConcurrent},
		{"DirectInvalid", testDirectInvalid},
		{"GroupRoles", testGroupRoles},
		{"AddRemoveMember", testAddRemoveMember},
		{"NotFound", testNotFound},
		{"AppendSequence", testAppendSequence},
		{"AppendConcurrentNoGaps", testAppendConcurrentNoGaps},
		{"AppendIdempotent", testAppendIdempotent},
		{"AppendIdempotentConcurrent", testAppendIdempotentConcurrent},
		{"AppendRefused", testAppendRefused},
		{"Paging", testPaging},
		{"Cursors", testCursors},
		{"DeliveredBatch", testDeliveredBatch},
		{"DeliveredBatchIdempotent", testDeliveredBatchIdempotent},
		{"DeliveredBatchMany", testDeliveredBatchMany},
		{"Unread", testUnread},
		{"MemberReads", testMemberReads},
		{"ConversationsOrder", testConversationsOrder},
		{"Contacts", testContacts},
		{"Channels", testChannels},
		{"MetaRoundTrip", testMetaRoundTrip},
		{"TimesUTC", testTimesUTC},
		{"Canceled", testCanceled},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

func mustDirect(t *testing.T, s store.Store, a, b string) store.Conversation {
	t.Helper()
	c, err := s.CreateDirect(ctx, a, b)
	if err != nil {
		t.Fatalf("CreateDirect(%q, %q): %v", a, b, err)
	}
	return c
}

func mustGroup(t *testing.T, s store.Store, owner string, members ...string) store.Conversation {
	t.Helper()
	c, err := s.CreateGroup(ctx, owner, "group of "+owner, members)
	if err != nil {
		t.Fatalf("CreateGroup(%q, %v): %v", owner, members, err)
	}
	return c
}

func mustAppend(t *testing.T, s store.Store, convID, sender, clientID, body string) store.Message {
	t.Helper()
	m, dup, err := s.Append(ctx, store.NewMessage{ConversationID: convID, Sender: sender, ClientMsgID: clientID, Body: body})
	if err != nil {
		t.Fatalf("Append(%s, %s, %q): %v", convID, sender, clientID, err)
	}
	if dup {
		t.Fatalf("Append(%s, %s, %q): unexpected dup", convID, sender, clientID)
	}
	return m
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

func memberIDs(t *testing.T, s store.Store, convID string) map[string]store.Role {
	t.Helper()
	ms, err := s.Members(ctx, convID)
	if err != nil {
		t.Fatalf("Members(%s): %v", convID, err)
	}
	out := make(map[string]store.Role, len(ms))
	for _, m := range ms {
		if m.ConversationID != convID {
			t.Errorf("member %s has ConversationID %q, want %q", m.UserID, m.ConversationID, convID)
		}
		out[m.UserID] = m.Role
	}
	return out
}

func userConv(t *testing.T, s store.Store, userID, convID string) store.UserConversation {
	t.Helper()
	list, err := s.Conversations(ctx, userID)
	if err != nil {
		t.Fatalf("Conversations(%s): %v", userID, err)
	}
	for _, uc := range list {
		if uc.ID == convID {
			return uc
		}
	}
	t.Fatalf("Conversations(%s) lacks %s", userID, convID)
	return store.UserConversation{}
}

func seqs(ms []store.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func testDirectIdempotent(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	if c.ID == "" || c.Kind != store.KindDirect || c.LastSeq != 0 {
		t.Fatalf("CreateDirect = %+v, want a new direct conversation", c)
	}
	for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		again := mustDirect(t, s, pair[0], pair[1])
		if again.ID != c.ID {
			t.Errorf("CreateDirect(%s, %s) = %s, want the existing %s", pair[0], pair[1], again.ID, c.ID)
		}
	}
	other := mustDirect(t, s, "alice", "carol")
	if other.ID == c.ID {
		t.Errorf("alice-carol reuses alice-bob's conversation %s", c.ID)
	}
	want := map[string]store.Role{"alice": store.RoleMember, "bob": store.RoleMember}
	if got := memberIDs(t, s, c.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
}

func testDirectConcurrent(t *testing.T, s store.Store) {
	const n = 16
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, b := "dora", "eve"
			if i%2 == 1 {
				a, b = b, a
			}
			c, err := s.CreateDirect(ctx, a, b)
			ids[i], errs[i] = c.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("CreateDirect #%d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("racing CreateDirect returned %s and %s", ids[0], ids[i])
		}
	}
	list, err := s.Conversations(ctx, "dora")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("dora has %d conversations after racing CreateDirect, want 1", len(list))
	}
}

func testDirectInvalid(t *testing.T, s store.Store) {
	for _, pair := range [][2]string{{"alice", "alice"}, {"", "bob"}, {"alice", ""}} {
		_, err := s.CreateDirect(ctx, pair[0], pair[1])
		wantErr(t, fmt.Sprintf("CreateDirect(%q, %q)", pair[0], pair[1]), err, store.ErrInvalid)
	}
}

func testGroupRoles(t *testing.T, s store.Store) {
	before := time.Now()
	c, err := s.CreateGroup(ctx, "olga", "Team", []string{"bob", "carl", "bob", "olga"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != store.KindGroup || c.Title != "Team" || c.CreatedBy != "olga" || c.LastSeq != 0 {
		t.Errorf("CreateGroup = %+v", c)
	}
	if c.CreatedAt.Before(before.Add(-time.Second)) || c.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want about now", c.CreatedAt)
	}
	got, err := s.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Kind != c.Kind || got.Title != c.Title || got.CreatedBy != c.CreatedBy || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("Conversation = %+v, want %+v", got, c)
	}
	want := map[string]store.Role{"olga": store.RoleOwner, "bob": store.RoleMember, "carl": store.RoleMember}
	if got := memberIDs(t, s, c.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	uc := userConv(t, s, "olga", c.ID)
	if uc.Role != store.RoleOwner || !slices.Equal(uc.Members, []string{"bob", "carl", "olga"}) {
		t.Errorf("olga's view: role %s members %v", uc.Role, uc.Members)
	}
	_, err = s.CreateGroup(ctx, "", "x", nil)
	wantErr(t, "CreateGroup without owner", err, store.ErrInvalid)
	_, err = s.CreateGroup(ctx, "olga", "x", []string{""})
	wantErr(t, "CreateGroup with an empty member", err, store.ErrInvalid)
}

func testAddRemoveMember(t *testing.T, s store.Store) {
	g := mustGroup(t, s, "olga", "bob")
	mustAppend(t, s, g.ID, "bob", "m1", "before dave")
	mustAppend(t, s, g.ID, "olga", "m2", "before dave")

	if err := s.AddMember(ctx, g.ID, "dave", store.RoleMember); err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	if got := memberIDs(t, s, g.ID); got["dave"] != store.RoleMember || len(got) != 3 {
		t.Errorf("members after add = %v", got)
	}
	uc := userConv(t, s, "dave", g.ID)
	if uc.ReadSeq != 2 || uc.DeliveredSeq != 2 || uc.Unread != 0 {
		t.Errorf("new member's cursors = delivered %d read %d unread %d, want 2 2 0", uc.DeliveredSeq, uc.ReadSeq, uc.Unread)
	}
	if m := mustAppend(t, s, g.ID, "dave", "d1", "hi"); m.Seq != 3 {
		t.Errorf("new member's message seq = %d, want 3", m.Seq)
	}
	err := s.AddMember(ctx, g.ID, "dave", store.RoleMember)
	wantErr(t, "AddMember of a member", err, store.ErrConflict)
	err = s.AddMember(ctx, g.ID, "erin", store.Role("admin"))
	wantErr(t, "AddMember with an unknown role", err, store.ErrInvalid)
	err = s.AddMember(ctx, "no-such-conversation", "erin", store.RoleMember)
	wantErr(t, "AddMember to a missing conversation", err, store.ErrNotFound)
	d := mustDirect(t, s, "alice", "bob")
	err = s.AddMember(ctx, d.ID, "erin", store.RoleMember)
	wantErr(t, "AddMember to a direct conversation", err, store.ErrConflict)

	if err := s.RemoveMember(ctx, g.ID, "dave"); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if got := memberIDs(t, s, g.ID); len(got) != 2 || got["dave"] != "" {
		t.Errorf("members after remove = %v", got)
	}
	_, _, err = s.Append(ctx, store.NewMessage{ConversationID: g.ID, Sender: "dave", ClientMsgID: "d2", Body: "still here?"})
	wantErr(t, "Append by a removed member", err, store.ErrNotMember)
	err = s.RemoveMember(ctx, g.ID, "dave")
	wantErr(t, "RemoveMember twice", err, store.ErrNotMember)
	err = s.RemoveMember(ctx, d.ID, "bob")
	wantErr(t, "RemoveMember from a direct conversation", err, store.ErrConflict)
	err = s.RemoveMember(ctx, "no-such-conversation", "bob")
	wantErr(t, "RemoveMember from a missing conversation", err, store.ErrNotFound)
	if list, err := s.Conversations(ctx, "dave"); err != nil || len(list) != 0 {
		t.Errorf("removed member's Conversations = %v, %v; want none", list, err)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	_, err := s.Conversation(ctx, "nope")
	wantErr(t, "Conversation", err, store.ErrNotFound)
	_, err = s.Members(ctx, "nope")
	wantErr(t, "Members", err, store.ErrNotFound)
	_, err = s.MessagesAfter(ctx, "nope", 0, 10)
	wantErr(t, "MessagesAfter", err, store.ErrNotFound)
	_, err = s.MessagesBefore(ctx, "nope", 0, 10)
	wantErr(t, "MessagesBefore", err, store.ErrNotFound)
	_, err = s.MarkRead(ctx, "alice", "nope", 1)
	wantErr(t, "MarkRead", err, store.ErrNotFound)
	_, err = s.ChannelAfter(ctx, "nope", 0, 10)
	wantErr(t, "ChannelAfter", err, store.ErrNotFound)
	if list, err := s.Conversations(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("Conversations of an unknown user = %v, %v; want none", list, err)
	}
	if list, err := s.Contacts(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("Contacts of an unknown user = %v, %v; want none", list, err)
	}
}

func testAppendSequence(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	other := mustDirect(t, s, "alice", "carol")
	for i := int64(1); i <= 5; i++ {
		m := mustAppend(t, s, c.ID, "alice", fmt.Sprint("a", i), fmt.Sprint("hello ", i))
		if m.Seq != i || m.ConversationID != c.ID || m.Sender != "alice" || m.Body != fmt.Sprint("hello ", i) || m.ClientMsgID != fmt.Sprint("a", i) {
			t.Errorf("Append #%d = %+v", i, m)
		}
		// Sequences are per conversation: the other one starts at 1 too.
		if o := mustAppend(t, s, other.ID, "carol", fmt.Sprint("c", i), "x"); o.Seq != i {
			t.Errorf("other conversation's Append #%d got seq %d", i, o.Seq)
		}
	}
	got, err := s.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastSeq != 5 {
		t.Errorf("LastSeq = %d, want 5", got.LastSeq)
	}
	// An empty ClientMsgID opts out of deduplication.
	m1 := mustAppend(t, s, c.ID, "bob", "", "same")
	m2 := mustAppend(t, s, c.ID, "bob", "", "same")
	if m1.Seq != 6 || m2.Seq != 7 {
		t.Errorf("appends without client IDs got seqs %d, %d; want 6, 7", m1.Seq, m2.Seq)
	}
}

// appendLoad sizes the concurrency tests; -short keeps them quick.
func appendLoad() (workers, each int) {
	if testing.Short() {
		return 8, 50
	}
	return 8, 500
}

func testAppendConcurrentNoGaps(t *testing.T, s store.Store) {
	workers, each := appendLoad()
	members := make([]string, workers)
	for i := range members {
		members[i] = fmt.Sprint("user", i)
	}
	g := mustGroup(t, s, "owner", members...)
	side := mustGroup(t, s, "owner", members...)
	got := make([][]int64, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				conv := g.ID
				if i%10 == 9 { // interleave another conversation's appends
					conv = side.ID
				}
				m, dup, err := s.Append(ctx, store.NewMessage{ConversationID: conv, Sender: members[w],
					ClientMsgID: fmt.Sprint(w, "-", i), Body: "load"})
				if err != nil || dup {
					errs <- fmt.Errorf("worker %d append %d: dup=%v err=%v", w, i, dup, err)
					return
				}
				if conv == g.ID {
					got[w] = append(got[w], m.Seq)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []int64
	for w := range workers {
		if !slices.IsSorted(got[w]) {
			t.Errorf("worker %d saw its own seqs out of order", w)
		}
		all = append(all, got[w]...)
	}
	slices.Sort(all)
	for i, seq := range all {
		if seq != int64(i+1) {
			t.Fatalf("seqs are not exactly 1..%d: position %d holds %d", len(all), i, seq)
		}
	}
	c, err := s.Conversation(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.LastSeq != int64(len(all)) {
		t.Errorf("LastSeq = %d, want %d", c.LastSeq, len(all))
	}
	stored, err := s.MessagesAfter(ctx, g.ID, 0, len(all)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(all) {
		t.Fatalf("MessagesAfter returned %d messages, want %d", len(stored), len(all))
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored message %d has seq %d", i, m.Seq)
		}
	}
}

func testAppendIdempotent(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	d := mustDirect(t, s, "alice", "carol")
	first := mustAppend(t, s, c.ID, "alice", "k1", "original")
	mustAppend(t, s, c.ID, "bob", "other", "in between")

	again, dup, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "k1", Body: "retry with another body"})
	if err != nil {
		t.Fatal(err)
	}
	if !dup || again.Seq != first.Seq || again.Body != "original" || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("retry = %+v dup=%v, want the original %+v and dup", again, dup, first)
	}
	// The key is (conversation, sender, ClientMsgID): other senders and
	// other conversations may use the same ClientMsgID.
	if m := mustAppend(t, s, c.ID, "bob", "k1", "bob's k1"); m.Seq != 3 {
		t.Errorf("bob's k1 got seq %d, want 3", m.Seq)
	}
	if m := mustAppend(t, s, d.ID, "alice", "k1", "k1 elsewhere"); m.Seq != 1 {
		t.Errorf("k1 in another conversation got seq %d, want 1", m.Seq)
	}
	if got, _ := s.Conversation(ctx, c.ID); got.LastSeq != 3 {
		t.Errorf("LastSeq = %d after a duplicate, want 3", got.LastSeq)
	}
}

func testAppendIdempotentConcurrent(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	mustAppend(t, s, c.ID, "bob", "warmup", "x")
	const n = 16
	type result struct {
		m   store.Message
		dup bool
		err error
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, dup, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "race", Body: "racing"})
			res[i] = result{m, dup, err}
		})
	}
	wg.Wait()
	fresh := 0
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("racing Append #%d: %v", i, r.err)
		}
		if !r.dup {
			fresh++
		}
		if r.m.Seq != 2 {
			t.Errorf("racing Append #%d got seq %d, want 2", i, r.m.Seq)
		}
	}
	if fresh != 1 {
		t.Errorf("%d racing appends reported dup=false, want exactly 1", fresh)
	}
	if got, _ := s.Conversation(ctx, c.ID); got.LastSeq != 2 {
		t.Errorf("LastSeq = %d, want 2", got.LastSeq)
	}
}

func testAppendRefused(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	cases := []struct {
		name string
		m    store.NewMessage
		want error
	}{
		{"non-member", store.NewMessage{ConversationID: c.ID, Sender: "mallory", ClientMsgID: "x", Body: "hi"}, store.ErrNotMember},
		{"missing conversation", store.NewMessage{ConversationID: "nope", Sender: "alice", ClientMsgID: "x", Body: "hi"}, store.ErrNotFound},
		{"empty sender", store.NewMessage{ConversationID: c.ID, Body: "hi"}, store.ErrInvalid},
		{"empty conversation", store.NewMessage{Sender: "alice", Body: "hi"}, store.ErrInvalid},
		{"meta not an object", store.NewMessage{ConversationID: c.ID, Sender: "alice", Body: "hi", Meta: json.RawMessage(`[1]`)}, store.ErrInvalid},
		{"meta not JSON", store.NewMessage{ConversationID: c.ID, Sender: "alice", Body: "hi", Meta: json.RawMessage(`{"a":`)}, store.ErrInvalid},
	}
	for _, tc := range cases {
		_, _, err := s.Append(ctx, tc.m)
		wantErr(t, tc.name, err, tc.want)
	}
	if got, _ := s.Conversation(ctx, c.ID); got.LastSeq != 0 {
		t.Errorf("refused appends moved LastSeq to %d", got.LastSeq)
	}
}

func testPaging(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	for i := range 10 {
		mustAppend(t, s, c.ID, "alice", fmt.Sprint(i), fmt.Sprint("m", i+1))
	}
	cases := []struct {
		name  string
		after bool
		bound int64
		limit int
		want  []int64
	}{
		{"after 0", true, 0, 3, []int64{1, 2, 3}},
		{"after 3", true, 3, 3, []int64{4, 5, 6}},
		{"after 9", true, 9, 5, []int64{10}},
		{"after last", true, 10, 5, []int64{}},
		{"after negative", true, -5, 2, []int64{1, 2}},
		{"before newest", false, 0, 3, []int64{10, 9, 8}},
		{"before 8", false, 8, 3, []int64{7, 6, 5}},
		{"before 2", false, 2, 5, []int64{1}},
		{"before 1", false, 1, 5, []int64{}},
		{"before beyond", false, 100, 2, []int64{10, 9}},
	}
	for _, tc := range cases {
		var got []store.Message
		var err error
		if tc.after {
			got, err = s.MessagesAfter(ctx, c.ID, tc.bound, tc.limit)
		} else {
			got, err = s.MessagesBefore(ctx, c.ID, tc.bound, tc.limit)
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(seqs(got), tc.want) {
			t.Errorf("%s: seqs %v, want %v", tc.name, seqs(got), tc.want)
		}
		for _, m := range got {
			if m.Body != fmt.Sprint("m", m.Seq) || m.ConversationID != c.ID || m.Sender != "alice" {
				t.Errorf("%s: message %+v does not match what was appended", tc.name, m)
			}
		}
	}
	_, err := s.MessagesAfter(ctx, c.ID, 0, 0)
	wantErr(t, "MessagesAfter limit 0", err, store.ErrInvalid)
	_, err = s.MessagesBefore(ctx, c.ID, 0, -1)
	wantErr(t, "MessagesBefore limit -1", err, store.ErrInvalid)
}

func testCursors(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	for i := range 5 {
		mustAppend(t, s, c.ID, "alice", fmt.Sprint(i), "x")
	}
	steps := []struct {
		name string
		read bool
		seq  int64
		want int64
	}{
		{"deliver 3", false, 3, 3},
		{"deliver backwards", false, 2, 3},
		{"deliver past LastSeq", false, 99, 5},
		{"read 4", true, 4, 4},
		{"read backwards", true, 1, 4},
		{"read negative", true, -1, 4},
		{"read past LastSeq", true, 1000, 5},
	}
	for _, st := range steps {
		var got int64
		var err error
		if st.read {
			got, err = s.MarkRead(ctx, "bob", c.ID, st.seq)
		} else {
			got, err = s.MarkDelivered(ctx, "bob", c.ID, st.seq)
		}
		if err != nil || got != st.want {
			t.Errorf("%s: got %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	uc := userConv(t, s, "bob", c.ID)
	if uc.DeliveredSeq != 5 || uc.ReadSeq != 5 {
		t.Errorf("bob's cursors = delivered %d read %d, want 5 5", uc.DeliveredSeq, uc.ReadSeq)
	}
	// Reading implies delivery: alice's delivered cursor follows her read one.
	if got, err := s.MarkRead(ctx, "alice", c.ID, 2); err != nil || got != 2 {
		t.Fatalf("MarkRead(alice, 2) = %d, %v", got, err)
	}
	uc = userConv(t, s, "alice", c.ID)
	if uc.DeliveredSeq != 2 || uc.ReadSeq != 2 {
		t.Errorf("alice's cursors = delivered %d read %d, want 2 2", uc.DeliveredSeq, uc.ReadSeq)
	}
	_, err := s.MarkDelivered(ctx, "mallory", c.ID, 1)
	wantErr(t, "MarkDelivered by a non-member", err, store.ErrNotMember)
	_, err = s.MarkRead(ctx, "mallory", c.ID, 1)
	wantErr(t, "MarkRead by a non-member", err, store.ErrNotMember)
}

// dc is a DeliveredCursor, short for the tables below.
func dc(user, conv string, seq int64) store.DeliveredCursor {
	return store.DeliveredCursor{UserID: user, ConversationID: conv, Seq: seq}
}

// testDeliveredBatch checks that MarkDeliveredBatch applies each entry as
// MarkDelivered would and skips entries that match no membership. Each
// case has its own conversation, so cases do not see each other's
// cursors; every conversation has 5 messages.
func testDeliveredBatch(t *testing.T, s store.Store) {
	type cur = store.DeliveredCursor
	cases := []struct {
		name   string
		before int64 // bob's delivered cursor before the batch
		batch  func(conv string) []cur
		want   int64 // bob's delivered cursor after it
	}{
		{"forward", 0, func(c string) []cur { return []cur{dc("bob", c, 3)} }, 3},
		{"backward is ignored", 4, func(c string) []cur { return []cur{dc("bob", c, 2)} }, 4},
		{"equal is a no-op", 3, func(c string) []cur { return []cur{dc("bob", c, 3)} }, 3},
		{"past LastSeq is clamped", 1, func(c string) []cur { return []cur{dc("bob", c, 99)} }, 5},
		{"highest duplicate wins", 0, func(c string) []cur {
			return []cur{dc("bob", c, 2), dc("bob", c, 4), dc("bob", c, 3)}
		}, 4},
		{"zero and negative are ignored", 2, func(c string) []cur { return []cur{dc("bob", c, 0), dc("bob", c, -1)} }, 2},
		{"non-members and unknown conversations are skipped", 1, func(c string) []cur {
			return []cur{dc("mallory", c, 3), dc("", c, 3), dc("bob", "no-such-conversation", 3), dc("bob", "", 3), dc("bob", c, 3), dc("mallory", c, 4)}
		}, 3},
		{"empty batch", 2, func(string) []cur { return nil }, 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alice := fmt.Sprint("alice", i)
			c := mustDirect(t, s, alice, "bob")
			for j := range 5 {
				mustAppend(t, s, c.ID, alice, fmt.Sprint(j), "x")
			}
			if tc.before > 0 {
				if got, err := s.MarkDelivered(ctx, "bob", c.ID, tc.before); err != nil || got != tc.before {
					t.Fatalf("MarkDelivered(bob, %d) = %d, %v", tc.before, got, err)
				}
			}
			aliceBefore := userConv(t, s, alice, c.ID)
			if err := s.MarkDeliveredBatch(ctx, tc.batch(c.ID)); err != nil {
				t.Fatalf("MarkDeliveredBatch: %v", err)
			}
			bob := userConv(t, s, "bob", c.ID)
			if bob.DeliveredSeq != tc.want || bob.ReadSeq != 0 {
				t.Errorf("bob's cursors = delivered %d read %d, want %d 0", bob.DeliveredSeq, bob.ReadSeq, tc.want)
			}
			if a := userConv(t, s, alice, c.ID); a.DeliveredSeq != aliceBefore.DeliveredSeq || a.ReadSeq != aliceBefore.ReadSeq {
				t.Errorf("alice's cursors moved to delivered %d read %d (from %d %d), but she was not in the batch",
					a.DeliveredSeq, a.ReadSeq, aliceBefore.DeliveredSeq, aliceBefore.ReadSeq)
			}
		})
	}
	// Skipping a non-member must not make it one.
	if list, err := s.Conversations(ctx, "mallory"); err != nil || len(list) != 0 {
		t.Errorf("Conversations(mallory) = %v, %v; want none", list, err)
	}

	c := mustDirect(t, s, "carol", "dave")
	mustAppend(t, s, c.ID, "carol", "1", "x")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := s.MarkDeliveredBatch(cctx, []store.DeliveredCursor{dc("dave", c.ID, 1)})
	wantErr(t, "MarkDeliveredBatch with a canceled context", err, context.Canceled)
	if err := s.MarkDeliveredBatch(ctx, []store.DeliveredCursor{dc("dave", c.ID, 1)}); err != nil {
		t.Fatalf("MarkDeliveredBatch after a canceled one: %v", err)
	}
	if got := userConv(t, s, "dave", c.ID).DeliveredSeq; got != 1 {
		t.Errorf("dave's delivered cursor = %d after the retry, want 1", got)
	}
}

// testDeliveredBatchIdempotent applies the same batch twice (what a flush
// retried after an error does) and checks nothing changes the second time,
// even after more messages arrived.
func testDeliveredBatchIdempotent(t *testing.T, s store.Store) {
	g := mustGroup(t, s, "alice", "bob", "carol")
	for i := range 4 {
		mustAppend(t, s, g.ID, "alice", fmt.Sprint(i), "x")
	}
	batch := []store.DeliveredCursor{dc("bob", g.ID, 2), dc("carol", g.ID, 4), dc("alice", g.ID, 3)}
	want := map[string]int64{"alice": 3, "bob": 2, "carol": 4}
	check := func(when string) {
		t.Helper()
		for user, w := range want {
			if got := userConv(t, s, user, g.ID).DeliveredSeq; got != w {
				t.Errorf("%s: %s's delivered cursor = %d, want %d", when, user, got, w)
			}
		}
	}
	for i := range 3 {
		if err := s.MarkDeliveredBatch(ctx, batch); err != nil {
			t.Fatalf("MarkDeliveredBatch #%d: %v", i+1, err)
		}
		check(fmt.Sprint("after batch #", i+1))
	}
	mustAppend(t, s, g.ID, "bob", "b", "x")
	if err := s.MarkDeliveredBatch(ctx, batch); err != nil {
		t.Fatalf("MarkDeliveredBatch after an append: %v", err)
	}
	check("after an append and the same batch again")
}

// testDeliveredBatchMany flushes more cursors than an engine would apply in
// one step, interleaved with non-members, while appends continue, and
// checks every cursor.
func testDeliveredBatchMany(t *testing.T, s store.Store) {
	const groups, members, msgs = 3, 250, 5
	var batch []store.DeliveredCursor
	want := make(map[[2]string]int64)
	for gi := range groups {
		users := make([]string, members)
		for i := range users {
			users[i] = fmt.Sprintf("u%d-%d", gi, i)
		}
		g := mustGroup(t, s, users[0], users[1:]...)
		for i := range msgs {
			mustAppend(t, s, g.ID, users[0], fmt.Sprint(i), "x")
		}
		for i, u := range users {
			seq := int64(i%(msgs+2)) + 1 // 1..7: 6 and 7 clamp to 5
			batch = append(batch, dc(u, g.ID, seq), dc("stranger-"+u, g.ID, seq))
			want[[2]string{u, g.ID}] = min(seq, msgs)
		}
	}
	// Appends to another conversation meanwhile: the batch must neither
	// fail them nor be failed by them.
	other := mustDirect(t, s, "x", "y")
	var wg sync.WaitGroup
	appendErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			_, _, err := s.Append(ctx, store.NewMessage{ConversationID: other.ID, Sender: "x", ClientMsgID: fmt.Sprint(i), Body: "x"})
			if err != nil {
				appendErr <- err
				return
			}
		}
	}()
	if err := s.MarkDeliveredBatch(ctx, batch); err != nil {
		t.Fatalf("MarkDeliveredBatch of %d cursors: %v", len(batch), err)
	}
	wg.Wait()
	select {
	case err := <-appendErr:
		t.Fatalf("Append during the batch: %v", err)
	default:
	}
	for k, w := range want {
		if got := userConv(t, s, k[0], k[1]).DeliveredSeq; got != w {
			t.Errorf("%s's delivered cursor in %s = %d, want %d", k[0], k[1], got, w)
		}
	}
	if list, err := s.Conversations(ctx, "stranger-u0-1"); err != nil || len(list) != 0 {
		t.Errorf("Conversations(stranger-u0-1) = %v, %v; want none", list, err)
	}
}

func testUnread(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	for i := range 3 {
		mustAppend(t, s, c.ID, "alice", fmt.Sprint("a", i), "from alice")
	}
	for i := range 2 {
		mustAppend(t, s, c.ID, "bob", fmt.Sprint("b", i), "from bob")
	}
	unread := func(user string) int64 { return userConv(t, s, user, c.ID).Unread }
	if a, b := unread("alice"), unread("bob"); a != 2 || b != 3 {
		t.Errorf("unread alice=%d bob=%d, want 2 3 (own messages excluded)", a, b)
	}
	if _, err := s.MarkRead(ctx, "alice", c.ID, 5); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, c.ID, "alice", "a3", "more from alice")
	if a, b := unread("alice"), unread("bob"); a != 0 || b != 4 {
		t.Errorf("after alice read all and wrote: unread alice=%d bob=%d, want 0 4", a, b)
	}
	if _, err := s.MarkRead(ctx, "bob", c.ID, 2); err != nil {
		t.Fatal(err)
	}
	if b := unread("bob"); b != 2 {
		t.Errorf("bob read up to 2: unread %d, want 2 (seqs 3 and 6)", b)
	}
}

// testMemberReads checks that a member sees every member's read cursor,
// including reads made before it asked and by members added later.
func testMemberReads(t *testing.T, s store.Store) {
	g := mustGroup(t, s, "alice", "bob", "carol")
	for i := range 4 {
		mustAppend(t, s, g.ID, "alice", fmt.Sprint(i), "x")
	}
	if _, err := s.MarkRead(ctx, "bob", g.ID, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, "alice", g.ID, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(ctx, g.ID, "dave", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"alice": 4, "bob": 3, "carol": 0, "dave": 4}
	for _, user := range []string{"alice", "carol", "dave"} {
		got := userConv(t, s, user, g.ID).Reads
		if !maps.Equal(got, want) {
			t.Errorf("%s sees reads %v, want %v", user, got, want)
		}
	}
	if err := s.RemoveMember(ctx, g.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if got := userConv(t, s, "bob", g.ID).Reads; len(got) != 3 || got["bob"] != 3 || got["dave"] != 4 {
		t.Errorf("after carol left bob sees reads %v, want alice, bob and dave only", got)
	}
}

func testConversationsOrder(t *testing.T, s store.Store) {
	// The pauses keep activity times distinct on engines with coarse clocks;
	// the order under test is by activity, not by creation call order.
	pause := func() { time.Sleep(2 * time.Millisecond) }
	c1 := mustDirect(t, s, "u", "v")
	pause()
	c2 := mustGroup(t, s, "u", "w", "x")
	pause()
	c3 := mustDirect(t, s, "u", "w")
	pause()
	order := func() []string {
		list, err := s.Conversations(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(list))
		for i, uc := range list {
			ids[i] = uc.ID
		}
		return ids
	}
	if got, want := order(), []string{c3.ID, c2.ID, c1.ID}; !slices.Equal(got, want) {
		t.Errorf("by creation: %v, want %v", got, want)
	}
	mustAppend(t, s, c1.ID, "v", "1", "x")
	pause()
	if got, want := order(), []string{c1.ID, c3.ID, c2.ID}; !slices.Equal(got, want) {
		t.Errorf("after a message in c1: %v, want %v", got, want)
	}
	mustAppend(t, s, c2.ID, "x", "1", "x")
	if got, want := order(), []string{c2.ID, c1.ID, c3.ID}; !slices.Equal(got, want) {
		t.Errorf("after a message in c2: %v, want %v", got, want)
	}
	uc := userConv(t, s, "u", c2.ID)
	if uc.Kind != store.KindGroup || uc.Role != store.RoleOwner || uc.LastSeq != 1 ||
		!slices.Equal(uc.Members, []string{"u", "w", "x"}) || uc.Unread != 1 {
		t.Errorf("u's view of the group = %+v", uc)
	}
}

func testContacts(t *testing.T, s store.Store) {
	mustDirect(t, s, "u", "v")
	g := mustGroup(t, s, "w", "u", "x")
	mustDirect(t, s, "u", "w") // w twice: listed once
	mustDirect(t, s, "y", "z") // unrelated
	got, err := s.Contacts(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"v", "w", "x"}; !slices.Equal(got, want) {
		t.Errorf("Contacts(u) = %v, want %v", got, want)
	}
	if err := s.RemoveMember(ctx, g.ID, "x"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Contacts(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"v", "w"}; !slices.Equal(got, want) {
		t.Errorf("Contacts(u) after x left = %v, want %v", got, want)
	}
}

func testChannels(t *testing.T, s store.Store) {
	for i := 1; i <= 5; i++ {
		cm, err := s.ChannelAppend(ctx, "news", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), 3)
		if err != nil {
			t.Fatal(err)
		}
		if cm.Offset != int64(i) || cm.Channel != "news" {
			t.Errorf("append %d: %+v", i, cm)
		}
	}
	if cm, err := s.ChannelAppend(ctx, "sport", json.RawMessage(`"goal"`), 3); err != nil || cm.Offset != 1 {
		t.Errorf("first append to another channel = %+v, %v; want offset 1", cm, err)
	}
	cases := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 10, []int64{3, 4, 5}}, // bounded to keep=3
		{3, 10, []int64{4, 5}},
		{0, 2, []int64{3, 4}},
		{5, 10, []int64{}},
	}
	for _, tc := range cases {
		got, err := s.ChannelAfter(ctx, "news", tc.after, tc.limit)
		if err != nil {
			t.Fatalf("ChannelAfter(%d, %d): %v", tc.after, tc.limit, err)
		}
		offs := make([]int64, len(got))
		for i, cm := range got {
			offs[i] = cm.Offset
			var v struct{ N int64 }
			if err := json.Unmarshal(cm.Data, &v); err != nil || v.N != cm.Offset {
				t.Errorf("entry %d data %s does not round-trip", cm.Offset, cm.Data)
			}
		}
		if !slices.Equal(offs, tc.want) {
			t.Errorf("ChannelAfter(%d, %d) = %v, want %v", tc.after, tc.limit, offs, tc.want)
		}
	}
	_, err := s.ChannelAppend(ctx, "news", json.RawMessage(`{"n":`), 3)
	wantErr(t, "ChannelAppend of invalid JSON", err, store.ErrInvalid)
	_, err = s.ChannelAppend(ctx, "news", json.RawMessage(`1`), 0)
	wantErr(t, "ChannelAppend with keep 0", err, store.ErrInvalid)
	_, err = s.ChannelAfter(ctx, "news", 0, 0)
	wantErr(t, "ChannelAfter with limit 0", err, store.ErrInvalid)
}

func testMetaRoundTrip(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	meta := json.RawMessage(`{"reply_to": 3, "tags": ["a", "b"], "nested": {"ok": true}}`)
	m, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "m", Body: "hi", Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	plain := mustAppend(t, s, c.ID, "alice", "p", "no meta")
	if len(plain.Meta) != 0 {
		t.Errorf("message without meta returned Meta %s", plain.Meta)
	}
	dup, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "m", Body: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.MessagesAfter(ctx, c.ID, 0, 10)
	if err != nil || len(stored) != 2 {
		t.Fatalf("MessagesAfter = %v, %v", stored, err)
	}
	if len(stored[1].Meta) != 0 {
		t.Errorf("stored message without meta has Meta %s", stored[1].Meta)
	}
	var want any
	if err := json.Unmarshal(meta, &want); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]json.RawMessage{"Append": m.Meta, "duplicate": dup.Meta, "MessagesAfter": stored[0].Meta} {
		var v any
		if err := json.Unmarshal(got, &v); err != nil || !reflect.DeepEqual(v, want) {
			t.Errorf("%s returned Meta %s, want %s", name, got, meta)
		}
	}
}

func testTimesUTC(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	c := mustDirect(t, s, "alice", "bob")
	m := mustAppend(t, s, c.ID, "alice", "1", "x")
	cm, err := s.ChannelAppend(ctx, "ch", json.RawMessage(`{}`), 1)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.MessagesAfter(ctx, c.ID, 0, 1)
	if err != nil || len(stored) != 1 {
		t.Fatalf("MessagesAfter = %v, %v", stored, err)
	}
	hist, err := s.ChannelAfter(ctx, "ch", 0, 1)
	if err != nil || len(hist) != 1 {
		t.Fatalf("ChannelAfter = %v, %v", hist, err)
	}
	ms, err := s.Members(ctx, c.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Members = %v, %v", ms, err)
	}
	after := time.Now().Add(time.Second)
	times := map[string]time.Time{
		"Conversation.CreatedAt": c.CreatedAt, "Append.CreatedAt": m.CreatedAt,
		"stored CreatedAt": stored[0].CreatedAt, "ChannelAppend.CreatedAt": cm.CreatedAt,
		"ChannelAfter.CreatedAt": hist[0].CreatedAt, "Member.JoinedAt": ms[0].JoinedAt,
	}
	for name, tm := range times {
		if tm.Location() != time.UTC {
			t.Errorf("%s = %v, not in UTC", name, tm)
		}
		if tm.Before(before) || tm.After(after) {
			t.Errorf("%s = %v, want between %v and %v", name, tm, before, after)
		}
	}
	if !stored[0].CreatedAt.Equal(m.CreatedAt) {
		t.Errorf("stored CreatedAt %v differs from the one Append returned (%v)", stored[0].CreatedAt, m.CreatedAt)
	}
}

func testCanceled(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err := s.Append(cctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "x", Body: "x"})
	wantErr(t, "Append with a canceled context", err, context.Canceled)
	// A canceled call may or may not have been stored, but the sequence
	// stays gapless and a retry resolves it.
	m, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", ClientMsgID: "x", Body: "x"})
	if err != nil || m.Seq != 1 {
		t.Errorf("retry after cancel = seq %d, %v; want 1", m.Seq, err)
	}
}

func testClosed(t *testing.T, s store.Store) {
	c := mustDirect(t, s, "alice", "bob")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, _, err := s.Append(ctx, store.NewMessage{ConversationID: c.ID, Sender: "alice", Body: "x"})
	wantErr(t, "Append after Close", err, store.ErrClosed)
	_, err = s.Conversation(ctx, c.ID)
	wantErr(t, "Conversation after Close", err, store.ErrClosed)
	_, err = s.CreateGroup(ctx, "alice", "x", nil)
	wantErr(t, "CreateGroup after Close", err, store.ErrClosed)
	wantErr(t, "Ping after Close", s.Ping(ctx), store.ErrClosed)
	err = s.MarkDeliveredBatch(ctx, []store.DeliveredCursor{dc("bob", c.ID, 1)})
	wantErr(t, "MarkDeliveredBatch after Close", err, store.ErrClosed)
}
