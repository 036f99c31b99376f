// Package pgstore is the tuple store on PostgreSQL: any number of Relata
// nodes, each with its own caches, share one database.
//
// # Exact revisions across nodes: one counter row, locked by every write
//
// The head revision is one row, relata_revision(head). Every mutation (DeleteMatching,
// WriteSchema, Import) runs in one READ COMMITTED transaction whose first statement is
//
//	UPDATE relata_revision SET head = head + 1 WHERE id = 1 RETURNING head
//
// which both allocates the transaction's revision R and takes the row's lock until
// the transaction ends. Then it checks its preconditions, writes its tuple versions
// (created_rev = R, or deleted_rev = R on the version it ends), its change-log rows,
// its commit time, and NOTIFY, and commits with synchronous commit. Concurrent Writes
// of one node commit together (group commit, group.go): one transaction locks the row
// (SELECT … FOR UPDATE), runs the writes one after another at head+1, head+2, … and
// sets the head to the last; each write is judged exactly as it would be alone at its
// revision, and the argument below holds for every revision of the group.
//
// Why this is exact. (1) Writers are totally ordered by the lock: a second writer's
// UPDATE waits until the first transaction has ended, and then (READ COMMITTED
// re-reads the updated row) increments the value the first one committed, or the old
// value if it rolled back. So revisions are dense (a failed write gives its number
// back: no gaps) and R commits after every revision below R has committed or rolled
// back. (2) PostgreSQL releases a transaction's row locks only after its commit is
// durable and visible to new snapshots, so when head = R is visible to any
// statement, every write at ≤ R is visible to it as well, and no write at > R has
// committed yet as far as that statement can tell except by showing head > R.
// (3) A reader at R filters versions with created_rev ≤ R < deleted_rev. Versions
// written at > R are excluded by the filter whether or not they have committed, and
// every version written at ≤ R committed before R was ever returned as a head (or a
// zookie). So any statement, on any node, reading at any R ≤ some head it has seen
// sees exactly the writes acknowledged at ≤ R. (4) Preconditions, CREATE checks and
// the schema revision check run after the lock is taken, and READ COMMITTED gives each
// later statement a snapshot that includes every committed write: they see exactly
// the state at R−1, so they are atomic with the write. The change log is keyed by
// (revision, sequence) (relata_change; an import of new tuples logs its revision as
// one relata_change_batch row, sequence = position in it) and written in the same
// transaction, so Watch on any node reads it in revision order with no gaps: it only
// reads up to a head it has read.
//
// The cost is that writers are serialized across the fleet for the length of a write
// transaction (a few round trips and one WAL flush). Group commit spreads that over
// every Write a node has queued meanwhile, so a node's write throughput grows with its
// concurrent writers rather than being bounded by 1/(transaction latency); across
// nodes, groups still take the lock in turn. That suits an authorization workload
// that reads far more than it writes; an import batch (up to ~100,000
// tuples from the server's import pipeline) is one transaction that holds the lock
// while it copies its tuples in (about 1 s per 100,000 tuples).
// (SpiceDB's alternative, xid8 snapshots, lets writers run in parallel at the price of
// revisions that are snapshots rather than integers; Relata's zookies name integers.)
//
// # Garbage collection and readers
//
// The GC horizon is another row, relata_horizon(horizon). GC first commits the new
// horizon, then deletes versions with deleted_rev ≤ horizon in bounded batches. Every
// read checks the horizon in the same statement as its data, or in a later statement
// on the same connection (a pipelined batch): a read that still sees the old horizon
// ran on a snapshot taken before the horizon committed, hence before any deletion it
// could depend on; one that sees the new horizon returns ErrRevisionExpired. One node
// at a time collects, under an advisory lock.
//
// # Caches across nodes
//
// Each node follows the change log (follow.go): LISTEN/NOTIFY wakes it after every
// commit anywhere, and it polls as a fallback. It records, per bucket of read scopes,
// the newest revision that changed it, and the revision up to which it has read the
// whole log. A Reader answers ScopeTracker.UnchangedSince (and so lets the engine
// reuse a cached answer) only when the follower has read the log up to the reader's
// revision: a node never serves a cached answer at a revision whose writes it has not
// seen. WaitForRevision (Watch) wakes on the same follower.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relata/relata/tuples"
)

