package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/store"
)

// request is one write waiting for the writer. Appends (the hot path) carry
// their message inline and are pooled; every other write is a closure run
// inside its own savepoint.
type request struct {
	ctx context.Context
	fn  func(w *writer) error // nil for an append

	msg store.NewMessage // append input
	out store.Message    // append result
	dup bool

	// conv, for a closure that changes a conversation's membership, names
	// it so the writer drops its cached state.
	conv string
	// weight, for a closure that does the work of many appends (a chunk
	// of cursors), is how many: a transaction takes about MaxBatch
	// appends' worth of work, not MaxBatch requests, so such requests do
	// not hold up the appends behind them for long. 0 counts as 1.
	weight int

	err  error
	done chan struct{} // capacity 1: the writer never blocks answering
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// writer owns the single write connection. It takes whatever requests are
// queued (up to MaxBatch appends' worth, see request.weight), runs them in one transaction, commits once and
// then answers every caller: one commit (and, at DurabilityFull, one fsync)
// is shared by the whole batch.
type writer struct {
	conn     *sql.Conn
	log      *slog.Logger
	queue    chan *request
	maxBatch int
	stop     chan struct{} // closed by close: stop taking requests
	exited   chan struct{} // closed when run returns
	stopOnce sync.Once

	// Statements prepared on conn, used by every batch.
	begin, commit, rollback        *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	findDup, readSeq, insertMsg    *sql.Stmt
	convExists, memberExists       *sql.Stmt
	walRestart                     *sql.Stmt

	ckpt      *checkpointer // told after each commit
	wal       walState
	shm       *os.File // the -shm file, read by walEnd
	shmBuf    [4]byte
	shmFailed bool
	opts      Options

	batches, writes atomic.Uint64 // committed or failed, for Stats
	walFramesTotal  atomic.Uint64 // for Stats
	// Stall figures for Stats, in nanoseconds where durations.
	batchMax, restartMax, restartTotal   atomic.Int64
	slowBatches, restarts, restartFrames atomic.Uint64

	// convs caches per-conversation state for Append (see convState).
	// Writer goroutine only.
	convs map[string]*convState

	// cache holds the statements of the less frequent writes, prepared on
	// first use. Only the writer goroutine touches it.
	cache map[string]*sql.Stmt

	// sync, at DurabilityFull, fsyncs each committed batch and answers
	// it (see syncer); nil otherwise, and the writer answers after
	// COMMIT. gen numbers batches and touched is what the current one
	// wrote, for sync's read caps. Writer goroutine only.
	sync    *syncer
	gen     uint64
	touched map[capKey]touch
}

// bg is the context of statements the writer runs: a caller's cancellation
// must not abort a transaction shared with other callers, so callers' contexts
// are checked between requests instead.
var bg = context.Background()

func newWriter(ctx context.Context, conn *sql.Conn, opts Options, ckpt *checkpointer) (*writer, error) {
	w := &writer{
		ckpt:     ckpt,
		opts:     opts,
		conn:     conn,
		log:      opts.Logger,
		queue:    make(chan *request, opts.QueueLen),
		maxBatch: opts.MaxBatch,
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
		cache:    make(map[string]*sql.Stmt),
		convs:    make(map[string]*convState),
		touched:  make(map[capKey]touch),
	}
	w.wal = newWALState(opts.walRestartBytes)
	stmts := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT op"},
		{&w.release, "RELEASE op"},
		{&w.rollbackTo, "ROLLBACK TO op"},
		{&w.findDup, `SELECT seq, body, meta, created_at FROM messages
			WHERE client_msg_id = ? AND conversation_id = ? AND sender = ? AND client_msg_id <> ''`},
		// Plain single-row statements: INSERT ... SELECT or RETURNING would
		// make SQLite open a statement journal and an ephemeral table on
		// every append. EXPLAIN of insertMsg: one seek per B-tree (the
		// client-id index, then the primary key, each a NoConflict whose
		// position the insert reuses), no foreign-key check (messages has
		// none), no other statement: what an append costs beyond that is
		// the B-tree pages and their WAL frames.
		{&w.readSeq, "SELECT " + lastSeqOf + " FROM conversations c WHERE c.id = ?"},
		{&w.insertMsg, `INSERT INTO messages (conversation_id, seq, sender, client_msg_id, body, meta, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (client_msg_id, conversation_id, sender) WHERE client_msg_id <> '' DO NOTHING`},
		{&w.convExists, "SELECT kind FROM conversations WHERE id = ?"},
		{&w.memberExists, "SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?"},
		{&w.walRestart, "PRAGMA wal_checkpoint(RESTART)"},
	}
	for _, s := range stmts {
		st, err := conn.PrepareContext(ctx, s.sql)
		if err != nil {
			return nil, fmt.Errorf("sqlite: prepare %q: %w", s.sql, err)
		}
		*s.dst = st
	}
	if opts.Durability == DurabilityFull {
		sy, err := newSyncer(opts.Path+"-wal", w.log, opts.beforeSync)
		if err != nil {
			return nil, err
		}
		w.sync = sy
	}
	return w, nil
}

