// Package check is Relata's engine: Check, Expand, LookupResources and LookupSubjects
// over compiled schema rewrites. It reads tuples only through tuples.Reader and never
// imports a store, protobuf or gRPC.
//
// Semantics: a permission denotes the userset its rewrite tree computes on
// an object at one snapshot. Cycles among tuples are cut: a sub-problem (object,
// relation, subject) reached again while it is still being evaluated contributes
// nothing on that path (the least fixed point). A cycle that closes through the
// subtracted side of an exclusion an odd number of times has no consistent answer; the
// sub-problem where it closes answers false ("contradictory cycle"). Recursion deeper
// than Options.MaxDepth is a *MaxDepthError, never a silent false.
package check

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxDepth    = 50
	DefaultConcurrency = 8
	DefaultCacheBytes  = 192 << 20
)

// maxSchemas bounds how many compiled schemas an Engine keeps (by schema revision).
const maxSchemas = 8

// Options configure an Engine. The zero value is usable: zero fields take defaults.
type Options struct {
	// MaxDepth bounds recursion; exceeding it is a *MaxDepthError (errors.Is
	// ErrMaxDepth). Default 50.
	MaxDepth int
	// Concurrency bounds the goroutines one request fans out to. Default 8; 1 evaluates
	// every request in the calling goroutine.
	Concurrency int
	// CacheBytes bounds the shared caches: 1/16 of it holds the index scans lookups
	// merge (see stream_cache.go), the rest is the check cache. 0 means the default
	// (192 MiB, about two million answers of 96 bytes: the default bench workload's
	// check pool needs 1.2 million), a negative value disables both. A cached answer
	// serves only frames at the depth it was computed at or shallower, so the cache
	// never hides a depth error.
	CacheBytes int64
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	return o
}

// Engine answers permission questions. It is safe for concurrent use; one Engine is
// shared by all requests so that its cache and in-flight deduplication are. An Engine
// serves the readers of one store: its cached answers hold for that store's revisions
// (see deps.go).
type Engine struct {
	opts  Options
	cache *cache // nil when disabled
	// streams caches whole index scans for lookups (stream_cache.go); nil when the
	// cache is disabled.
	streams *streamCache
	// spawn holds a token for every extra goroutine all requests together run (see
	// fanOut); its capacity is twice GOMAXPROCS.
	spawn chan struct{}
	// smallRelation is the size up to which stored relations are read whole (see
	// thisSmall); tests set 0 to exercise the general path.
	smallRelation int
	// smallBufs holds *[]tuples.Tuple buffers of smallRelation tuples for thisSmall.
	smallBufs sync.Pool
	// large remembers the relations thisSmall found larger than smallRelation.
	large *largeRelations
	// flight deduplicates identical in-flight sub-checks (see checkRel for which ones).
	flight flightGroup
	// closure is the nested-set index FollowChanges maintains; nil without it (see
	// closure.go).
	closure atomic.Pointer[closureIndex]
	// closureWalks counts the walks the index answered (for tests and stats).
	closureWalks atomic.Int64
	// setLookups counts the lookups set algebra answered (see lookupSets), for tests;
	// noSets, set by tests, makes every lookup verify candidates with Check instead.
	setLookups atomic.Int64
	noSets     bool
	// setDrops counts the ids intersections and exclusions removed, for tests.
	setDrops atomic.Int64
	// setArrows counts the arrow nodes set algebra mapped back (see arrowStream), and
	// setVerified the ids it left to Check (see lookupSets), for tests.
	setArrows   atomic.Int64
	setVerified atomic.Int64

	// schemas caches compiled schemas by the revision that wrote them, and which one
	// each recently read revision uses (a revision's schema never changes, so a read at
	// a known revision needs no schema read). An Engine serves one store.
	schemas struct {
		sync.Mutex
		byRev     map[tuples.Revision]*compiled
		byReadRev map[tuples.Revision]*compiled
	}
}

// New returns an Engine with opts (defaults filled in).
func New(opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{opts: opts, spawn: make(chan struct{}, 2*runtime.GOMAXPROCS(0)), smallRelation: smallRelation,
		large: &largeRelations{seed: maphash.MakeSeed()}}
	if opts.CacheBytes > 0 {
		share := opts.CacheBytes / streamCacheShare
		e.cache = newCache(opts.CacheBytes - share)
		e.streams = newStreamCache(share)
	}
	e.schemas.byRev = make(map[tuples.Revision]*compiled)
	e.schemas.byReadRev = make(map[tuples.Revision]*compiled)
	return e
}

// CacheStats reports the shared check cache's counters; all zero when it is disabled.
func (e *Engine) CacheStats() CacheStats {
	if e.cache == nil {
		return CacheStats{}
	}
	return e.cache.stats()
}

// StreamCacheStats reports the lookup stream cache's counters; all zero when it is
// disabled.
func (e *Engine) StreamCacheStats() StreamCacheStats { return e.streams.stats() }

// Schema returns the compiled schema r's snapshot uses and the revision that wrote it,
// from the engine's schema cache (each stored schema is compiled once). It is
// tuples.ErrNoSchema (wrapped) when the snapshot has no schema. The write path
// validates tuples with it, so that reads and writes share one compiled schema.
func (e *Engine) Schema(ctx context.Context, r tuples.Reader) (*schema.Schema, tuples.Revision, error) {
	c, err := e.schemaFor(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	return c.s, c.rev, nil
}

// schemaFor returns the compiled schema r's snapshot uses, compiling and caching it by
// the revision that wrote it.
func (e *Engine) schemaFor(ctx context.Context, r tuples.Reader) (*compiled, error) {
	readRev := r.Revision()
	e.schemas.Lock()
	c := e.schemas.byReadRev[readRev]
	e.schemas.Unlock()
	if c != nil {
		return c, nil
	}
	text, rev, err := r.Schema(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	e.schemas.Lock()
	c = e.schemas.byRev[rev]
	e.schemas.Unlock()
	if c != nil {
		e.rememberRead(readRev, c)
		return c, nil
	}
	s, err := compileSchema(text)
	if err != nil {
		return nil, fmt.Errorf("compiling stored schema of revision %d: %w", rev, err)
	}
	c = analyze(s)
	c.revText = strconv.FormatUint(uint64(rev), 10)
	c.rev = rev
	e.putSchema(rev, c)
	e.rememberRead(readRev, c)
	return c, nil
}

// maxReadRevs bounds the revision-to-schema shortcuts an Engine keeps.
const maxReadRevs = 1024

// rememberRead records that reads at readRev use schema c.
func (e *Engine) rememberRead(readRev tuples.Revision, c *compiled) {
	e.schemas.Lock()
	defer e.schemas.Unlock()
	if len(e.schemas.byReadRev) >= maxReadRevs {
		clear(e.schemas.byReadRev)
	}
	e.schemas.byReadRev[readRev] = c
}

// putSchema caches c as the schema written at rev, evicting the oldest when full.
func (e *Engine) putSchema(rev tuples.Revision, c *compiled) {
	e.schemas.Lock()
	defer e.schemas.Unlock()
	if len(e.schemas.byRev) >= maxSchemas {
		oldest := rev
		for r := range e.schemas.byRev {
			if r < oldest {
				oldest = r
			}
		}
		delete(e.schemas.byRev, oldest)
	}
	e.schemas.byRev[rev] = c
}
