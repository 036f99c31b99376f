package check

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
)

// The shared check cache holds many small answers (half a million at the default budget)
// for as long as the server runs, so its layout is chosen for the garbage collector:
// entries hold no pointers (a 128-bit hash of the key instead of the key string, in a
// slice of slots and a map of non-pointer keys and values), and the collector never
// scans them. The first layout (a map of key strings to container/list elements) made
// every GC cycle mark millions of objects: under `relata bench` with the cache full,
// GC marking (runtime.scanObject, tryDeferToSpanScan) took over 40% of the server's
// CPU on cached checks, and a full cache cost 34 us of server CPU per cached check
// against 20 us with an empty one.
//
// Two keys share an entry only if both 64-bit hashes collide (as in ristretto, which
// keeps a key hash and a conflict hash): about n^2/2^129 for n entries, 10^-27 for a
// million.
//
// Eviction is CLOCK (second chance), an approximation of least-recently-used: a hit
// sets the entry's reference bit; the hand clears set bits and evicts the first entry
// whose bit is clear.

// cacheShards spreads the cache's lock; each shard holds 1/cacheShards of the budget.
const cacheShards = 16

// entryBytes is what one entry costs: its 24-byte slot, and its share of the map
// (key, value, control bytes, load factor, and tables that double as they grow).
// Measured with every entry used (4 million puts): 64 MiB held 44 MiB of heap and 256
// MiB 163 MiB; at 112 bytes an entry the 64 MiB cache held 67 MiB, over its budget.
const entryBytes = 128

// CacheStats are counters of the shared check cache.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
	Bytes                   int64
}

// cache is the shared check cache: sub-problem answers keyed by (revision, object,
// relation, subject), with CLOCK eviction under a byte budget. Only answers that no
// cycle cut touched are stored (see evalFrame), so an entry holds whatever path
// reaches it.
type cache struct {
	seed1, seed2 maphash.Seed
	shards       [cacheShards]cacheShard
	hits         atomic.Uint64
	misses       atomic.Uint64
	evicts       atomic.Uint64
}

// cacheKey is the 128-bit hash of a key string.
type cacheKey struct{ h1, h2 uint64 }

// cacheSlot is one entry.
type cacheSlot struct {
	key cacheKey
	// depth is the deepest frame depth at which the answer was computed without
	// reaching MaxDepth; it answers only at that depth or shallower (see get).
	depth uint16
	ok    bool
	ref   bool // hit since the hand last passed
}

// cacheShard is one CLOCK. mu guards every field of mu.
type cacheShard struct {
	mu struct {
		sync.Mutex
		index map[cacheKey]int32 // key → slot
		slots []cacheSlot        // grows up to capacity, then slots are reused
		hand  int
	}
	capacity int
}

func newCache(limit int64) *cache {
	c := &cache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	for i := range c.shards {
		s := &c.shards[i]
		s.capacity = int(limit / cacheShards / entryBytes)
		s.mu.index = make(map[cacheKey]int32)
	}
	return c
}

// lookup hashes key and returns its shard.
func (c *cache) lookup(key string) (*cacheShard, cacheKey) {
	k := cacheKey{h1: maphash.String(c.seed1, key), h2: maphash.String(c.seed2, key)}
	return &c.shards[k.h1%cacheShards], k
}

// get returns the cached answer for key, asked at frame depth depth. An answer
// computed at a shallower depth than this one is not returned: from here the depth
// limit is closer, and the evaluation it stands for might not fit under it, which
// must be a depth error (design §3) whatever was cached before.
func (c *cache) get(key string, depth int) (ok, hit bool) {
	s, k := c.lookup(key)
	s.mu.Lock()
	i, found := s.mu.index[k]
	if found {
		sl := &s.mu.slots[i]
		if depth > int(sl.depth) {
			found = false
		} else {
			sl.ref = true
			ok = sl.ok
		}
	}
	s.mu.Unlock()
	if found {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return ok, found
}

// put stores an answer computed at frame depth depth, evicting an entry when the
// shard is full. The same answer computed deeper serves more depths, so an entry
// keeps the deepest depth it was computed at.
func (c *cache) put(key string, ok bool, depth int) {
	s, k := c.lookup(key)
	if s.capacity == 0 {
		return
	}
	d := uint16(min(depth, math.MaxUint16))
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, found := s.mu.index[k]; found {
		sl := &s.mu.slots[i]
		sl.ok, sl.ref, sl.depth = ok, true, max(sl.depth, d)
		return
	}
	if len(s.mu.slots) < s.capacity {
		s.mu.index[k] = int32(len(s.mu.slots))
		s.mu.slots = append(s.mu.slots, cacheSlot{key: k, ok: ok, depth: d})
		return
	}
	for {
		sl := &s.mu.slots[s.mu.hand]
		i := s.mu.hand
		s.mu.hand = (s.mu.hand + 1) % len(s.mu.slots)
		if sl.ref {
			sl.ref = false
			continue
		}
		delete(s.mu.index, sl.key)
		*sl = cacheSlot{key: k, ok: ok, depth: d}
		s.mu.index[k] = int32(i)
		c.evicts.Add(1)
		return
	}
}

func (c *cache) stats() CacheStats {
	st := CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evicts.Load()}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.mu.index)
		s.mu.Unlock()
	}
	st.Bytes = int64(st.Entries) * entryBytes
	return st
}