// do queues r and waits for its answer. answered reports whether the writer
// is done with r (so it may be reused); if ctx ends or the store closes
// first, r is abandoned to the writer, which may still commit it.
func (w *writer) do(ctx context.Context, r *request) (answered bool, err error) {
	if err := w.enqueue(ctx, r); err != nil {
		return true, err
	}
	return w.wait(ctx, r)
}

// enqueue queues r; on error r was not queued.
func (w *writer) enqueue(ctx context.Context, r *request) error {
	select {
	case <-w.stop:
		return store.ErrClosed
	default:
	}
	select {
	case w.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-w.stop:
		return store.ErrClosed
	}
}

// wait waits for the answer to a queued r; see do.
func (w *writer) wait(ctx context.Context, r *request) (answered bool, err error) {
	select {
	case <-r.done:
		return true, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	case <-w.exited:
		// The writer may have answered just before exiting; a request that
		// slipped into the queue after the final drain never will be.
		select {
		case <-r.done:
			return true, r.err
		default:
			return false, store.ErrClosed
		}
	}
}

// stmt returns the prepared form of query, preparing it on first use. It
// must only be called from the writer goroutine (inside a request's fn).
func (w *writer) stmt(query string) (*sql.Stmt, error) {
	if st, ok := w.cache[query]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(bg, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	w.cache[query] = st
	return st, nil
}

// execStmt runs a cached statement that returns no rows.
func (w *writer) execStmt(query string, args ...any) (sql.Result, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(bg, args...)
}

// queryRow runs a cached statement and scans its first row into dest.
func (w *writer) queryRow(query string, args []any, dest ...any) error {
	st, err := w.stmt(query)
	if err != nil {
		return err
	}
	return st.QueryRowContext(bg, args...).Scan(dest...)
}

// exec runs fn inside the writer's transaction (in its own savepoint, so
// that an error undoes only fn's changes) and returns fn's error.
func (w *writer) exec(ctx context.Context, fn func(w *writer) error) error {
	return w.execFor(ctx, "", fn)
}

// execFor is exec for a write that changes convID's membership.
func (w *writer) execFor(ctx context.Context, convID string, fn func(w *writer) error) error {
	r := &request{ctx: ctx, fn: fn, conv: convID, done: make(chan struct{}, 1)}
	_, err := w.do(ctx, r)
	return err
}

// execWeighted runs fns as exec would, fns[i] weighing weights[i] (see
// request.weight), but queues them all before waiting for any: they cost
// one wait in the queue instead of one each, while the writer still
// spreads them over as many transactions as their weight needs. It
// returns the first error; the other fns may have been committed or not.
func (w *writer) execWeighted(ctx context.Context, fns []func(w *writer) error, weights []int) error {
	reqs := make([]*request, 0, len(fns))
	var err error
	for i, fn := range fns {
		r := &request{ctx: ctx, fn: fn, weight: weights[i], done: make(chan struct{}, 1)}
		if err = w.enqueue(ctx, r); err != nil {
			break
		}
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		if _, werr := w.wait(ctx, r); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func (w *writer) run() {
	defer close(w.exited)
	if w.sync != nil {
		go w.sync.run()
		defer func() { // before exited: every request is answered
			close(w.sync.in)
			<-w.sync.exited
		}()
	}
	batch := make([]*request, 0, w.maxBatch)
	// The last transaction's start and size, for CommitInterval.
	var lastStart time.Time
	lastSize := 0
	for {
		weight := 0 // of batch, see request.weight
		// Stop wins over queued work, so that Close is prompt and what is
		// still queued is answered ErrClosed rather than run.
		select {
		case <-w.stop:
			w.drain()
			return
		default:
		}
		select {
		case r := <-w.queue:
			batch = append(batch, r)
			weight += r.weightOf()
		case <-w.stop:
			w.drain()
			return
		}
		// Gather what arrives within CommitInterval of the last
		// transaction's start into this one, if that one had company (a
		// single caller writing one write after another must not be
		// slowed to one write per interval: PostgreSQL's commit_siblings)
		// and no full batch is waiting already. Close waits for this
		// pause: it is short.
		if wait := w.opts.CommitInterval - time.Since(lastStart); wait > 0 && lastSize > 1 && len(w.queue) < w.maxBatch {
			time.Sleep(wait)
		}
	fill:
		for weight < w.maxBatch {
			select {
			case r := <-w.queue:
				batch = append(batch, r)
				weight += r.weightOf()
			default:
				break fill
			}
		}
		start := time.Now()
		lastStart, lastSize = start, len(batch)
		w.runBatch(batch)
		w.noteBatch(time.Since(start))
		w.batches.Add(1)
		w.writes.Add(uint64(len(batch)))
		if w.sync != nil {
			// Answered once durable; the next batch runs meanwhile.
			w.sync.in <- syncBatch{gen: w.gen, reqs: batch}
			batch = w.sync.batchSlice(w.maxBatch)
		} else {
			for i, r := range batch {
				r.done <- struct{}{} // after this r belongs to its caller again
				batch[i] = nil
			}
			batch = batch[:0]
		}
		// After answering, so the callers of this batch do not wait for
		// it; what queued meanwhile does, once every walRestartBytes.
		w.maybeRestartWAL()
	}
}

// noteBatch records a batch's duration for Stats.
func (w *writer) noteBatch(d time.Duration) {
	if d > SlowBatch {
		w.slowBatches.Add(1)
	}
	storeMax(&w.batchMax, d)
}

// storeMax raises m to d; only the writer stores, so Load then Store is
// enough.
func storeMax(m *atomic.Int64, d time.Duration) {
	if int64(d) > m.Load() {
		m.Store(int64(d))
	}
}

// weightOf is r.weight, at least 1.
func (r *request) weightOf() int { return max(r.weight, 1) }

// drain answers every request still queued at shutdown.
func (w *writer) drain() {
	for {
		select {
		case r := <-w.queue:
			r.err = store.ErrClosed
			r.done <- struct{}{}
		default:
			return
		}
	}
}

// runBatch executes batch in one transaction. Errors a caller should see
// (not a member, conflict...) are per request; an SQLite failure (I/O, disk
// full) aborts the whole transaction and is reported to every request in it,
// since none of them was committed.
func (w *writer) runBatch(batch []*request) {
	if len(w.convs) > convCacheMax {
		w.forgetAll()
	}
	w.gen++
	clear(w.touched)
	if w.sync != nil {
		if err := w.sync.err(); err != nil {
			w.failAll(batch, err)
			return
		}
	}
	if _, err := w.begin.ExecContext(bg); err != nil {
		w.failAll(batch, fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	for _, r := range batch {
		r.err = nil
		if err := r.ctx.Err(); err != nil {
			r.err = err // the caller has gone: do not write on its behalf
			continue
		}
		var fatal error
		if r.fn == nil {
			fatal = w.appendOne(r)
		} else {
			fatal = w.runOp(r)
		}
		if fatal != nil {
			w.abort(batch, fatal)
			return
		}
	}
	if w.sync != nil && len(w.touched) > 0 {
		// Before COMMIT, which makes the batch visible to readers.
		w.sync.caps.register(w.gen, w.touched)
	}
	if _, err := w.commit.ExecContext(bg); err != nil {
		w.abort(batch, fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	w.countFrames()
	w.ckpt.committed()
}

func (w *writer) runOp(r *request) error {
	if r.conv != "" {
		defer w.forget(r.conv)
	}
	if _, err := w.savepoint.ExecContext(bg); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	r.err = r.fn(w)
	if r.err != nil {
		if _, err := w.rollbackTo.ExecContext(bg); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint: %w", err)
		}
	}
	if _, err := w.release.ExecContext(bg); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	return nil
}

func (w *writer) abort(batch []*request, err error) {
	w.forgetAll() // the cache may hold what is being rolled back
	if w.sync != nil {
		w.sync.caps.forget(w.gen, w.touched)
	}
	if _, rerr := w.rollback.ExecContext(bg); rerr != nil {
		err = errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rerr))
	}
	w.failAll(batch, err)
}

func (w *writer) failAll(batch []*request, err error) {
	w.log.Error("sqlite: write batch failed", "requests", len(batch), "err", err)
	for _, r := range batch {
		r.err = err
	}
}

// close stops the writer after its current batch, fails what is still
// queued and releases the write connection.
func (w *writer) close() error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.exited
	var errs []error
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.savepoint, w.release,
		w.rollbackTo, w.findDup, w.readSeq, w.insertMsg, w.convExists, w.memberExists, w.walRestart} {
		errs = append(errs, st.Close())
	}
	for _, st := range w.cache {
		errs = append(errs, st.Close())
	}
	if w.shm != nil {
		errs = append(errs, w.shm.Close())
	}
	if w.sync != nil {
		errs = append(errs, w.sync.close())
	}
	errs = append(errs, w.conn.Close())
	return errors.Join(errs...)
}

// wrote records, for the read caps of DurabilityFull (see syncer), that
// the current batch wrote seq to k, the first such seq coming after
// before. A no-op at DurabilityNormal.
func (w *writer) wrote(k capKey, before, seq int64) {
	if w.sync == nil {
		return
	}
	t, ok := w.touched[k]
	if !ok {
		t.before = before
	}
	t.last = seq
	w.touched[k] = t
}
