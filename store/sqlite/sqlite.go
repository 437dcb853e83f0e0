package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexhq/duplex/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrLocked is returned by Open when another Store holds the database.
var ErrLocked = errors.New("sqlite: database is in use by another Store")

// Durability says when an acknowledged write is safe. See the package
// documentation for exactly what each level survives.
type Durability string

const (
	// DurabilityNormal (synchronous=NORMAL in WAL mode): an acknowledged
	// write survives a process crash (SIGKILL, panic); the last
	// transactions may be lost, never corrupted, on power loss or OS crash.
	DurabilityNormal Durability = "normal"
	// DurabilityFull: the WAL is fsynced after every commit before its
	// writes are acknowledged or readable, so an acknowledged write also
	// survives power loss or an OS crash. Costs one fsync per group
	// commit, which overlaps the next group's work.
	DurabilityFull Durability = "full"
)

// Options configure Open. Only Path is required.
type Options struct {
	// Path is the database file, created if absent. Its directory must
	// exist. Only one Store may write a file at a time (see the package
	// documentation). The WAL (-wal, -shm) files live next to it. In-memory
	// databases are not supported: readers and the writer use separate
	// connections to one file.
	Path string
	// Durability defaults to DurabilityNormal.
	Durability Durability
	// ReadConns bounds the reader pool (default 2*GOMAXPROCS, at least 4).
	ReadConns int
	// MaxBatch bounds how many queued writes one transaction commits
	// (default 512); a write that does the work of many appends
	// (MarkDeliveredBatch's chunks) counts as that many.
	MaxBatch int
	// CommitInterval is the least time between the starts of two
	// transactions while writes come from several callers at once
	// (default 1ms; negative: none). A write that arrives sooner after a
	// transaction of more than one write started waits out the rest of
	// the interval, and the writes of that interval share one commit (and
	// at DurabilityFull one fsync), where each would otherwise commit
	// almost alone. The cost is up to that much latency per write, only
	// while writes arrive more often than that from more than one caller:
	// a lone write, or one caller's writes one after another, never wait,
	// and under heavy load transactions take longer than the interval
	// anyway. At 5,000 messages a second the default saved the server
	// about 25% of its CPU per message at DurabilityFull and 7% at
	// DurabilityNormal, for about 1 ms more median latency
	// (docs/benchmarks.md).
	CommitInterval time.Duration
	// QueueLen bounds the writes waiting for the writer (default 8192);
	// when full, writers wait, bounded by their context.
	QueueLen int
	// BusyTimeout is how long a connection waits for a lock held by
	// another process on the same file (default 5s).
	BusyTimeout time.Duration
	// Logger receives engine-level events (default slog.Default()).
	Logger *slog.Logger

	// walRestartBytes is the WAL size past which the writer restarts it
	// (default walRestartSize; tests set it lower), and walRestartWait
	// how long a restart waits for readers (default restartBusyWait;
	// tests that assert the WAL's size set it longer, since a postponed
	// restart lets the WAL grow past the bound they check).
	walRestartBytes int64
	walRestartWait  time.Duration
	// beforeSync, if set, runs before each of the syncer's fsyncs; an
	// error stands for a failed fsync. Tests use it to hold committed
	// batches back from durability.
	beforeSync func() error
}

