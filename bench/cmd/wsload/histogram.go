package main

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram: 16 linear sub-buckets per
// power of two of microseconds, so any quantile is within ~6% of the truth.
// It never allocates after construction.
type histogram struct {
	counts [64 * 16]int64
	n      int64
}

const subBits = 4

func bucketOf(d time.Duration) int {
	us := uint64(d.Microseconds())
	if us < 1<<subBits {
		return int(us)
	}
	exp := bits.Len64(us) - 1 - subBits
	sub := (us >> exp) & (1<<subBits - 1)
	return (exp+1)<<subBits | int(sub)
}

func lowerBound(b int) time.Duration {
	exp, sub := b>>subBits, uint64(b&(1<<subBits-1))
	if exp == 0 {
		return time.Duration(sub) * time.Microsecond
	}
	return time.Duration((1<<subBits|sub)<<(exp-1)) * time.Microsecond
}

func (h *histogram) record(d time.Duration) {
	b := bucketOf(d)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := int64(q * float64(h.n))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen > want {
			return lowerBound(i)
		}
	}
	return lowerBound(len(h.counts) - 1)
}
