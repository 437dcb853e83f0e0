package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/duplexhq/duplex/internal/testserver"
	"github.com/duplexhq/duplex/loadgen"
)

func TestRunAgainstRealServer(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	var progress strings.Builder
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL:        env.WSURL(),
		Token:      func(u string) (string, error) { return env.Token(u), nil },
		Users:      12,
		GroupSize:  4,
		GroupShare: 0.5,
		Duration:   1500 * time.Millisecond,
		Warmup:     200 * time.Millisecond,
		Progress:   &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Acked == 0 || res.Errors != 0 {
		t.Fatalf("acked %d, errors %d", res.Acked, res.Errors)
	}
	// Every direct message reaches 1 recipient and every group message 3,
	// so with half of each the average fan-out is about 2.
	if res.AvgFanout < 1.5 || res.AvgFanout > 2.5 {
		t.Fatalf("fan-out %.2f, want about 2 (half direct, half groups of 4)", res.AvgFanout)
	}
	if res.SendToAck.Count() == 0 || res.SendToDeliver.Count() == 0 {
		t.Fatal("no latencies recorded")
	}
	if res.SendToAck.Quantile(0.5) > res.SendToAck.Max() {
		t.Fatal("median above max")
	}
	var sum strings.Builder
	res.Summary(&sum)
	if !strings.Contains(sum.String(), "send-to-deliver") || !strings.Contains(progress.String(), "measure") {
		t.Fatalf("summary %q / progress %q", sum.String(), progress.String())
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h loadgen.Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if got > tc.want || float64(got) < 0.93*float64(tc.want) {
			t.Errorf("Quantile(%v) = %v, want within 7%% below %v", tc.q, got, tc.want)
		}
	}
	if h.Max() != 10*time.Millisecond || h.Count() != 10000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b loadgen.Histogram
	for i := 1; i <= 100; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(i+100) * time.Millisecond)
	}
	a.Merge(&b)
	if a.Count() != 200 || a.Max() != 200*time.Millisecond {
		t.Fatalf("merged count %d max %v", a.Count(), a.Max())
	}
	if q := a.Quantile(0.5); q < 93*time.Millisecond || q > 100*time.Millisecond {
		t.Fatalf("merged median %v, want about 100ms", q)
	}
}

// TestRunAtRate: with a target rate the generator never sends faster than
// the rate (it may send slower on a busy machine), and the messages reach
// their recipients.
func TestRunAtRate(t *testing.T) {
	env := testserver.Start(t, testserver.Options{})
	const rate = 100.0
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL:      env.WSURL(),
		Token:    func(u string) (string, error) { return env.Token(u), nil },
		Users:    10,
		Rate:     rate,
		Duration: time.Second,
		Warmup:   200 * time.Millisecond,
		Poller:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Acked == 0 || res.Delivered == 0 || res.Errors != 0 {
		t.Fatalf("acked %d, delivered %d, errors %d", res.Acked, res.Delivered, res.Errors)
	}
	if limit := rate*res.Duration.Seconds()*1.1 + 2; float64(res.Sent) > limit {
		t.Fatalf("sent %d in %v, above the rate of %v/s", res.Sent, res.Duration, rate)
	}
}
