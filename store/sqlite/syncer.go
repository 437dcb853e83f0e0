package sqlite

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
)

// At DurabilityFull the writer does not make SQLite fsync the WAL inside
// each COMMIT (synchronous=FULL would), which would stall it for the
// fsync, with every write queued behind it waiting too. It commits with
// synchronous=NORMAL and hands the batch to the syncer, which fsyncs the
// WAL file and only then answers the batch's callers, while the writer is
// already running the next batch. An fsync covers every commit that
// returned before it was called, so one fsync answers every batch that
// reached the syncer while the previous one ran (and SQLite's WAL
// recovery only ever keeps a prefix of commits, so a later batch is never
// durable without an earlier one). Acknowledged writes thus survive power
// loss exactly as with synchronous=FULL.
//
// What synchronous=FULL also gave is that readers never saw a commit
// before it was durable. Here a commit is visible to readers from its
// COMMIT, a few milliseconds before its fsync, so reads of messages and
// channel history are capped at what is known durable (pendingCaps): a
// client never syncs a message that power loss could take back and whose
// sequence number would then be given to another.

// syncBatch is one committed batch waiting for its fsync.
type syncBatch struct {
	gen  uint64
	reqs []*request
}

// syncDepth bounds the committed batches waiting for an fsync: past it the
// writer waits, so the WAL cannot run far ahead of what is durable.
const syncDepth = 4

// syncer fsyncs the WAL for the batches the writer committed, then answers
// their callers. Owned by the writer: started by newWriter when
// pipelining, stopped by the writer's run when it exits.
type syncer struct {
	wal    *os.File
	in     chan syncBatch
	exited chan struct{}
	caps   *pendingCaps
	log    *slog.Logger
	// fsync is datasync(wal), after Options.beforeSync.
	fsync func() error
	// failed is the first fsync error: after it nothing the writer
	// commits is reported durable (Linux may have dropped the pages it
	// failed to write), and the writer fails every later request.
	failed atomic.Pointer[error]
	// free recycles batch slices between the writer and the syncer.
	free chan []*request
}

func newSyncer(walPath string, log *slog.Logger, before func() error) (*syncer, error) {
	f, err := os.OpenFile(walPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open WAL for syncing: %w", err)
	}
	s := &syncer{wal: f, in: make(chan syncBatch, syncDepth), exited: make(chan struct{}),
		caps: newPendingCaps(), log: log, free: make(chan []*request, syncDepth+1)}
	// A previous process may have committed without syncing (it was
	// killed between a commit and its fsync): make that durable before
	// anything is read from it.
	if err := datasync(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("sqlite: sync WAL: %w", err)
	}
	s.fsync = func() error {
		if before != nil {
			if err := before(); err != nil {
				return err
			}
		}
		return datasync(f)
	}
	return s, nil
}

// batchSlice returns an empty slice for the writer's next batch.
func (s *syncer) batchSlice(capacity int) []*request {
	select {
	case b := <-s.free:
		return b
	default:
		return make([]*request, 0, capacity)
	}
}

// err is the sticky fsync failure, or nil.
func (s *syncer) err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// run answers batches as their fsyncs complete, until in is closed and
// drained.
func (s *syncer) run() {
	defer close(s.exited)
	var group []syncBatch
	for b := range s.in {
		group = append(group[:0], b)
	fill:
		for {
			select {
			case b, ok := <-s.in:
				if !ok {
					break fill
				}
				group = append(group, b)
			default:
				break fill
			}
		}
		err := s.err()
		if err == nil {
			if err = s.fsync(); err != nil {
				err = fmt.Errorf("sqlite: sync WAL: %w", err)
				s.failed.CompareAndSwap(nil, &err)
				s.log.Error("sqlite: WAL fsync failed; the store accepts no more writes", "err", err)
			}
		}
		last := group[len(group)-1].gen
		if err == nil {
			// Before answering: a caller that reads after its write
			// must find it.
			s.caps.durable(last)
		}
		for _, g := range group {
			for i, r := range g.reqs {
				if err != nil && r.err == nil {
					r.err = err
				}
				r.done <- struct{}{} // after this r belongs to its caller again
				g.reqs[i] = nil
			}
			select {
			case s.free <- g.reqs[:0]:
			default:
			}
		}
	}
}

func (s *syncer) close() error {
	<-s.exited
	return s.wal.Close()
}

// capKey names what a cap applies to: a conversation's messages, or a
// channel's history (the two name spaces are separate).
type capKey struct {
	channel bool
	name    string
}

// pendingCaps tracks, for each conversation and channel with commits not
// yet known durable, the highest sequence number (or channel offset) that
// is: reads show nothing past it. The writer registers a batch's
// conversations before its COMMIT (so no reader can see the commit
// without the cap), the syncer lifts caps once the batch's fsync is done.
type pendingCaps struct {
	mu   sync.RWMutex
	caps map[capKey]*pendingCap
}

type pendingCap struct {
	durable int64      // the highest seq known durable
	batches []batchSeq // committed since, oldest first
}

type batchSeq struct {
	gen uint64
	seq int64 // the highest seq batch gen wrote
}

func newPendingCaps() *pendingCaps { return &pendingCaps{caps: make(map[capKey]*pendingCap)} }

// readCap returns the highest seq (or channel offset) of k that reads may
// show, and whether there is such a cap (false: everything committed is
// durable, as always at DurabilityNormal).
func (s *Store) readCap(k capKey) (int64, bool) {
	if s.w.sync == nil {
		return 0, false
	}
	return s.w.sync.caps.capOf(k)
}

// visibleUpTo returns the highest seq (or channel offset) of k that reads
// may show: its cap, or math.MaxInt64 if it has none.
func (s *Store) visibleUpTo(k capKey) int64 {
	if c, ok := s.readCap(k); ok {
		return c
	}
	return math.MaxInt64
}

// capOf returns k's cap, if it has one.
func (p *pendingCaps) capOf(k capKey) (int64, bool) {
	p.mu.RLock()
	c, ok := p.caps[k]
	var durable int64
	if ok {
		durable = c.durable
	}
	p.mu.RUnlock()
	return durable, ok
}

// register records what batch gen wrote: for each key, its highest seq
// (touched) and the highest before the batch (before, for a key with no
// cap yet).
func (p *pendingCaps) register(gen uint64, touched map[capKey]touch) {
	p.mu.Lock()
	for k, t := range touched {
		c, ok := p.caps[k]
		if !ok {
			c = &pendingCap{durable: t.before}
			p.caps[k] = c
		}
		c.batches = append(c.batches, batchSeq{gen: gen, seq: t.last})
	}
	p.mu.Unlock()
}

// forget undoes register for a batch that was rolled back.
func (p *pendingCaps) forget(gen uint64, touched map[capKey]touch) {
	p.mu.Lock()
	for k := range touched {
		c, ok := p.caps[k]
		if !ok {
			continue
		}
		c.batches = slices.DeleteFunc(c.batches, func(b batchSeq) bool { return b.gen == gen })
		if len(c.batches) == 0 {
			delete(p.caps, k)
		}
	}
	p.mu.Unlock()
}

// durable lifts the caps of every batch up to gen.
func (p *pendingCaps) durable(gen uint64) {
	p.mu.Lock()
	for k, c := range p.caps {
		n := 0
		for n < len(c.batches) && c.batches[n].gen <= gen {
			c.durable = c.batches[n].seq
			n++
		}
		if n == len(c.batches) {
			delete(p.caps, k)
			continue
		}
		c.batches = c.batches[n:]
	}
	p.mu.Unlock()
}

// touch is what one batch wrote to one key.
type touch struct{ before, last int64 }
