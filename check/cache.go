package check

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"

	"github.com/relata/relata/tuples"
)

// The shared check cache holds many small answers (over a million at the default
// budget) for as long as the server runs, so its layout is chosen for the garbage
// collector and for size: entries hold no pointers (a 128-bit hash of the key instead
// of the key string, in a slice of slots indexed by a table of slot numbers), and the
// collector never scans them. The first layout (a map of key strings to container/list elements) made
// every GC cycle mark millions of objects: under `relata bench` with the cache full,
// GC marking (runtime.scanObject, tryDeferToSpanScan) took over 40% of the server's
// CPU on cached checks, and a full cache cost 34 us of server CPU per cached check
// against 20 us with an empty one.
//
// Two keys share an entry only if both 64-bit hashes collide (as in ristretto, which
// keeps a key hash and a conflict hash): about n^2/2^129 for n entries, 10^-27 for a
// million.
//
// An entry keeps the revision its answer was computed at and the scopes it depends on
// (deps.go): it answers at that revision, and at later ones while the store reports
// none of those scopes changed. One entry per key: a newer answer replaces an older one.
//
// Eviction is CLOCK (second chance), an approximation of least-recently-used: a hit
// sets the entry's reference bit; the hand clears set bits and evicts the first entry
// whose bit is clear.

// cacheShards spreads the cache's lock; each shard holds 1/cacheShards of the budget.
const cacheShards = 16

// entryBytes is what one entry costs: its slot (80 bytes with its deps) and its share
// of the index (4 bytes a table entry at a load of 3/8 to 3/4: at most 10.7 bytes),
// rounded up. Measured: a cache filled with 4 million puts holds 77-86 bytes of heap an
// entry (64 MiB: 26.8 MiB for 364,720 entries; 256 MiB: 119 MiB). The Go map that
// indexed the slots before cost about 94 bytes an entry on its own.
const entryBytes = 96

// CacheStats are counters of the shared check cache.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
	Bytes                   int64
}

// cache is the shared check cache: sub-problem answers keyed by (schema, object,
// relation, subject), each with its revision and deps, with CLOCK eviction under a
// byte budget. Only answers that no
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
	rev tuples.Revision // the revision the answer was computed at
	// deps are the scopes the answer depends on.
	deps deps
	// depth is the deepest frame depth at which the answer was computed without
	// reaching MaxDepth; it answers only at that depth or shallower (see get).
	depth uint16
	ok    bool
	ref   bool // hit since the hand last passed
	// marker: the answer at this key depended on the request's context (it read a
	// caveated or expiring tuple); it is cached under the key extended with the
	// context's relevant values instead (see request.cacheCtx). ok is then unused.
	marker bool
}

// cacheShard is one CLOCK. mu guards every field of mu.
type cacheShard struct {
	mu struct {
		sync.Mutex
		index slotIndex   // key → slot
		slots []cacheSlot // grows up to capacity, then slots are reused
		hand  int
	}
	capacity int
}

func newCache(limit int64) *cache {
	c := &cache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	for i := range c.shards {
		s := &c.shards[i]
		s.capacity = int(limit / cacheShards / entryBytes)
	}
	return c
}

// add appends slot, growing the slots to at most the shard's capacity (append would
// leave up to a quarter of it unused once full), and indexes it.
func (s *cacheShard) add(slot cacheSlot) {
	if len(s.mu.slots) == cap(s.mu.slots) {
		grown := make([]cacheSlot, len(s.mu.slots), min(max(2*cap(s.mu.slots), 64), s.capacity))
		copy(grown, s.mu.slots)
		s.mu.slots = grown
	}
	s.mu.slots = append(s.mu.slots, slot)
	s.mu.index.insert(s.mu.slots, int32(len(s.mu.slots)-1), s.capacity)
}

// slotIndex maps a key to its slot: an open-addressing table of slot numbers (plus
// one; 0 is empty) with linear probing from the key's second hash (the first picks
// the shard), and backward-shift deletion, so no tombstones. It costs 4 bytes a table
// entry, at most 10.7 bytes a slot (load 3/8 to 3/4), where a Go map of the same key
// and value cost about 94 (its groups' slack and load factor).
type slotIndex struct {
	table []int32
	n     int
}

// find returns the slot of k, or -1.
func (x *slotIndex) find(slots []cacheSlot, k cacheKey) int32 {
	if len(x.table) == 0 {
		return -1
	}
	mask := uint64(len(x.table) - 1)
	for i := k.h2 & mask; ; i = (i + 1) & mask {
		v := x.table[i]
		if v == 0 {
			return -1
		}
		if slots[v-1].key == k {
			return v - 1
		}
	}
}

// insert indexes slot i (its key not yet indexed), growing the table to keep the load
// at most 3/4; capacity, the most slots there will be, caps the growth.
func (x *slotIndex) insert(slots []cacheSlot, i int32, capacity int) {
	if 4*(x.n+1) > 3*len(x.table) {
		size := max(2*len(x.table), 64)
		x.table = make([]int32, size)
		x.n = 0
		for j := range slots {
			if int32(j) != i {
				x.place(slots[j].key, int32(j))
			}
		}
	}
	x.place(slots[i].key, i)
}

