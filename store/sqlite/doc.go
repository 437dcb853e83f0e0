// Package sqlite is the embedded default engine of store.Store: one SQLite
// file in WAL mode, no server to run.
//
// # Driver
//
// modernc.org/sqlite, a pure-Go translation of SQLite: no cgo, so
// `go build` and `go run` work on any machine and cross-compile. Measured
// against github.com/mattn/go-sqlite3 (cgo) on the AppendParallel benchmark
// (2 shared cores), mattn used about 25% less CPU per append, but both spend
// as much again in write(2) calls for the WAL, which the driver cannot
// change; the gain did not justify requiring a C toolchain.
//
// # Writes: group commit
//
// Every write goes through one writer goroutine that owns the only write
// connection. Concurrent calls queue (bounded, Options.QueueLen; a full
// queue makes callers wait, bounded by their context) and the writer runs
// all that are waiting, up to Options.MaxBatch, in one transaction, then
// answers each caller (at DurabilityFull, once the batch is fsynced; see
// Durability). The commit cost (WAL write, and fsync at DurabilityFull) is
// thus shared by the batch. Under moderate load the queue is mostly empty
// and each write would commit alone, so a transaction starts no sooner
// than Options.CommitInterval (1 ms) after the previous one, if that one
// had more than one write: what arrives meanwhile joins it (a lone
// write, or a single caller's sequence of writes, never waits). Sequence
// numbers are
// assigned by a single goroutine: each Append inserts the message with its
// conversation's newest seq + 1. A conversation's newest seq (LastSeq) is
// not stored separately: it is read from its newest message (one seek), so
// an append writes no other row. A unique index on (client_msg_id,
// conversation_id, sender) makes retries idempotent; keyed by the id
// first, so that time-ordered ids (UUIDv7, what the bundled clients send)
// all append at one end of it.
//
// Because only the writer appends and changes memberships, it keeps each
// conversation's newest seq and its members in memory between batches
// (dropping them after a rollback or a membership change), so an append
// costs one INSERT. The consequence: a database file must be written by
// one Store, in one process, at a time.
//
// MarkDeliveredBatch (a flush of delivered cursors) is a few such writes,
// one per 256 cursors, all queued at once; each weighs 1/8 append per
// cursor against MaxBatch (what it costs the writer), so a flush of a few
// thousand cursors shares one or two commits with the appends instead of
// adding fsyncs, and a very large one is spread over several.
//
// A caller's failure (not a member, conflict) affects only that caller:
// non-append writes run in a savepoint each. An SQLite failure (I/O error,
// disk full) rolls back the whole batch and every caller in it gets the
// error; nothing of that batch was stored.
//
// If a caller's context ends while its write is queued, the writer skips
// it; if it ends while the batch is running, the write may still commit.
// A retry with the same ClientMsgID resolves either case.
//
// # Reads
//
// Reads use a separate pool of read-only connections (Options.ReadConns),
// which WAL lets run concurrently with the writer; each read sees the last
// committed state. A background goroutine checkpoints the WAL into the
// database file every second (PASSIVE: it never blocks the writer or
// readers), so commits do not pay for it.
//
// PASSIVE checkpoints alone never let the WAL start over while reads and
// writes continue, so it would grow without limit. Once the writer has
// written 256 MiB to it, it asks the checkpointer for a pass after each
// batch until at most 256 frames are left to copy (or it made 4 passes:
// writes outpace it), and then, between two batches and not behind a
// pass in progress (unless the WAL reached twice 256 MiB), runs a RESTART
// checkpoint from its own connection:
// it copies the frames left, waits for the readers that still read from
// the WAL (new readers read the database file and do not hold it up; the
// wait is bounded at 10 ms and retried after the next batch if it runs
// out), and the next batch writes the WAL from its start (the writer
// checks that it did, in the wal-index, and tries again if a reader
// starting at that moment kept the old WAL in use). The WAL file thus
// stays about 256 to 512 MiB and is overwritten in place. The cost is one
// stall of the writer per restart: copying what is left and an fsync of
// the WAL and of the database file, a few ms at DurabilityFull on a
// quiet disk (Stats reports restarts and the longest batch, the other
// stall).
//
// # Durability
//
// DurabilityNormal (default, PRAGMA synchronous=NORMAL): a commit writes
// the WAL but does not fsync it. An acknowledged write survives a crash of
// the process (SIGKILL, panic, OOM kill): the data is in the OS page cache
// and SQLite recovers it from the WAL on the next Open. On power loss or an
// OS crash the most recent acknowledged writes can be lost; the database
// stays consistent (never half a batch, never a gap in a sequence).
//
// DurabilityFull: the WAL is fsynced before callers are answered, so
// acknowledged writes also survive power loss and OS crashes, provided the
// disk honours fsync. Group commit keeps this to one fsync per batch, and
// the fsync is not in the writer's way: SQLite commits with
// synchronous=NORMAL and a second goroutine fsyncs the WAL file and then
// answers the batch's callers, while the writer runs the next batch (one
// fsync covers every batch committed before it). Nothing a reader returns
// is less durable than an acknowledgement: until a batch's fsync is done,
// reads of its conversations and channels (history, sync, LastSeq,
// unread counts) end before it, as synchronous=FULL, which fsyncs inside
// COMMIT, guaranteed. A failed fsync fails that batch's writes and every
// later one (the kernel may have dropped what it could not write), and
// what it did not sync stays unreadable until the store is reopened.
//
// # Schema
//
// The schema is a list of migrations applied in order at Open, each in its
// own transaction and recorded in the schema_version table; a database
// written by a newer binary (a higher version) is refused.
package sqlite
