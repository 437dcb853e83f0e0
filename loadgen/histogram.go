package loadgen

import (
	"math/bits"
	"sync"
	"time"
)

// Histogram is a concurrent log-linear latency histogram: 16 sub-buckets per
// power of two of microseconds, so quantiles are within about 6%. Recording
// does not allocate.
type Histogram struct {
	mu     sync.Mutex
	counts [64 << subBits]int64
	n      int64
	sum    time.Duration
	max    time.Duration
}

const subBits = 4

func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0).Microseconds())
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

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	b := min(bucketOf(d), len(h.counts)-1)
	h.mu.Lock()
	h.counts[b]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// Count returns the number of observations.
func (h *Histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile returns the q-quantile (0 < q <= 1), rounded down to its bucket.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
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
	return h.max
}

// Max returns the largest observation.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.max
}

// Mean returns the average observation.
func (h *Histogram) Mean() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Merge adds o's observations to h (o must not be h).
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	counts, n, sum, mx := o.counts, o.n, o.sum, o.max
	o.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range counts {
		h.counts[i] += c
	}
	h.n += n
	h.sum += sum
	h.max = max(h.max, mx)
}
