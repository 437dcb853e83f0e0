package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
)

// checkpointer copies the WAL back into the database file from its own
// connection, so the writer rarely pays for it: SQLite's automatic
// checkpoint would run inside the commit of whichever batch crossed the
// threshold, stalling every caller in it. PASSIVE checkpoints never block
// the writer or readers.
//
// PASSIVE checkpoints alone do not bound the WAL, though: SQLite writes it
// from the beginning again only when a checkpoint has copied every frame
// and no reader still reads from it, which continuous writes and reads
// never allow, so the file grew without limit (about 1 GB in a 15 s load
// run), every frame landing in a new block of the file. The writer
// therefore restarts the WAL itself once it has written walRestartBytes
// to it (writer.restartWAL), after asking this goroutine to catch up so
// that little is left to copy while the writer waits.
type checkpointer struct {
	// mu serializes checkpoints: this goroutine's and the writer's
	// restarts. A second concurrent checkpoint would fail at once with
	// SQLITE_BUSY (SQLite does not wait for the checkpoint lock).
	mu       sync.Mutex
	db       *sql.DB
	every    time.Duration
	dirty    chan struct{} // capacity 1: the writer committed since the last run
	catchUp  chan struct{} // capacity 1: the writer is about to restart the WAL
	stop     chan struct{}
	exited   chan struct{}
	failures int
	log      func(msg string, args ...any)
	// backfilled is how many frames of the WAL the last checkpoint had
	// copied to the database file (its third result; 0 after a restart),
	// and catchUps counts the passes run at the writer's request: the
	// writer restarts the WAL when little is left to copy (see
	// maybeRestartWAL).
	backfilled, catchUps atomic.Int64
}

func (c *checkpointer) run() {
	defer close(c.exited)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.catchUp:
			// One pass per request: the writer asks again after its next
			// batch while it finds too much left to copy.
			c.checkpoint()
			c.catchUps.Add(1)
			continue
		case <-t.C:
		}
		select {
		case <-c.dirty:
		default:
			continue // nothing written since the last checkpoint
		}
		c.checkpoint()
	}
}

func (c *checkpointer) checkpoint() {
	var busy, logFrames, done int
	c.mu.Lock()
	err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
	if err == nil {
		c.backfilled.Store(int64(done))
	}
	c.mu.Unlock()
	if err != nil {
		c.failures++
		c.log("sqlite: checkpoint failed", "err", err, "failures", c.failures)
	}
}

// committed tells the checkpointer there is work; it never blocks.
func (c *checkpointer) committed() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// requestCatchUp asks for a checkpoint now, ahead of a restart (one pass,
// counted in catchUps when done). It never blocks.
func (c *checkpointer) requestCatchUp() {
	select {
	case c.catchUp <- struct{}{}:
	default:
	}
}

func (c *checkpointer) close() error {
	close(c.stop)
	<-c.exited
	return c.db.Close()
}

// walFrameHeader is the size of the header SQLite writes before each page
// in the WAL.
const walFrameHeader = 24

// restartBusyWait bounds how long restartWAL waits for readers still
// reading from the WAL (Options.walRestartWait overrides it); they take
// well under a millisecond, so this is rarely reached, and a restart that
// gives up is retried after the next batch (restartTries times, then
// after another half threshold). Every write queued meanwhile waits, so
// it is short.
const restartBusyWait = 10 * time.Millisecond

// A restart waits for the checkpointer until at most restartLeft frames
// are left for it to copy (about 1 MiB: a millisecond or two of copying
// and syncing), or until the checkpointer has made restartPasses passes
// for it (writes outpace it: what is left is what one pass leaves, the
// least a restart can get), or the WAL reached the hard bound.
const (
	restartLeft   = 256
	restartPasses = 4
	restartTries  = 3
)

// restartPoll is the first pause between restartWAL's tries; it doubles
// up to restartPollMax.
const (
	restartPoll    = 100 * time.Microsecond
	restartPollMax = 5 * time.Millisecond
)

// walState is the writer's account of the WAL, for restarts. Writer
// goroutine only.
type walState struct {
	frames    int64 // frames in the WAL (since it last restarted)
	soft      int64 // at this count, ask the checkpointer to catch up
	hard      int64 // at this count, restart whether it has or not
	threshold int64 // frames in walRestartBytes
	asked     bool  // catch-up requested, restart pending
	passes0   int64 // checkpointer.catchUps when asked
	tries     int   // restarts given up (readers busy) since asked
}

func newWALState(restartBytes int64) walState {
	n := max(1, restartBytes/(pageSize+walFrameHeader))
	return walState{soft: n, hard: 2 * n, threshold: n}
}

// countFrames updates the writer's account of the WAL after a commit:
// where it ends now, and (for Stats) the pages the commit wrote, which
// SQLite counts per connection (SQLITE_DBSTATUS_CACHE_WRITE; only the
// writer's connection writes).
func (w *writer) countFrames() {
	var n int
	_ = w.conn.Raw(func(dc any) error {
		st, ok := dc.(msqlite.DBStatus)
		if !ok {
			return nil
		}
		var err error
		n, _, err = st.Status(msqlite.DBStatusCacheWrite, true)
		return err
	})
	w.walFramesTotal.Add(uint64(n))
	if end, ok := w.walEnd(); ok {
		w.wal.frames = end
	} else {
		w.wal.frames += int64(n)
	}
	if w.wal.frames >= w.wal.soft && !w.wal.asked {
		w.wal.asked = true
		w.wal.passes0 = w.ckpt.catchUps.Load()
		w.ckpt.requestCatchUp()
	}
}

