package check

import (
	"container/list"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// cacheShards spreads the cache's lock; each shard holds 1/cacheShards of the budget.
const cacheShards = 16

// entryOverhead approximates the bytes an entry costs beyond its key: the list element,
// the map slot and the entry itself.
const entryOverhead = 96

// CacheStats are counters of the shared check cache.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
	Bytes                   int64
}

// cache is the shared check cache: sub-problem answers keyed by (revision, object,
// relation, subject), with least-recently-used eviction under a byte budget. Only
// answers that no cycle cut touched are stored (see evalFrame), so an entry holds
// whatever path reaches it.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	hits   atomic.Uint64
	misses atomic.Uint64
	evicts atomic.Uint64
}

// cacheShard is one LRU. mu guards every field.
type cacheShard struct {
	mu struct {
		sync.Mutex
		entries map[string]*list.Element
		lru     list.List // front: most recently used; values are *cacheEntry
		bytes   int64
	}
	limit int64
}

type cacheEntry struct {
	key string
	ok  bool
}

func newCache(limit int64) *cache {
	c := &cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = limit / cacheShards
		s.mu.entries = make(map[string]*list.Element)
	}
	return c
}

func (c *cache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

// get returns the cached answer for key.
func (c *cache) get(key string) (ok, hit bool) {
	s := c.shard(key)
	s.mu.Lock()
	el, found := s.mu.entries[key]
	if found {
		s.mu.lru.MoveToFront(el)
		ok = el.Value.(*cacheEntry).ok
	}
	s.mu.Unlock()
	if found {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return ok, found
}

// put stores an answer, evicting least recently used entries beyond the budget.
func (c *cache) put(key string, ok bool) {
	s := c.shard(key)
	size := int64(len(key) + entryOverhead)
	if size > s.limit {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, found := s.mu.entries[key]; found {
		el.Value.(*cacheEntry).ok = ok
		s.mu.lru.MoveToFront(el)
		return
	}
	s.mu.entries[key] = s.mu.lru.PushFront(&cacheEntry{key: key, ok: ok})
	s.mu.bytes += size
	for s.mu.bytes > s.limit {
		el := s.mu.lru.Back()
		ent := el.Value.(*cacheEntry)
		s.mu.lru.Remove(el)
		delete(s.mu.entries, ent.key)
		s.mu.bytes -= int64(len(ent.key) + entryOverhead)
		c.evicts.Add(1)
	}
}

func (c *cache) stats() CacheStats {
	st := CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evicts.Load()}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Entries += len(s.mu.entries)
		st.Bytes += s.mu.bytes
		s.mu.Unlock()
	}
	return st
}
