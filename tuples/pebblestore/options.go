package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/relata/relata/tuples"
)

// Defaults applied by Options.EnsureDefaults.
const (
	// DefaultCacheSize is the Pebble block cache size: 64 MiB. The cache holds
	// uncompressed data, index and bloom-filter blocks. Authorization reads are point
	// lookups and short prefix scans over a working set of index and filter blocks plus
	// the hot data blocks, and 64 MiB keeps those for tens of millions of tuples (a
	// tuple costs about 100 bytes per index) while bounding the process: together with
	// the two 16 MiB memtables the store uses about 100 MiB whatever the data size,
	// little beside the check cache on a 2-core machine. Raise it for very large
	// stores; the OS page cache still serves compressed blocks beyond it.
	DefaultCacheSize = 64 << 20
	// DefaultReadCacheSize is the size of the cross-revision read cache
	// (readcache.go): 64 MiB, off the Go heap, enough for the scans of about a
	// million hot object#relation scopes.
	DefaultReadCacheSize = 64 << 20
	// DefaultGCWindow is how long old revisions stay readable.
	DefaultGCWindow = 24 * time.Hour
	// DefaultGCInterval is how often the background GC looks for expired versions.
	DefaultGCInterval = time.Minute
	// DefaultMaxUpdatesPerWrite limits the updates of one Write.
	DefaultMaxUpdatesPerWrite = tuples.MaxUpdatesPerWrite
)

// memTableSize is the Pebble memtable size. Larger than Pebble's 4 MiB default so
// that bursts of batched writes flush less often; two may be alive at once.
const memTableSize = 16 << 20

// memTableReserve is what Pebble charges its memtables against the block cache: it
// reserves each memtable's size in the cache it is given (the mutable memtable, and
// the one it keeps for reuse after a flush or the one being flushed), so a cache of
// CacheSize alone would hold only CacheSize minus 32 MiB of blocks, and nothing at
// 32 MiB. Open creates the cache this much larger; the memtables' memory itself is
// counted apart (serve's memory budget sets it aside).
const memTableReserve = 2 * memTableSize

// Options configures a Store. The zero value of every field means its default; see
// EnsureDefaults. Options are read once by Open.
type Options struct {
	// FS is the file system the database lives on; nil means the OS file system.
	// Tests pass vfs.NewMem().
	FS vfs.FS
	// CacheSize is the Pebble block cache size in bytes: what blocks may take (Pebble's
	// memtable reservations come on top, see memTableReserve); 0 means
	// DefaultCacheSize.
	CacheSize int64
	// ReadCacheSize is the size in bytes of the cache that keeps small scans and point
	// lookups across revisions (readcache.go); 0 means DefaultReadCacheSize and a
	// negative value disables it.
	ReadCacheSize int64
	// GCWindow is how long a revision stays readable after a newer one commits;
	// versions deleted before the window are collected, and older zookies fail with
	// tuples.ErrRevisionExpired. 0 means DefaultGCWindow.
	GCWindow time.Duration
	// GCInterval is how often the background GC runs; 0 means a tenth of GCWindow, at
	// least 100 ms and at most DefaultGCInterval, and a negative value disables the
	// background GC (CollectGarbage still works).
	GCInterval time.Duration
	// MaxUpdatesPerWrite is the most updates one Write may carry; more fail with a
	// *tuples.ValidationError. 0 means DefaultMaxUpdatesPerWrite. Import is not limited.
	MaxUpdatesPerWrite int
	// Logger receives the store's and Pebble's log lines; nil discards them.
	Logger *slog.Logger
	// ReadOnly opens the database read-only (`relata backup verify`): nothing is
	// written to its directory, writes fail with ErrReadOnly and GC does not run.
	ReadOnly bool
	// OnCommit, when set, is called by the committer after each durable group commit
	// of writes, deletes and schema writes (for metrics); it must return quickly.
	OnCommit func(tuples.CommitInfo)
	// MinFreeBytes is the free space the data directory must keep: below it, writes
	// fail with tuples.ErrStorageFull (and succeed again once space is freed), so that
	// Pebble never meets a full disk mid-commit. 0 means DefaultMinFreeBytes; a
	// negative value disables the check.
	MinFreeBytes int64
	// IngestMinTuples is the number of tuples an Import must write (after dropping
	// duplicates and tuples already live) for it to be written as SSTables and
	// ingested rather than committed through a batch (import.go). 0 means
	// DefaultIngestMinTuples; a negative value always uses the batch.
	IngestMinTuples int
}

// DefaultIngestMinTuples is the default Options.IngestMinTuples. Below it, the fixed
// cost of an ingest (five small files created and synced, a synced MANIFEST edit,
// five more tables in the LSM) outweighs what skipping the WAL and the memtable
// saves.
const DefaultIngestMinTuples = 2000

// DefaultMinFreeBytes is the default free-space reserve: room for two memtable
// flushes and their write-ahead logs.
const DefaultMinFreeBytes = 2 * memTableSize

// EnsureDefaults replaces zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.ReadCacheSize == 0 {
		o.ReadCacheSize = DefaultReadCacheSize
	}
	if o.GCWindow == 0 {
		o.GCWindow = DefaultGCWindow
	}
	if o.GCInterval == 0 {
		// Run often enough that a zookie expires within about a tenth of the window
		// after it leaves it (a short window in tests and demos expires promptly).
		o.GCInterval = min(DefaultGCInterval, max(o.GCWindow/10, 100*time.Millisecond))
	}
	if o.MaxUpdatesPerWrite == 0 {
		o.MaxUpdatesPerWrite = DefaultMaxUpdatesPerWrite
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.IngestMinTuples == 0 {
		o.IngestMinTuples = DefaultIngestMinTuples
	}
}

// Validate reports options that cannot work, such as a negative cache size.
func (o *Options) Validate() error {
	var errs []error
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("CacheSize %d is negative", o.CacheSize))
	}
	if o.GCWindow < 0 {
		errs = append(errs, fmt.Errorf("GCWindow %s is negative", o.GCWindow))
	}
	if o.MaxUpdatesPerWrite < 0 {
		errs = append(errs, fmt.Errorf("MaxUpdatesPerWrite %d is negative", o.MaxUpdatesPerWrite))
	}
	return errors.Join(errs...)
}

// pebbleLogger routes Pebble's printf-style log lines to slog. Error lines are
// limited to one per format a second (a failing background flush retries without
// pause), with the count of the ones dropped. A line about a full disk is also
// reported to onENOSPC. Fatalf panics with a *fatalError, which the committer
// recovers (health.go).
type pebbleLogger struct {
	l        *slog.Logger
	mu       *sync.Mutex
	limits   map[string]*limitedLog
	onENOSPC func(msg string)
}

func newPebbleLogger(l *slog.Logger, onENOSPC func(string)) pebbleLogger {
	return pebbleLogger{l: l, mu: &sync.Mutex{}, limits: map[string]*limitedLog{}, onENOSPC: onENOSPC}
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	if p.onENOSPC != nil && strings.Contains(msg, "no space left on device") {
		p.onENOSPC(msg)
	}
	p.mu.Lock()
	lim, ok := p.limits[format]
	if !ok {
		if len(p.limits) > 1000 {
			clear(p.limits)
		}
		lim = &limitedLog{interval: time.Second}
		p.limits[format] = lim
	}
	p.mu.Unlock()
	if ok, dropped := lim.allow(); ok {
		if dropped > 0 {
			p.l.Error(msg, "repeated", dropped)
		} else {
			p.l.Error(msg)
		}
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic(&fatalError{msg: msg})
}
