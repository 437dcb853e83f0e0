package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/duplexhq/duplex/presence"
)

var ctx = context.Background()

// clock is a manual clock: each tick advances a minute.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) tick() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

// Values of wantSeen that are not step indexes.
const (
	seenNever = -1 // LastSeen is zero
	seenNow   = -2 // online: LastSeen is the time of the Status call
)

func TestConnectDisconnect(t *testing.T) {
	type step struct {
		op         string // "connect" or "disconnect"
		user, conn string
		want       bool // first for connect, last for disconnect
		tick       bool // advance the clock before the step
	}
	cases := []struct {
		name  string
		steps []step
		// wantOnline and wantSeen (index of the step whose time LastSeen must
		// hold, or seenNever/seenNow) describe user "u" at the end.
		wantOnline bool
		wantSeen   int
	}{
		{"never seen", nil, false, seenNever},
		{"one connection", []step{{"connect", "u", "c1", true, true}}, true, seenNow},
		{"connect and leave", []step{
			{"connect", "u", "c1", true, true},
			{"disconnect", "u", "c1", true, true},
		}, false, 1},
		{"two devices, one leaves", []step{
			{"connect", "u", "c1", true, true},
			{"connect", "u", "c2", false, true},
			{"disconnect", "u", "c1", false, true},
		}, true, seenNow},
		{"two devices, both leave", []step{
			{"connect", "u", "c1", true, true},
			{"connect", "u", "c2", false, true},
			{"disconnect", "u", "c2", false, true},
			{"disconnect", "u", "c1", true, true},
		}, false, 3},
		{"same connection twice", []step{
			{"connect", "u", "c1", true, true},
			{"connect", "u", "c1", false, true},
			{"disconnect", "u", "c1", true, true},
		}, false, 2},
		{"unknown connection", []step{
			{"connect", "u", "c1", true, true},
			{"disconnect", "u", "zz", false, true},
			{"disconnect", "v", "c1", false, true},
		}, true, seenNow},
		{"disconnect twice", []step{
			{"connect", "u", "c1", true, true},
			{"disconnect", "u", "c1", true, true},
			{"disconnect", "u", "c1", false, true},
		}, false, 1},
		{"back online", []step{
			{"connect", "u", "c1", true, true},
			{"disconnect", "u", "c1", true, true},
			{"connect", "u", "c2", true, true},
		}, true, seenNow},
		{"other users do not interfere", []step{
			{"connect", "u", "c1", true, true},
			{"connect", "v", "c1", true, true},
			{"disconnect", "v", "c1", true, true},
		}, true, seenNow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.FixedZone("X", 3600))}
			r := New(Options{Now: clk.now})
			var times []time.Time
			for i, st := range tc.steps {
				if st.tick {
					clk.tick()
				}
				times = append(times, clk.now())
				var got bool
				var err error
				if st.op == "connect" {
					got, err = r.Connect(ctx, st.user, st.conn)
				} else {
					got, err = r.Disconnect(ctx, st.user, st.conn)
				}
				if err != nil || got != st.want {
					t.Fatalf("step %d %s(%s, %s) = %v, %v; want %v", i, st.op, st.user, st.conn, got, err, st.want)
				}
			}
			now := clk.tick()
			sts, err := r.Status(ctx, []string{"u"})
			if err != nil || len(sts) != 1 {
				t.Fatalf("Status = %v, %v", sts, err)
			}
			s := sts[0]
			var wantSeen time.Time
			switch {
			case tc.wantSeen == seenNow:
				wantSeen = now
			case tc.wantSeen >= 0:
				wantSeen = times[tc.wantSeen]
			}
			if s.UserID != "u" || s.Online != tc.wantOnline || !s.LastSeen.Equal(wantSeen) {
				t.Errorf("Status = %+v, want online=%v lastSeen=%v", s, tc.wantOnline, wantSeen)
			}
			if !s.LastSeen.IsZero() && s.LastSeen.Location() != time.UTC {
				t.Errorf("LastSeen %v is not UTC", s.LastSeen)
			}
		})
	}
}

func TestStatusOrderAndUnknown(t *testing.T) {
	r := New(Options{})
	if _, err := r.Connect(ctx, "b", "1"); err != nil {
		t.Fatal(err)
	}
	sts, err := r.Status(ctx, []string{"a", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 3 || sts[0].UserID != "a" || sts[1].UserID != "b" || sts[2].UserID != "a" {
		t.Fatalf("Status order = %+v", sts)
	}
	if sts[0].Online || !sts[0].LastSeen.IsZero() || !sts[1].Online {
		t.Errorf("Status = %+v", sts)
	}
}

func TestErrors(t *testing.T) {
	r := New(Options{})
	if _, err := r.Connect(ctx, "", "c"); !errors.Is(err, ErrEmptyID) {
		t.Errorf("Connect with empty user: %v", err)
	}
	if _, err := r.Disconnect(ctx, "u", ""); !errors.Is(err, ErrEmptyID) {
		t.Errorf("Disconnect with empty conn: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Connect(ctx, "u", "c"); !errors.Is(err, presence.ErrClosed) {
		t.Errorf("Connect after Close: %v", err)
	}
	if _, err := r.Disconnect(ctx, "u", "c"); !errors.Is(err, presence.ErrClosed) {
		t.Errorf("Disconnect after Close: %v", err)
	}
	if _, err := r.Status(ctx, []string{"u"}); !errors.Is(err, presence.ErrClosed) {
		t.Errorf("Status after Close: %v", err)
	}
}

// TestConcurrentDevices connects and disconnects many devices of the same
// users from many goroutines: exactly one Connect per user reports first
// and, at the end, exactly one Disconnect reports last.
func TestConcurrentDevices(t *testing.T) {
	r := New(Options{})
	const users, devices = 20, 16
	var firsts, lasts [users]int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			for u := range users {
				first, err := r.Connect(ctx, fmt.Sprint("u", u), fmt.Sprint("d", d))
				if err != nil {
					t.Error(err)
					return
				}
				if first {
					mu.Lock()
					firsts[u]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for d := range devices {
		wg.Go(func() {
			for u := range users {
				last, err := r.Disconnect(ctx, fmt.Sprint("u", u), fmt.Sprint("d", d))
				if err != nil {
					t.Error(err)
					return
				}
				if last {
					mu.Lock()
					lasts[u]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for u := range users {
		if firsts[u] != 1 || lasts[u] != 1 {
			t.Errorf("user %d: %d firsts, %d lasts; want 1 and 1", u, firsts[u], lasts[u])
		}
	}
}