func (o *Options) setDefaults() error {
	if o.Path == "" {
		return fmt.Errorf("sqlite: %w: empty Path", store.ErrInvalid)
	}
	if strings.ContainsAny(o.Path, "?#") || strings.HasPrefix(o.Path, "file:") || strings.HasPrefix(o.Path, ":memory:") {
		return fmt.Errorf("sqlite: %w: Path %q must be a plain file path", store.ErrInvalid, o.Path)
	}
	switch o.Durability {
	case "":
		o.Durability = DurabilityNormal
	case DurabilityNormal, DurabilityFull:
	default:
		return fmt.Errorf("sqlite: %w: unknown Durability %q (want %q or %q)",
			store.ErrInvalid, o.Durability, DurabilityNormal, DurabilityFull)
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	switch {
	case o.CommitInterval == 0:
		o.CommitInterval = defaultCommitInterval
	case o.CommitInterval < 0:
		o.CommitInterval = 0
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 8192
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.walRestartBytes <= 0 {
		o.walRestartBytes = walRestartSize
	}
	if o.walRestartWait <= 0 {
		o.walRestartWait = restartBusyWait
	}
	return nil
}

// dsn builds a modernc.org/sqlite data source name. Pragmas go in the DSN
// so that every connection the pool opens gets them, not just the first.
func (o *Options) dsn(readOnly bool) string {
	// NORMAL at both levels: at DurabilityFull the writer's syncer
	// fsyncs the WAL after each commit instead of SQLite inside it (see
	// syncer), which with NORMAL's syncs at checkpoints and WAL restarts
	// is what synchronous=FULL does.
	sync := "NORMAL"
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", o.BusyTimeout.Milliseconds()),
		"_pragma=mmap_size(268435456)", // reads of hot pages without a syscall each
		"_pragma=synchronous(" + sync + ")",
		"_pragma=foreign_keys(1)",
		"_pragma=temp_store(MEMORY)",
	}
	if readOnly {
		q = append(q, "_pragma=query_only(1)", "_pragma=cache_size(-16384)")
	} else {
		// The writer's cache must hold the tail pages of every active
		// conversation, or each append re-reads them.
		q = append(q, "_pragma=wal_autocheckpoint(0)", "_pragma=cache_size(-65536)", // see checkpointer
			// A WAL that outgrew the restart threshold (readers held a
			// restart off) is cut back when it next restarts; below this
			// it keeps its size, to be overwritten in place.
			fmt.Sprintf("_pragma=journal_size_limit(%d)", 3*o.walRestartBytes))
	}
	return o.Path + "?" + strings.Join(q, "&")
}

// defaultCommitInterval is Options.CommitInterval's default: long enough
// to gather the writes of moderate load into one commit, short next to the
// fsync at DurabilityFull and to what a person notices.
const defaultCommitInterval = time.Millisecond

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file while writes continue. A page appended to many times in
// that interval (a busy conversation's tail) is copied once, so longer is
// cheaper: BenchmarkAppendParallel spent 10-20% less CPU per append at 1s
// than at 100ms. It also bounds how long a commit at DurabilityNormal
// stays in the WAL without an fsync (each checkpoint syncs the WAL first).
const checkpointEvery = time.Second

// walRestartSize is the WAL size past which the writer restarts the WAL
// (see writer.restartWAL): the file stays about this long, and is
// overwritten in place rather than extended. Appends write 2-2.7 pages
// each, so at 20,000/s a 64 MiB WAL restarted 3-4 times a second, each
// restart a stall of the writer (10-30 ms measured) and extra
// checkpoint passes: BenchmarkAppendParallel spent about 10% less CPU
// per append with 256 MiB (4 A/B pairs, both durabilities), and at
// 5,000/s a restart comes every 6 s or so instead of every 1.5, out of
// the 99th percentile. Readers' WAL lookups start at the checkpointed
// frame, so they do not slow with the file's length; recovery after a
// crash reads the WAL (at most about twice this) once.
const walRestartSize = 256 << 20

// Store is the SQLite engine of store.Store. All writes go through one
// writer goroutine that commits them in batches (group commit); reads use a
// separate pool of connections, which WAL mode lets run concurrently with
// the writer.
type Store struct {
	opts   Options
	read   *sql.DB
	wdb    *sql.DB
	w      *writer
	ckpt   *checkpointer
	lock   *os.File // flock held while open (nil where unsupported)
	closed atomic.Bool
	stmts  sync.Map // query -> *sql.Stmt on the reader pool
	once   sync.Once
	cerr   error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at opts.Path, applies
// pending schema migrations and starts the writer goroutine. Close stops it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	lock, err := lockFile(opts.Path)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, opts)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func open(ctx context.Context, opts Options) (*Store, error) {
	wdb, err := sql.Open("sqlite", opts.dsn(false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	// The writer owns the only write connection for the Store's lifetime,
	// so this process never contends with itself for SQLite's write lock.
	wdb.SetMaxOpenConns(1)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	if err := setJournalMode(ctx, conn); err != nil {
		conn.Close()
		wdb.Close()
		return nil, err
	}
	if err := migrate(ctx, conn, migrations, opts.Logger); err != nil {
		conn.Close()
		wdb.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite", opts.dsn(true))
	if err != nil {
		conn.Close()
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open readers %s: %w", opts.Path, err)
	}
	read.SetMaxOpenConns(opts.ReadConns)
	read.SetMaxIdleConns(opts.ReadConns)
	cdb, err := sql.Open("sqlite", opts.dsn(false))
	if err != nil {
		read.Close()
		conn.Close()
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open checkpointer %s: %w", opts.Path, err)
	}
	cdb.SetMaxOpenConns(1)
	ckpt := &checkpointer{db: cdb, every: checkpointEvery, dirty: make(chan struct{}, 1),
		catchUp: make(chan struct{}, 1), stop: make(chan struct{}), exited: make(chan struct{}), log: opts.Logger.Warn}
	w, err := newWriter(ctx, conn, opts, ckpt)
	if err != nil {
		cdb.Close()
		read.Close()
		conn.Close()
		wdb.Close()
		return nil, err
	}
	s := &Store{opts: opts, read: read, wdb: wdb, w: w, ckpt: ckpt}
	go w.run()
	go ckpt.run()
	return s, nil
}

// pageSize is set before WAL mode, the one moment it can be. Appends to
// many conversations each dirty a leaf page, so smaller pages write fewer
// bytes per commit, but measured 1 KiB and 2 KiB pages cost more CPU in
// deeper trees than they saved in I/O.
const pageSize = 4096

// setJournalMode switches a new database to WAL (persistent in the file, so
// connections opened later inherit it) and checks an existing one is in it.
func setJournalMode(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return fmt.Errorf("sqlite: set page_size: %w", err)
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: set journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: journal_mode is %q, want wal (is the file on a filesystem without shared memory?)", mode)
	}
	return nil
}

// Ping checks that a reader connection can query the database.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the writer (writes still queued fail with store.ErrClosed;
// the batch in progress is committed first) and closes every connection.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		errs := []error{s.w.close(), s.ckpt.close(), s.wdb.Close()}
		s.stmts.Range(func(_, st any) bool {
			errs = append(errs, st.(*sql.Stmt).Close())
			return true
		})
		errs = append(errs, s.read.Close())
		if s.lock != nil {
			errs = append(errs, s.lock.Close())
		}
		s.cerr = errors.Join(errs...)
	})
	return s.cerr
}