// walEnd returns the number of frames in the WAL, which is where the next
// commit writes: mxFrame of the wal-index header in the -shm file (a u32
// in the host's byte order at offset 16, https://www.sqlite.org/walformat.html).
// A successful RESTART checkpoint does not guarantee that the next commit
// starts the WAL over (a reader that was starting its transaction at that
// moment can still take a WAL snapshot and make SQLite keep appending), so
// the writer checks where the WAL really ends rather than assuming. false
// if the file cannot be read: the writer then counts the frames it writes
// and trusts restarts.
func (w *writer) walEnd() (int64, bool) {
	if w.shm == nil {
		if w.shmFailed {
			return 0, false
		}
		f, err := os.Open(w.opts.Path + "-shm")
		if err != nil {
			w.shmFailed = true
			w.log.Warn("sqlite: cannot read the WAL index; WAL restarts are unchecked", "err", err)
			return 0, false
		}
		w.shm = f
	}
	if _, err := w.shm.ReadAt(w.shmBuf[:], 16); err != nil {
		return 0, false
	}
	return int64(binary.NativeEndian.Uint32(w.shmBuf[:])), true
}

// maybeRestartWAL restarts the WAL once the checkpointer has copied
// nearly all of it (see restartLeft), or regardless once it is twice the
// threshold. It runs between batches, after their callers were answered,
// and every write queued meanwhile waits for it: what it costs is what
// the checkpointer left to copy (and sync), so it asks the checkpointer
// for another pass after each batch until little is left, and does not
// wait for a pass in progress until the WAL reaches twice the threshold:
// from there it waits, so that the bound holds however slow the passes
// are (on a loaded machine one can outlast many batches).
func (w *writer) maybeRestartWAL() {
	if !w.wal.asked {
		return
	}
	forced := w.wal.frames >= w.wal.hard
	left := w.wal.frames - w.ckpt.backfilled.Load()
	if !forced && left > restartLeft && w.ckpt.catchUps.Load()-w.wal.passes0 < restartPasses {
		w.ckpt.requestCatchUp()
		return
	}
	start := time.Now()
	if forced {
		w.ckpt.mu.Lock()
	} else if !w.ckpt.mu.TryLock() {
		// A pass is running: waiting for it would stall the writer for
		// all of it, while after it (at the next batch) the restart has
		// less to copy.
		return
	}
	err := w.restartWAL()
	w.ckpt.mu.Unlock()
	d := time.Since(start)
	w.restarts.Add(1)
	w.restartTotal.Add(int64(d))
	storeMax(&w.restartMax, d)
	if err != nil {
		if w.wal.tries++; w.wal.tries < restartTries && !forced {
			return // after the next batch, which leaves only its frames to copy
		}
		// Try again after another half threshold rather than after every
		// batch, which would stall each one.
		w.wal.asked, w.wal.tries = false, 0
		w.wal.soft = w.wal.frames + (w.wal.threshold+1)/2
		w.wal.hard = w.wal.soft + w.wal.threshold
		w.log.Warn("sqlite: WAL restart postponed", "frames", w.wal.frames, "err", err)
		return
	}
	// If the restart did not take (see walEnd), the next commit finds the
	// WAL still past the threshold and the writer tries again.
	w.wal = newWALState(w.opts.walRestartBytes)
}

// errReadersBusy: restartWAL gave up waiting for readers.
var errReadersBusy = errors.New("readers still use the WAL")

// restartWAL makes SQLite write the WAL from its beginning again, so that
// the file stays about walRestartBytes long and is overwritten in place
// (appending to a file costs the kernel a new, zeroed block per page, and
// a long WAL slows checkpoints and readers' lookups).
//
// A RESTART checkpoint from the writer's own connection, between batches,
// is the one that cannot starve: it copies what the checkpointer has not
// yet copied (no new frames can arrive: this goroutine is the only
// writer), then needs every reader that started before the copy finished
// to be done, while readers that start later read the database file and
// do not hold it up; the next transaction then starts at the WAL's first
// frame. SQLite's busy handler would sleep 1, 2, 5, 10... ms between
// tries, far longer than a reader takes, so the writer turns it off and
// polls instead.
//
// The caller holds ckpt.mu.
func (w *writer) restartWAL() error {
	if err := w.setBusyTimeout(0); err != nil {
		return err
	}
	start := time.Now()
	var err error
	for pause := restartPoll; ; pause = min(2*pause, restartPollMax) {
		var busy, logFrames, done int
		err = w.walRestart.QueryRowContext(bg).Scan(&busy, &logFrames, &done)
		if err == nil {
			if before := w.ckpt.backfilled.Swap(int64(done)); int64(done) > before {
				w.restartFrames.Add(uint64(int64(done) - before))
			}
		}
		if err == nil && busy == 0 {
			// The next commit writes the WAL from its start, of which
			// nothing is copied yet.
			w.ckpt.backfilled.Store(0)
		}
		if err != nil || busy == 0 {
			break
		}
		if time.Since(start) > w.opts.walRestartWait {
			err = errReadersBusy
			break
		}
		time.Sleep(pause)
	}
	return errors.Join(err, w.setBusyTimeout(w.opts.BusyTimeout))
}

func (w *writer) setBusyTimeout(d time.Duration) error {
	if _, err := w.conn.ExecContext(bg, fmt.Sprintf("PRAGMA busy_timeout = %d", d.Milliseconds())); err != nil {
		return fmt.Errorf("sqlite: set busy_timeout: %w", err)
	}
	return nil
}