func (x *slotIndex) place(k cacheKey, i int32) {
	mask := uint64(len(x.table) - 1)
	j := k.h2 & mask
	for x.table[j] != 0 {
		j = (j + 1) & mask
	}
	x.table[j] = i + 1
	x.n++
}

// remove unindexes k (which is indexed), shifting back the entries after it in its
// probe run so that every entry stays reachable from its home position.
func (x *slotIndex) remove(slots []cacheSlot, k cacheKey) {
	mask := uint64(len(x.table) - 1)
	i := k.h2 & mask
	for slots[x.table[i]-1].key != k {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; x.table[j] != 0; j = (j + 1) & mask {
		home := slots[x.table[j]-1].key.h2 & mask
		// j's entry may move to the hole at i unless its home lies cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			x.table[i] = x.table[j]
			i = j
		}
	}
	x.table[i] = 0
	x.n--
}

// lookup hashes key and returns its shard.
func (c *cache) lookup(key string) (*cacheShard, cacheKey) {
	k := cacheKey{h1: maphash.String(c.seed1, key), h2: maphash.String(c.seed2, key)}
	return &c.shards[k.h1%cacheShards], k
}

// get returns the cached answer for key, asked at frame depth depth by a reader at rev
// with tracker t (nil when it has none), and adds the answer's deps to into (nil:
// nowhere). marker reports an entry that says the answer is cached under the key
// extended by the context (hit is then false, and nothing is counted). An answer computed at an earlier revision answers when t reports none of
// its scopes changed since. An answer computed at a shallower depth than this one is
// not returned: from here the depth limit is closer, and the evaluation it stands for
// might not fit under it, which must be a depth error whatever was cached
// before.
func (c *cache) get(key string, depth int, rev tuples.Revision, t tuples.ScopeTracker, into *collector) (ok, marker, hit bool) {
	s, k := c.lookup(key)
	var sl cacheSlot
	s.mu.Lock()
	i := s.mu.index.find(s.mu.slots, k)
	found := i >= 0
	if found {
		sl = s.mu.slots[i]
		found = depth <= int(sl.depth) && sl.rev <= rev
		if found && sl.rev == rev {
			s.mu.slots[i].ref = true
		}
	}
	s.mu.Unlock()
	if found && sl.rev < rev {
		// Validated outside the lock; the slot may be reused meanwhile, which only
		// costs its reference bit.
		if found = sl.deps.unchangedSince(t, sl.rev); found {
			s.mu.Lock()
			if s.mu.slots[i].key == k {
				s.mu.slots[i].ref = true
			}
			s.mu.Unlock()
		}
	}
	if !found {
		c.misses.Add(1)
		return false, false, false
	}
	if sl.marker {
		return false, true, false
	}
	c.hits.Add(1)
	into.addAll(&sl.deps)
	return sl.ok, false, true
}

// put stores an answer computed at frame depth depth and revision rev from deps d (or,
// with marker, says that the answer at key depends on the context), evicting an entry
// when the shard is full. An answer of an older revision than the
// entry's does not replace it; the same answer computed deeper at the same revision
// serves more depths, so it replaces the entry (with its own deps), and one computed
// shallower leaves the entry as it is.
func (c *cache) put(key string, ok, marker bool, depth int, rev tuples.Revision, d *deps) {
	s, k := c.lookup(key)
	if s.capacity == 0 {
		return
	}
	dp := uint16(min(depth, math.MaxUint16))
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.mu.index.find(s.mu.slots, k); i >= 0 {
		sl := &s.mu.slots[i]
		switch {
		case rev < sl.rev:
		case rev == sl.rev && marker == sl.marker && dp <= sl.depth:
			// The entry's computation, deeper, already serves this depth. Its depth
			// and its deps stay together: a computation at another depth may read
			// other tuples (a branch cut by the depth limit there makes another one
			// decide), so its depth is never paired with another computation's deps
			// or answer.
			sl.ref = true
		default:
			*sl = cacheSlot{key: k, rev: rev, deps: *d, ok: ok, ref: true, depth: dp, marker: marker}
		}
		return
	}
	slot := cacheSlot{key: k, rev: rev, deps: *d, ok: ok, depth: dp, marker: marker}
	if len(s.mu.slots) < s.capacity {
		s.add(slot)
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
		s.mu.index.remove(s.mu.slots, sl.key)
		*sl = slot
		s.mu.index.place(k, int32(i))
		c.evicts.Add(1)
		return
	}
}

func (c *cache) stats() CacheStats {
	st := CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evicts.Load()}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.mu.slots)
		s.mu.Unlock()
	}
	st.Bytes = int64(st.Entries) * entryBytes
	return st
}
