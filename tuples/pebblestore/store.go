// Package pebblestore is the tuple store on an embedded Pebble database.
//
// Each tuple is kept under two keys, a forward index for Check and Expand and a
// reverse index for lookups (keys.go). A tuple's value is its MVCC history, the list
// of (created, deleted) revisions, so a Reader at revision R sees exactly the tuples
// live at R with a single seek or one bounded prefix scan, and without holding a
// Pebble snapshot. Writes go through one committer goroutine that groups concurrent
// requests into one synced Pebble batch (committer.go). A change log keyed by
// revision feeds Watch and export, the schema text is stored per revision, and a
// background GC drops the versions deleted before the GC window (gc.go).
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/relata/relata/tuples"
)

// Store is a tuples.Store on Pebble. It also implements tuples.Importer and
// tuples.RevisionWaiter. All methods are safe for concurrent use.
type Store struct {
	opts Options
	dir  string
	db   *pebble.DB
	// tableOpts are the options of the SSTables an import builds for ingestion
	// (import.go): the database's own for L0 (an ingested table may land on any
	// level, and L0's options assume nothing about the levels below).
	tableOpts sstable.WriterOptions

	// broken is set when a commit failed in Pebble (health.go): every later write
	// fails with it.
	broken     atomic.Pointer[error]
	logLimited limitedLog // "disk full" lines

	// head is the newest durable revision; horizon the oldest readable one. Both
	// only grow. The committer stores head after a group is synced; GC stores horizon
	// before it deletes anything, so a reader that checks horizon after reading knows
	// its data predates any deletion it could depend on.
	head    atomic.Uint64
	horizon atomic.Uint64

	// closed is set first thing in Close; inflight counts operations (reads,
	// iterations, writes) that passed acquire, and Close waits for it to drop to 0
	// before it stops the committer and closes Pebble.
	closed   atomic.Bool
	inflight atomic.Int64
	closing  chan struct{} // closed with closed: wakes waiters and the GC loop

	reqs      chan *request // unbuffered: see committer.go
	quit      chan struct{} // stops the committer, after inflight reached 0
	committed chan struct{} // closed when the committer has exited
	gcDone    chan struct{} // closed when the background GC loop has exited

	notify struct {
		sync.Mutex
		ch chan struct{} // closed and replaced after each commit
	}

	// iters keeps idle iterators for readers' scans (see iterpool.go).
	iters iterPool
	// cache keeps small reads across revisions (see readcache.go); nil when disabled.
	cache *readCache

	// id names the store (loadIdentity); set in Open, then read-only.
	id tuples.Identity

	// Committer-owned state, touched only by the committer goroutine.
	schemaRev tuples.Revision // revision of the newest schema
}

var (
	_ tuples.Store          = (*Store)(nil)
	_ tuples.Importer       = (*Store)(nil)
	_ tuples.RevisionWaiter = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir on opts.FS. opts may be nil for
// defaults. The returned Store runs a committer goroutine and, unless disabled, a
// GC goroutine; Close stops them.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if u, err := o.FS.GetDiskUsage(existingParent(o.FS, dir)); err == nil && u.AvailBytes < minOpenFreeBytes {
		return nil, noSpace(dir)
	}
	cache := pebble.NewCache(o.CacheSize + memTableReserve)
	defer cache.Unref()
	enospc := make(chan struct{})
	var enospcOnce sync.Once
	po := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		MemTableSize:       memTableSize,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             newPebbleLogger(o.Logger, func(string) { enospcOnce.Do(func() { close(enospc) }) }),
		ReadOnly:           o.ReadOnly,
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// An import's table that falls into a gap of the stored data may split the one
	// stored table whose bounds span the gap, and go to that table's level instead
	// of above it (import.go).
	po.Experimental.IngestSplit = func() bool { return true }
	po.EnsureDefaults() // as Open does, so that the import's table options match
	if !o.ReadOnly {
		if err := removeImportDir(o.FS, dir); err != nil {
			return nil, err
		}
	}
	// Pebble retries a failing flush inside Open without end; on a full disk, give up
	// at the first "no space left" it logs rather than hang. (Pebble's goroutine is
	// left behind: the caller is expected to exit.)
	type opened struct {
		db  *pebble.DB
		err error
	}
	done := make(chan opened, 1)
	go func() {
		db, err := pebble.Open(dir, po)
		done <- opened{db, err}
	}()
	var db *pebble.DB
	select {
	case o := <-done:
		if o.err != nil {
			if strings.Contains(o.err.Error(), "no space left on device") {
				return nil, noSpace(dir)
			}
			return nil, fmt.Errorf("open %s: %w", dir, o.err)
		}
		db = o.db
	case <-enospc:
		select {
		case o := <-done: // it may have succeeded after all
			if o.err != nil {
				return nil, noSpace(dir)
			}
			db = o.db
		case <-time.After(time.Second):
			return nil, noSpace(dir)
		}
	}
	s := &Store{
		opts:      o,
		dir:       dir,
		db:        db,
		tableOpts: po.MakeWriterOptions(0, db.TableFormat()),
		closing:   make(chan struct{}),
		reqs:      make(chan *request),
		quit:      make(chan struct{}),
		committed: make(chan struct{}),
		gcDone:    make(chan struct{}),
	}
	s.notify.ch = make(chan struct{})
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.cache = newReadCache(o.ReadCacheSize, tuples.Revision(s.head.Load()))
	go s.commitLoop()
	if o.GCInterval > 0 && !o.ReadOnly {
		go s.gcLoop()
	} else {
		close(s.gcDone)
	}
	return s, nil
}

