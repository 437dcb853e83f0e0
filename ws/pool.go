package ws

import "sync"

// Buffers are pooled by size class so that connections hold them only while
// a read or write is in progress (or while the caller holds a message
// returned by Read). Pools store *[]byte so Put does not allocate.

// bufClasses are the pooled capacities; larger buffers are allocated and
// dropped.
var bufClasses = [...]int{512, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

var bufPools [len(bufClasses)]sync.Pool

// maxPooled is the largest pooled capacity.
const maxPooled = 1 << 20

// getBuf returns a buffer with len == cap >= n.
func getBuf(n int) *[]byte {
	for i, c := range bufClasses {
		if n <= c {
			if v := bufPools[i].Get(); v != nil {
				return v.(*[]byte)
			}
			b := make([]byte, c)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

// putBuf returns b to its class; buffers of other capacities are dropped.
func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	for i, cc := range bufClasses {
		if c == cc {
			*b = (*b)[:c]
			bufPools[i].Put(b)
			return
		}
	}
}

// ctlPool holds buffers for control payloads split across reads.
var ctlPool = sync.Pool{New: func() any { return new([maxControlPayload]byte) }}
