package server

// frameRing is a FIFO of frames in a ring that grows by doubling as frames
// are queued and is dropped by shrink once empty, so an idle connection
// holds a few slots rather than what its busiest moment needed, and a
// queue kept non-empty for long reuses its slots instead of growing. The
// caller bounds it and guards it with its own lock.
type frameRing struct {
	buf  [][]byte // a power of two long, or nil
	r, n int      // read position and frames queued
}

// ringKeptSlots is the largest ring an empty queue keeps.
const ringKeptSlots = 4

func (q *frameRing) len() int { return q.n }

// push appends f, growing the ring if it is full.
func (q *frameRing) push(f []byte) {
	if q.n == len(q.buf) {
		grown := make([][]byte, max(ringKeptSlots, 2*len(q.buf)))
		for i := range q.n {
			grown[i] = q.buf[(q.r+i)&(len(q.buf)-1)]
		}
		q.buf, q.r = grown, 0
	}
	q.buf[(q.r+q.n)&(len(q.buf)-1)] = f
	q.n++
}

// pop removes and returns the oldest frame; the ring must not be empty.
func (q *frameRing) pop() []byte {
	f := q.buf[q.r]
	q.buf[q.r] = nil // the frame is the caller's now, not the ring's
	q.r = (q.r + 1) & (len(q.buf) - 1)
	q.n--
	if q.n == 0 {
		q.r = 0
	}
	return f
}

// shrink drops a grown ring if it is empty. Owners call it when their
// consumer goes idle rather than at every emptying, which under load would
// reallocate the ring at every burst.
func (q *frameRing) shrink() {
	if q.n == 0 && len(q.buf) > ringKeptSlots {
		q.buf = nil
	}
}