// Defaults applied by Options.EnsureDefaults.
const (
	// DefaultGCWindow is how long old revisions stay readable.
	DefaultGCWindow = 24 * time.Hour
	// DefaultGCInterval is how often a node tries to collect garbage.
	DefaultGCInterval = time.Minute
	// DefaultPollInterval is how often a node reads the head when no notification
	// woke it (the fallback when LISTEN/NOTIFY is lost).
	DefaultPollInterval = time.Second
	// DefaultMaxUpdatesPerWrite limits the updates of one Write.
	DefaultMaxUpdatesPerWrite = 1000
	// DefaultMaxConns is the pool size of one node.
	DefaultMaxConns = 20
	// DefaultReadCacheSize is the read cache's budget.
	DefaultReadCacheSize = 64 << 20
)

// Options configures a Store; zero fields take their defaults (EnsureDefaults).
type Options struct {
	// GCWindow is how long a revision stays readable after a newer one commits.
	GCWindow time.Duration
	// GCInterval is how often the node tries to run GC (only one node runs it at a
	// time); a negative value disables the background GC (CollectGarbage still works).
	GCInterval time.Duration
	// PollInterval is how often the node reads the head when no notification came.
	PollInterval time.Duration
	// MaxUpdatesPerWrite is the most updates one Write may carry.
	MaxUpdatesPerWrite int
	// MaxConns is the size of the connection pool (the URL's pool_max_conns wins).
	MaxConns int32
	// ReadCacheSize is the byte budget of the node's read cache (readcache.go); 0
	// takes DefaultReadCacheSize, a negative value disables it.
	ReadCacheSize int64
	// Logger receives the store's log lines; nil discards them.
	Logger *slog.Logger
	// NoCrossNodeTracking is for measurement only: the node does not follow other
	// nodes' writes (no LISTEN, no change-log reads; see follow.go). It is exact only
	// while this node is the database's only writer: after another node's write its
	// caches serve nothing more (answers stay exact) and Watch sees other nodes'
	// writes only at each PollInterval. Open refuses it when another node follows the
	// database. It exists to measure what keeping the caches exact across nodes costs.
	NoCrossNodeTracking bool
}