// minOpenFreeBytes is the free space below which Open refuses to start: Pebble needs
// room for a new WAL and MANIFEST before it serves anything.
const minOpenFreeBytes = 1 << 20

// noSpace is the error of Open on a full disk.
func noSpace(dir string) error {
	return fmt.Errorf("no space left on %s: free space and restart: %w", dir, tuples.ErrStorageFull)
}

// existingParent returns dir, or its nearest existing ancestor (statfs needs a path
// that exists; Open creates dir).
func existingParent(fs vfs.FS, dir string) string {
	for d := dir; ; {
		if _, err := fs.Stat(d); err == nil {
			return d
		}
		p := fs.PathDir(d)
		if p == d || p == "" {
			return d
		}
		d = p
	}
}

// load reads the persisted head, horizon and newest schema revision.
func (s *Store) load() error {
	for _, m := range []struct {
		key []byte
		dst *atomic.Uint64
	}{{keyHead, &s.head}, {keyHorizon, &s.horizon}} {
		v, closer, err := s.db.Get(m.key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("read %s: %w", m.key, err)
		}
		n, err := decodeUint64(v)
		_ = closer.Close()
		if err != nil {
			return err
		}
		m.dst.Store(n)
	}
	_, rev, err := s.schemaAt(tuples.Revision(s.head.Load()))
	if err != nil && !errors.Is(err, tuples.ErrNoSchema) {
		return err
	}
	s.schemaRev = rev
	return s.loadIdentity()
}

// loadIdentity reads the store's id, assigning one to a store that has none: a new
// store, or one created before stores had ids, whose zookies up to its current head
// named no store and stay valid (Identity.UnnamedThrough). A read-only store without
// an id cannot record one: it names none and accepts the zookies up to its head.
func (s *Store) loadIdentity() error {
	head := s.head.Load()
	v, closer, err := s.db.Get(keyStoreID)
	switch {
	case err == nil:
		s.id.ID = string(v)
		_ = closer.Close()
		v, closer, err := s.db.Get(keyUnnamed)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the store id: %w", err)
		}
		n, err := decodeUint64(v)
		_ = closer.Close()
		s.id.UnnamedThrough = tuples.Revision(n)
		return err
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read the store id: %w", err)
	case s.opts.ReadOnly:
		s.id = tuples.Identity{UnnamedThrough: tuples.Revision(head)}
		return nil
	}
	id := tuples.Identity{ID: tuples.NewStoreID(), UnnamedThrough: tuples.Revision(head)}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	if err := b.Set(keyStoreID, []byte(id.ID), nil); err != nil {
		return err
	}
	if head > 0 {
		if err := b.Set(keyUnnamed, encodeUint64(head), nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("record the store id: %w", err)
	}
	s.id = id
	return nil
}

// Identity returns the store's id (tuples.Store).
func (s *Store) Identity() tuples.Identity { return s.id }

// Close waits for in-flight operations, stops the committer and the GC, and closes
// Pebble. Operations started after Close fail with tuples.ErrClosed. An iteration
// left unfinished by its caller delays Close until it ends.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return tuples.ErrClosed
	}
	close(s.closing)
	<-s.gcDone
	for s.inflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	close(s.quit)
	<-s.committed
	s.iters.close()
	s.cache.reset()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// acquire registers an operation; it fails once Close has begun. Every successful
// acquire must be paired with release.
func (s *Store) acquire() error {
	if s.closed.Load() {
		return tuples.ErrClosed
	}
	s.inflight.Add(1)
	if s.closed.Load() {
		s.inflight.Add(-1)
		return tuples.ErrClosed
	}
	return nil
}

func (s *Store) release() { s.inflight.Add(-1) }

// HeadRevision returns the newest durable revision.
func (s *Store) HeadRevision(ctx context.Context) (tuples.Revision, error) {
	if s.closed.Load() {
		return 0, tuples.ErrClosed
	}
	return tuples.Revision(s.head.Load()), nil
}

