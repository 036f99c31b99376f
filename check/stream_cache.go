package check

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/relata/relata/tuples"
)

// The stream cache keeps the ids of whole index scans that lookups merge (see
// streamPlan): the objects of one subject's tuples in one object type#relation (a
// reverse scan), or the plain subjects of one type of one object#relation (a forward
// scan), sorted. Many lookups share scans: every user of a tenant reaches the same
// "flows whose tenant is T" scan. A cached scan replaces the Pebble seek, the
// iteration and the key decoding of every id with a slice.
//
// Exactness across revisions is the check cache's (deps.go): a scan read at revision
// R is served to a reader at R2 ≥ R only when the store says no write in (R, R2]
// changed its scope (tuples.ScopeTracker); a reader below R, or one that cannot track
// scopes, reads the store. Only scans whose every tuple is plain are stored: a
// caveated tuple's meaning depends on the request, and a tuple with an expiration
// lapses without a write. A scan is stored only when read from its first id to its
// last, and only up to streamCacheMaxIDs ids.
//
// Memory: the ids of an entry share one string; an entry costs its ids' bytes, a
// string header per id and streamEntryOverhead. The cache is bounded by its byte
// limit (a share of Options.CacheBytes); past it, arbitrary entries are dropped.

const (
	// streamCacheShare is the part of Options.CacheBytes the stream cache gets
	// (1/streamCacheShare); the check cache gets the rest.
	streamCacheShare = 16
	// streamCacheMaxIDs bounds the ids of one stored scan (and the ids a lookup
	// holds while it records one).
	streamCacheMaxIDs = 1 << 14
	// streamEntryOverhead approximates an entry's fixed cost: the map slot, the key's
	// strings and the entry itself.
	streamEntryOverhead = 192
)

// streamCache is the shared cache of scanned id streams. A nil *streamCache caches
// nothing.
type streamCache struct {
	limit int64

	mu    sync.Mutex
	bytes int64
	m     map[scanKey]*streamEntry

	hits, misses, stale, puts atomic.Int64
}

// streamEntry is one scan's ids, sorted, read at rev; scope is the scan's scope.
type streamEntry struct {
	rev   tuples.Revision
	scope tuples.Scope
	ids   []string
	size  int64
}

func newStreamCache(limit int64) *streamCache {
	if limit <= 0 {
		return nil
	}
	return &streamCache{limit: limit, m: make(map[scanKey]*streamEntry)}
}

// scope returns k's scope in t.
func (k scanKey) scope(t tuples.ScopeTracker) tuples.Scope {
	if k.forward {
		return t.ForwardScope(k.subj.Object, k.rel)
	}
	return t.ReverseScope(k.subj, k.typ, k.rel)
}

// get returns the ids of scan k as r's snapshot sees them, when a stored scan is
// known to hold there. The slice is shared: callers must not modify it.
func (c *streamCache) get(k scanKey, r tuples.Reader) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	t, ok := r.(tuples.ScopeTracker)
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	e := c.m[k]
	c.mu.Unlock()
	switch {
	case e == nil || e.rev > r.Revision():
		c.misses.Add(1)
		return nil, false
	case !t.UnchangedSince(e.scope, e.rev):
		c.stale.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return slices.Clip(e.ids), true
}

// put stores ids, the whole of scan k read at r's revision. An entry read at a later
// revision is kept.
func (c *streamCache) put(k scanKey, r tuples.Reader, ids []string) {
	if c == nil || len(ids) > streamCacheMaxIDs {
		return
	}
	t, ok := r.(tuples.ScopeTracker)
	if !ok {
		return
	}
	// One string holds every id, so that the entry keeps no decoded key alive.
	n := 0
	for _, id := range ids {
		n += len(id)
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		b.WriteString(id)
	}
	all := b.String()
	e := &streamEntry{rev: r.Revision(), scope: k.scope(t), ids: make([]string, len(ids))}
	off := 0
	for i, id := range ids {
		e.ids[i] = all[off : off+len(id)]
		off += len(id)
	}
	e.size = int64(n) + 16*int64(len(ids)) + streamEntryOverhead +
		int64(len(k.subj.Object.Type)+len(k.subj.Object.ID)+len(k.subj.Relation)+len(k.typ)+len(k.rel))
	if e.size > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		if old.rev > e.rev {
			return
		}
		c.bytes -= old.size
	}
	c.m[k] = e
	c.bytes += e.size
	c.puts.Add(1)
	for key, victim := range c.m {
		if c.bytes <= c.limit {
			break
		}
		if key != k {
			delete(c.m, key)
			c.bytes -= victim.size
		}
	}
}

// StreamCacheStats are counters of the lookup stream cache.
type StreamCacheStats struct {
	// Hits counts scans served from the cache; Misses scans it did not hold (or held
	// from a later revision than the reader's); Stale scans it held but a write may
	// have changed since.
	Hits, Misses, Stale int64
	// Puts counts scans stored.
	Puts int64
	// Entries and Bytes are what it holds now; Limit is its bound.
	Entries int
	Bytes   int64
	Limit   int64
}

func (c *streamCache) stats() StreamCacheStats {
	if c == nil {
		return StreamCacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return StreamCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(), Puts: c.puts.Load(),
		Entries: len(c.m), Bytes: c.bytes, Limit: c.limit}
}
