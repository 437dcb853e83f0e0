package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointer copies the WAL back into the database file from its own
// connection, so the writer never pays for it: SQLite's automatic
// checkpoint would run inside the commit of whichever batch crossed the
// threshold, stalling every caller in it. PASSIVE checkpoints never block
// the writer or readers; the WAL is reset once a checkpoint has caught up
// and the writer starts a new transaction.
type checkpointer struct {
	db       *sql.DB
	every    time.Duration
	dirty    chan struct{} // capacity 1: the writer committed since the last run
	stop     chan struct{}
	exited   chan struct{}
	failures int
	log      func(msg string, args ...any)
}

func (c *checkpointer) run() {
	defer close(c.exited)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		select {
		case <-c.dirty:
		default:
			continue // nothing written since the last checkpoint
		}
		var busy, logPages, done int
		err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &done)
		if err != nil {
			c.failures++
			c.log("sqlite: checkpoint failed", "err", err, "failures", c.failures)
		}
	}
}

// committed tells the checkpointer there is work; it never blocks.
func (c *checkpointer) committed() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

func (c *checkpointer) close() error {
	close(c.stop)
	<-c.exited
	return c.db.Close()
}