// EnsureDefaults replaces zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.GCWindow == 0 {
		o.GCWindow = DefaultGCWindow
	}
	if o.GCInterval == 0 {
		o.GCInterval = min(DefaultGCInterval, max(o.GCWindow/10, 100*time.Millisecond))
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.MaxUpdatesPerWrite == 0 {
		o.MaxUpdatesPerWrite = DefaultMaxUpdatesPerWrite
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ReadCacheSize == 0 {
		o.ReadCacheSize = DefaultReadCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// maxRev marks a live version's deleted_rev.
const maxRev = "9223372036854775807"

// notifyChannel is the LISTEN/NOTIFY channel every commit notifies.
const notifyChannel = "relata_commit"

// gcLock is the advisory lock key of GC ("relata gc" truncated to 8 bytes).
const gcLock int64 = 0x72656c6174616763

// commitTimeout bounds a COMMIT once sent; the caller's cancellation does not
// interrupt it, so that a cancelled request never leaves its outcome unknown.
const commitTimeout = 30 * time.Second

// Store is a tuples.Store on PostgreSQL. It also implements tuples.Importer,
// tuples.ImportPreparer and tuples.RevisionWaiter, and its readers
// tuples.ScopeTracker.
type Store struct {
	opts Options
	pool *pgxpool.Pool
	cfg  *pgxpool.Config

	// head is the newest head this node has seen; horizon the newest horizon. Both
	// only grow.
	head    atomic.Uint64
	horizon atomic.Uint64

	closed  atomic.Bool
	closing chan struct{}
	wg      sync.WaitGroup // background goroutines

	follow *follower
	// cache is the read cache (nil when disabled); queries counts round trips.
	cache   *readCache
	queries queryCounts
	// batch groups concurrent reads of one shape into one query (batch.go).
	batch batcher
	// group commits concurrent Writes in one transaction (group.go).
	group writeGroups

	// id names the store (loadIdentity); set in Open, then read-only.
	id tuples.Identity
	// changeBatchMax bounds an import's change log as one relata_change_batch row
	// (maxChangeBatch; tests lower it).
	changeBatchMax int
}

var (
	_ tuples.Store          = (*Store)(nil)
	_ tuples.Importer       = (*Store)(nil)
	_ tuples.ImportPreparer = (*Store)(nil)
	_ tuples.RevisionWaiter = (*Store)(nil)
	_ tuples.RecentHeader   = (*Store)(nil)
)

// Open connects to the database at url (postgres://USER@HOST:PORT/DB?sslmode=…),
// checks that it is migrated to this binary's version (see Migrate), and starts the
// node's change-log follower and background GC. opts may be nil.
func Open(ctx context.Context, url string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, err
	}
	if !hasParam(url, "pool_max_conns") {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, classify(ctx, "open", err)
	}
	s := &Store{opts: o, pool: pool, cfg: cfg, closing: make(chan struct{}), queries: newQueryCounts(), changeBatchMax: maxChangeBatch}
	if err := checkVersion(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	var head, horizon int64
	if err := pool.QueryRow(ctx, "SELECT r.head, h.horizon FROM relata_revision r, relata_horizon h").Scan(&head, &horizon); err != nil {
		pool.Close()
		return nil, classify(ctx, "open", err)
	}
	s.head.Store(uint64(head))
	s.horizon.Store(uint64(horizon))
	if s.id, err = loadIdentity(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if o.NoCrossNodeTracking {
		if err := refuseOtherNodes(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	s.follow, err = newFollower(ctx, s, tuples.Revision(head))
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.follow.local = o.NoCrossNodeTracking
	s.follow.lastPoll, s.follow.lastHead = tuples.Revision(head), tuples.Revision(head)
	s.cache = newReadCache(o.ReadCacheSize, s.follow)
	s.wg.Add(1)
	go s.follow.run()
	if !o.NoCrossNodeTracking {
		s.wg.Add(1)
		go s.follow.listen()
	}
	if o.GCInterval > 0 {
		s.wg.Add(1)
		go s.gcLoop()
	}
	return s, nil
}

// ErrOtherNodes is Open's refusal of Options.NoCrossNodeTracking on a database that
// another node follows.
var ErrOtherNodes = errors.New("another relata node follows this database")

// refuseOtherNodes fails when another node follows the database: every node with
// tracking on holds a connection in LISTEN, which pg_stat_activity shows (to the same
// role or a member of pg_read_all_stats). A node with tracking off holds none, so
// two of them do not see each other; this is a guard, not a lock.
func refuseOtherNodes(ctx context.Context, pool *pgxpool.Pool) error {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'LISTEN `+notifyChannel+`'`).Scan(&n)
	if err != nil {
		return classify(ctx, "look for other nodes", err)
	}
	if n > 0 {
		return fmt.Errorf("cross-node tracking off (measurement only) refused: %d connection(s) LISTEN on %s: %w", n, notifyChannel, ErrOtherNodes)
	}
	return nil
}

// loadIdentity reads the store's id from relata_meta (the first migration gives
// every database one), recording it if missing. The first time a Relata that names
// its zookies opens the database, it records the head as
// Identity.UnnamedThrough: the zookies older nodes issued up to then, which name no
// store, stay valid. Nodes opening together agree: the first insert wins.
func loadIdentity(ctx context.Context, pool *pgxpool.Pool) (tuples.Identity, error) {
	var id tuples.Identity
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO relata_meta (key, value) VALUES ('store_id', $1) ON CONFLICT (key) DO NOTHING`, tuples.NewStoreID()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO relata_meta (key, value) SELECT 'zookie_unnamed_through', head::text FROM relata_revision ON CONFLICT (key) DO NOTHING`); err != nil {
			return err
		}
		var through string
		err := tx.QueryRow(ctx, `SELECT (SELECT value FROM relata_meta WHERE key = 'store_id'), (SELECT value FROM relata_meta WHERE key = 'zookie_unnamed_through')`).Scan(&id.ID, &through)
		if err != nil {
			return err
		}
		n, err := strconv.ParseUint(through, 10, 64)
		if err != nil {
			return fmt.Errorf("relata_meta zookie_unnamed_through %q: %w", through, err)
		}
		id.UnnamedThrough = tuples.Revision(n)
		return nil
	})
	if err != nil {
		return tuples.Identity{}, classify(ctx, "read the store id", err)
	}
	return id, nil
}

// Identity returns the store's id (tuples.Store).
func (s *Store) Identity() tuples.Identity { return s.id }

// Close stops the follower and GC, waits for in-flight queries and closes the pool.
// Operations started after Close fail with tuples.ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return tuples.ErrClosed
	}
	close(s.closing)
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// observeHead records a head this node learned of.
func (s *Store) observeHead(rev tuples.Revision) {
	for {
		cur := s.head.Load()
		if uint64(rev) <= cur || s.head.CompareAndSwap(cur, uint64(rev)) {
			return
		}
	}
}

func (s *Store) observeHorizon(h tuples.Revision) {
	for {
		cur := s.horizon.Load()
		if uint64(h) <= cur || s.horizon.CompareAndSwap(cur, uint64(h)) {
			return
		}
	}
}

// HeadRevision reads the newest committed revision from the database, so that a
// zookie from any node is at or below it.
func (s *Store) HeadRevision(ctx context.Context) (tuples.Revision, error) {
	if s.closed.Load() {
		return 0, tuples.ErrClosed
	}
	head, err := s.headRevision(ctx)
	if err != nil {
		return 0, s.classify(ctx, "head revision", err)
	}
	s.observeHead(tuples.Revision(head))
	return tuples.Revision(head), nil
}

// RecentHead returns the newest revision whose writes this node's follower has
// recorded, with their schemas (tuples.RecentHeader): a reader there gets its schema
// from memory, with no round trip.
func (s *Store) RecentHead() tuples.Revision { return tuples.Revision(s.follow.known.Load()) }

// Horizon returns the oldest readable revision this node knows of.
func (s *Store) Horizon() tuples.Revision { return tuples.Revision(s.horizon.Load()) }

// ReaderAt returns a reader of rev. It reads the head from the database only when
// rev is newer than every head this node has seen.
func (s *Store) ReaderAt(ctx context.Context, rev tuples.Revision) (tuples.Reader, error) {
	if s.closed.Load() {
		return nil, tuples.ErrClosed
	}
	if h := s.Horizon(); rev < h {
		return nil, fmt.Errorf("revision %d, horizon %d: %w", rev, h, tuples.ErrRevisionExpired)
	}
	if rev > tuples.Revision(s.head.Load()) {
		head, err := s.HeadRevision(ctx)
		if err != nil {
			return nil, err
		}
		if rev > head {
			return nil, fmt.Errorf("revision %d, head %d: %w", rev, head, tuples.ErrRevisionInFuture)
		}
	}
	return &reader{s: s, rev: rev}, nil
}

// WaitForRevision blocks until the head is greater than after and returns it. It
// wakes on the follower, which a notification from any node's commit (or the
// polling fallback) drives.
func (s *Store) WaitForRevision(ctx context.Context, after tuples.Revision) (tuples.Revision, error) {
	if s.closed.Load() {
		return 0, tuples.ErrClosed
	}
	s.follow.poke()
	for {
		ch := s.follow.changed()
		if head := tuples.Revision(s.head.Load()); head > after {
			return head, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.closing:
			return 0, tuples.ErrClosed
		}
	}
}

// changesChunk is how many change-log rows one query of Changes reads.
const changesChunk = 1000

// Changes yields the change log after `after` up to the head at the time of the
// call, in commit order. A revision's changes are rows of relata_change or, for an
// import of new tuples, one row of relata_change_batch (migration 0004); each chunk
// reads the rows up to the next such batch, then the batch is read whole and yielded
// in its order.
func (s *Store) Changes(ctx context.Context, after tuples.Revision) iter.Seq2[tuples.Change, error] {
	return func(yield func(tuples.Change, error) bool) {
		head, err := s.HeadRevision(ctx)
		if err != nil {
			yield(tuples.Change{}, err)
			return
		}
		if after > head {
			yield(tuples.Change{}, fmt.Errorf("revision %d, head %d: %w", after, head, tuples.ErrRevisionInFuture))
			return
		}
		lastRev, lastSeq := int64(after), int64(math.MaxInt32) // strictly after every seq of `after`
		for {
			var chunk []tuples.Change
			var seqs []int64
			// The rows before the next batch revision (if any) after lastRev.
			err := s.readChecked(ctx, after, "changes",
				`SELECT rev, seq, op, object_type, object_id, relation, subject_type, subject_id, subject_relation, `+attrCols+`
				 FROM relata_change WHERE (rev, seq) > ($1, $2) AND rev <= $3
				 AND rev < coalesce((SELECT min(rev) FROM relata_change_batch WHERE rev > $1 AND rev <= $3), $3 + 1)
				 ORDER BY rev, seq LIMIT `+strconv.Itoa(changesChunk),
				[]any{lastRev, lastSeq, int64(head)}, func(rows pgx.Rows) error {
					var c tuples.Change
					var rev, seq int64
					var op int16
					t := &c.Tuple
					var a attrs
					if err := rows.Scan(append([]any{&rev, &seq, &op, &t.Object.Type, &t.Object.ID, &t.Relation,
						&t.Subject.Object.Type, &t.Subject.Object.ID, &t.Subject.Relation}, a.targets()...)...); err != nil {
						return err
					}
					if err := a.apply(t); err != nil {
						return err
					}
					c.Revision, c.Op = tuples.Revision(rev), tuples.Operation(op)
					chunk = append(chunk, c)
					seqs = append(seqs, seq)
					return nil
				})
			if err != nil {
				yield(tuples.Change{}, err)
				return
			}
			for _, c := range chunk {
				if !yield(c, nil) {
					return
				}
			}
			if len(chunk) == changesChunk {
				lastRev, lastSeq = int64(chunk[len(chunk)-1].Revision), seqs[len(seqs)-1]
				continue
			}
			// The rows are read up to the next batch revision: read it, if any.
			if len(chunk) > 0 {
				lastRev = int64(chunk[len(chunk)-1].Revision)
			}
			var batch []tuples.Change
			found := false
			err = s.readChecked(ctx, after, "changes",
				`SELECT rev, format, n, rows FROM relata_change_batch WHERE rev > $1 AND rev <= $2 ORDER BY rev LIMIT 1`,
				[]any{lastRev, int64(head)}, func(rows pgx.Rows) error {
					var rev int64
					var format int16
					var n int32
					var buf []byte
					if err := rows.Scan(&rev, &format, &n, &buf); err != nil {
						return err
					}
					var err error
					if batch, err = decodeChangeBatch(format, buf, int(n), tuples.Revision(rev)); err != nil {
						return fmt.Errorf("revision %d: %w", rev, err)
					}
					found = true
					lastRev, lastSeq = rev, math.MaxInt32
					return nil
				})
			if err != nil {
				yield(tuples.Change{}, err)
				return
			}
			if !found {
				return
			}
			for _, c := range batch {
				if !yield(c, nil) {
					return
				}
			}
		}
	}
}

// readChecked runs one query and then, pipelined on the same connection, reads the
// horizon (see sendChecked); each is called for every row.
func (s *Store) readChecked(ctx context.Context, rev tuples.Revision, what, sql string, args []any, each func(pgx.Rows) error) error {
	if s.closed.Load() {
		return tuples.ErrClosed
	}
	s.queries.add(what)
	err := s.sendChecked(ctx, s.pool, rev, sql, args, each)
	if err != nil && !errors.Is(err, tuples.ErrRevisionExpired) {
		return s.classify(ctx, what, err)
	}
	return err
}

// classify wraps a database error for callers: ErrClosed after Close, else see the
// package-level classify.
func (s *Store) classify(ctx context.Context, what string, err error) error {
	if s.closed.Load() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, tuples.ErrClosed)
	}
	return classify(ctx, what, err)
}

// classifyRead is classify for a read that may also have failed with
// ErrRevisionExpired (returned as it is).
func (s *Store) classifyRead(ctx context.Context, what string, err error) error {
	if errors.Is(err, tuples.ErrRevisionExpired) {
		return err
	}
	return s.classify(ctx, what, err)
}

// SchemaHistory yields every schema written at or before at, newest first; see
// tuples.Store. GC never deletes relata_schema rows.
func (s *Store) SchemaHistory(ctx context.Context, at tuples.Revision) iter.Seq2[tuples.SchemaVersion, error] {
	return func(yield func(tuples.SchemaVersion, error) bool) {
		if s.closed.Load() {
			yield(tuples.SchemaVersion{}, tuples.ErrClosed)
			return
		}
		head, err := s.HeadRevision(ctx)
		if err != nil {
			yield(tuples.SchemaVersion{}, err)
			return
		}
		if at > head {
			yield(tuples.SchemaVersion{}, fmt.Errorf("revision %d, head %d: %w", at, head, tuples.ErrRevisionInFuture))
			return
		}
		s.queries.add("schema")
		rows, err := s.pool.Query(ctx, "SELECT rev, text FROM relata_schema WHERE rev <= $1 ORDER BY rev DESC", int64(at))
		if err != nil {
			yield(tuples.SchemaVersion{}, s.classify(ctx, "schema history", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var rev int64
			var v tuples.SchemaVersion
			if err := rows.Scan(&rev, &v.Text); err != nil {
				yield(tuples.SchemaVersion{}, s.classify(ctx, "schema history", err))
				return
			}
			v.Revision = tuples.Revision(rev)
			if !yield(v, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(tuples.SchemaVersion{}, s.classify(ctx, "schema history", err))
		}
	}
}
