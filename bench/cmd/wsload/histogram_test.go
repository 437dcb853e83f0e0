package main

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}} {
		got := h.quantile(tc.q)
		if got > tc.want || float64(got) < 0.93*float64(tc.want) {
			t.Errorf("quantile(%v) = %v, want within 7%% below %v", tc.q, got, tc.want)
		}
	}
}

func TestBucketRoundTrip(t *testing.T) {
	for us := int64(0); us < 1<<20; us = us*5/4 + 1 {
		d := time.Duration(us) * time.Microsecond
		lb := lowerBound(bucketOf(d))
		if lb > d || float64(lb) < 0.93*float64(d) {
			t.Fatalf("lowerBound(bucketOf(%v)) = %v", d, lb)
		}
	}
}