// Horizon returns the oldest revision still readable (0 before the first GC).
func (s *Store) Horizon() tuples.Revision { return tuples.Revision(s.horizon.Load()) }

// ReaderAt returns a reader of rev. It is cheap: no Pebble snapshot is held.
func (s *Store) ReaderAt(ctx context.Context, rev tuples.Revision) (tuples.Reader, error) {
	if s.closed.Load() {
		return nil, tuples.ErrClosed
	}
	if err := s.checkRevision(rev); err != nil {
		return nil, err
	}
	return &reader{s: s, rev: rev}, nil
}

func (s *Store) checkRevision(rev tuples.Revision) error {
	if h := tuples.Revision(s.horizon.Load()); rev < h {
		return fmt.Errorf("revision %d, horizon %d: %w", rev, h, tuples.ErrRevisionExpired)
	}
	if head := tuples.Revision(s.head.Load()); rev > head {
		return fmt.Errorf("revision %d, head %d: %w", rev, head, tuples.ErrRevisionInFuture)
	}
	return nil
}

// expired reports, after a read, whether GC may have removed versions the read at
// rev depended on.
func (s *Store) expired(rev tuples.Revision) error {
	if h := tuples.Revision(s.horizon.Load()); rev < h {
		return fmt.Errorf("revision %d, horizon %d: %w", rev, h, tuples.ErrRevisionExpired)
	}
	return nil
}

// WaitForRevision blocks until the head is greater than after and returns it.
func (s *Store) WaitForRevision(ctx context.Context, after tuples.Revision) (tuples.Revision, error) {
	for {
		s.notify.Lock()
		ch := s.notify.ch
		s.notify.Unlock()
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

// Changes yields the change log after `after` up to the head at the time of the
// call, in commit order (revision, then the order of the updates in the request).
func (s *Store) Changes(ctx context.Context, after tuples.Revision) iter.Seq2[tuples.Change, error] {
	return func(yield func(tuples.Change, error) bool) {
		if err := s.acquire(); err != nil {
			yield(tuples.Change{}, err)
			return
		}
		defer s.release()
		if err := s.checkRevision(after); err != nil {
			yield(tuples.Change{}, err)
			return
		}
		head := tuples.Revision(s.head.Load())
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: changeKey(after+1, 0), UpperBound: changeKey(head+1, 0)})
		if err != nil {
			yield(tuples.Change{}, fmt.Errorf("changes: %w", err))
			return
		}
		defer it.Close()
		if err := s.expired(after); err != nil {
			yield(tuples.Change{}, err)
			return
		}
		n := 0
		for valid := it.First(); valid; valid = it.Next() {
			if n++; n%256 == 0 && ctx.Err() != nil {
				yield(tuples.Change{}, ctx.Err())
				return
			}
			c, err := decodeChange(it.Key(), it.Value())
			if err != nil {
				yield(tuples.Change{}, err)
				return
			}
			if !yield(c, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(tuples.Change{}, fmt.Errorf("changes: %w", err))
		}
	}
}

// schemaAt returns the newest schema written at or before rev.
func (s *Store) schemaAt(rev tuples.Revision) ([]byte, tuples.Revision, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagSchema}, UpperBound: revKey(tagSchema, rev+1)})
	if err != nil {
		return nil, 0, fmt.Errorf("schema: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return nil, 0, fmt.Errorf("schema: %w", err)
		}
		return nil, 0, tuples.ErrNoSchema
	}
	return append([]byte(nil), it.Value()...), keyRevision(it.Key()), nil
}

// SchemaHistory yields every schema written at or before at, newest first; see
// tuples.Store. Schema keys are never collected, so it reaches past the GC window.
func (s *Store) SchemaHistory(ctx context.Context, at tuples.Revision) iter.Seq2[tuples.SchemaVersion, error] {
	return func(yield func(tuples.SchemaVersion, error) bool) {
		if err := s.acquire(); err != nil {
			yield(tuples.SchemaVersion{}, err)
			return
		}
		defer s.release()
		if head := tuples.Revision(s.head.Load()); at > head {
			yield(tuples.SchemaVersion{}, fmt.Errorf("revision %d, head %d: %w", at, head, tuples.ErrRevisionInFuture))
			return
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagSchema}, UpperBound: revKey(tagSchema, at+1)})
		if err != nil {
			yield(tuples.SchemaVersion{}, fmt.Errorf("schema history: %w", err))
			return
		}
		defer it.Close()
		for valid := it.Last(); valid; valid = it.Prev() {
			if ctx.Err() != nil {
				yield(tuples.SchemaVersion{}, ctx.Err())
				return
			}
			v := tuples.SchemaVersion{Revision: keyRevision(it.Key()), Text: append([]byte(nil), it.Value()...)}
			if !yield(v, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(tuples.SchemaVersion{}, fmt.Errorf("schema history: %w", err))
		}
	}
}