// readable reports ErrClosed once Close has begun, so that readers fail
// with the sentinel rather than database/sql's internal error.
func (s *Store) readable() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// Stats are counters of the writer since Open, for metrics and tuning.
type Stats struct {
	Batches uint64 // transactions the writer ran (one commit each)
	Writes  uint64 // write requests in them; Writes/Batches is the mean batch
	Queued  int    // write requests waiting now (bounded by Options.QueueLen)
	// WALFrames counts the pages commits wrote to the WAL: the I/O cost of
	// writes (WALFrames/Writes is pages per write).
	WALFrames uint64

	// Writer stalls: while the writer runs a batch (or restarts the WAL
	// between batches) every write queued behind it waits, so these bound
	// the queueing part of a write's latency.
	BatchMax     time.Duration // longest batch: transaction, its requests and commit
	SlowBatches  uint64        // batches that took longer than SlowBatch
	Restarts     uint64        // WAL restarts tried, those readers held off included (see the package documentation)
	RestartMax   time.Duration // longest WAL restart, its waits for readers included
	RestartTotal time.Duration
	// RestartFrames counts the frames the restarts themselves copied to
	// the database file (the checkpointer had not yet): what made them slow.
	RestartFrames uint64
}

// SlowBatch is the batch duration past which Stats counts a batch as slow.
const SlowBatch = 10 * time.Millisecond

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.w.batches.Load(), Writes: s.w.writes.Load(), Queued: len(s.w.queue),
		WALFrames: s.w.walFramesTotal.Load(),
		BatchMax:  time.Duration(s.w.batchMax.Load()), SlowBatches: s.w.slowBatches.Load(),
		Restarts: s.w.restarts.Load(), RestartMax: time.Duration(s.w.restartMax.Load()),
		RestartTotal: time.Duration(s.w.restartTotal.Load()), RestartFrames: s.w.restartFrames.Load()}
}

// readStmt returns the reader-pool statement for query, preparing it once;
// database/sql then prepares it lazily on each pooled connection.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// now returns the current time truncated the way it is stored, so that the
// value returned to callers equals the value read back later.
func now() time.Time { return time.Now().UTC().Round(0) }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// newID returns a random conversation ID (96 bits: collisions are not a
// practical concern, and IDs reveal nothing about creation order).
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "c_" + hex.EncodeToString(b[:])
}
