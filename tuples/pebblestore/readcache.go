package pebblestore

// The read cache keeps the results of small scans and point lookups across
// revisions, so that a read at a revision nobody has read yet (a fully_consistent
// check while writes go on, or any read right after a write) does not go back to
// Pebble for the parts of the graph no write touched.
//
// A result read at revision R is the content of one scope (the tuples of one
// object#relation or of one object, or of one subject's memberships in one object
// type#relation or in all of them) at R.
// It holds at a later revision R2 exactly when no write in (R, R2] changed that scope.
// The cache cannot remember every write, so it keeps, per bucket of scopes (a hash of
// the scope), the newest revision of a write to any scope in the bucket, and serves a
// result read at R only to readers at R2 ≥ R while that bucket's newest write is ≤ R.
// Collisions only cost hits, never correctness.
//
// Ordering: the committer records a group's writes in the buckets before it publishes
// the group's revision as the head, and readers only read revisions at or below a
// head they have observed, so every write a reader's revision includes is already in
// the buckets when the reader looks. Writes before Open are not in the buckets, so
// results read below the head at Open are never stored.
//
// Values live in fastcache (off the Go heap, in 64 KiB chunks, evicted oldest chunk
// first), so a large cache costs the garbage collector nothing.

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/cespare/xxhash/v2"
	"github.com/relata/relata/tuples"
)

const (
	// readCacheBuckets is the number of scope buckets (a power of two): 512 KiB of
	// revisions.
	readCacheBuckets = 1 << 16
	// readCacheMaxTuples bounds the tuples of one cached scan; larger scopes are
	// read from Pebble every time.
	readCacheMaxTuples = 64
)

// Namespaces of the cache keys, so a scan and a point lookup never share a key.
const (
	cacheScan     = 's'
	cacheContains = 'c'
)

// readCache is the store's cross-revision read cache. A nil *readCache caches
// nothing.
type readCache struct {
	values *fastcache.Cache
	// floor is the head at Open: results read below it are not stored.
	floor tuples.Revision
	// written holds, per scope bucket, the newest revision that wrote to it. Only the
	// committer stores; it stores revisions in increasing order.
	written [readCacheBuckets]atomic.Uint64
	// stale counts lookups that found a value no longer valid at the reader's
	// revision (misses that fastcache counts as hits).
	stale atomic.Uint64
	// bufs holds *[]byte buffers for cached scan values. Yielded tuples never point
	// into them (decoding copies).
	bufs sync.Pool
}

func newReadCache(maxBytes int64, floor tuples.Revision) *readCache {
	if maxBytes <= 0 {
		return nil
	}
	return &readCache{values: fastcache.New(int(maxBytes)), floor: floor}
}

// bucket returns the bucket of a scope (a key prefix).
func bucket(scope []byte) uint32 {
	return uint32(xxhash.Sum64(scope)) & (readCacheBuckets - 1)
}

// forwardScope appends t's forward scope (object type, id, relation) to dst.
func forwardScope(dst []byte, object tuples.ObjectRef, relation string) []byte {
	return appendParts(append(dst, tagForward), object.Type, object.ID, relation)
}

// objectScope appends the prefix of object's forward keys (every relation) to dst. It
// is also the scope of ObjectTuples: its bucket is written with every tuple of the
// object.
func objectScope(dst []byte, object tuples.ObjectRef) []byte {
	return appendParts(append(dst, tagForward), object.Type, object.ID)
}

// reverseScope appends the reverse scope of subject's memberships in
// objectType#relation to dst.
func reverseScope(dst []byte, subject tuples.SubjectRef, objectType, relation string) []byte {
	return appendParts(append(dst, tagReverse), subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation)
}

// subjectScope appends the prefix of subject's reverse keys (every object type and
// relation) to dst. It is the scope of SubjectTuples: its bucket is written with every
// tuple of the subject.
func subjectScope(dst []byte, subject tuples.SubjectRef) []byte {
	return appendParts(append(dst, tagReverse), subject.Object.Type, subject.Object.ID, subject.Relation)
}

// noteWrites records that ts were written (created or deleted) at rev. The committer
// calls it before it publishes rev.
func (c *readCache) noteWrites(ts []tuples.Tuple, rev tuples.Revision) {
	if c == nil {
		return
	}
	var buf [256]byte
	for _, t := range ts {
		c.written[bucket(forwardScope(buf[:0], t.Object, t.Relation))].Store(uint64(rev))
		c.written[bucket(objectScope(buf[:0], t.Object))].Store(uint64(rev))
		c.written[bucket(reverseScope(buf[:0], t.Subject, t.Object.Type, t.Relation))].Store(uint64(rev))
		c.written[bucket(subjectScope(buf[:0], t.Subject))].Store(uint64(rev))
	}
}

// get returns the cached value of key, read at a revision whose result still holds
// at rev given the writes to bucket b; the returned slice reuses dst.
func (c *readCache) get(dst, key []byte, b uint32, rev tuples.Revision) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	v := c.values.Get(dst, key)
	if len(v) < 8 {
		return nil, false
	}
	at := tuples.Revision(binary.BigEndian.Uint64(v))
	if !c.unchangedSince(b, at, rev) {
		c.stale.Add(1)
		return nil, false
	}
	return v[8:], true
}

// unchangedSince reports whether no write in (since, rev] touched bucket b: always
// when since is rev. It cannot tell for since below the floor (writes before Open
// are not recorded) or when the cache is disabled.
func (c *readCache) unchangedSince(b uint32, since, rev tuples.Revision) bool {
	switch {
	case c == nil || since < c.floor || since > rev:
		return false
	case since == rev:
		return true
	}
	return tuples.Revision(c.written[b].Load()) <= since
}

// put stores value, read at rev, under key. value must start with 8 free bytes,
// which put fills with rev.
func (c *readCache) put(key, value []byte, rev tuples.Revision) {
	if c == nil || rev < c.floor {
		return
	}
	binary.BigEndian.PutUint64(value, uint64(rev))
	c.values.Set(key, value)
}

// buffer returns a buffer for a cached scan value; put it back in c.bufs.
func (c *readCache) buffer() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

// reset drops every value and frees the cache's memory.
func (c *readCache) reset() {
	if c != nil {
		c.values.Reset()
	}
}

// appendCachedKey appends an index key to a cached scan's value.
func appendCachedKey(dst, key []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	return append(dst, key...)
}

// nextCachedKey splits the first index key off a cached scan's value.
func nextCachedKey(v []byte) (key, rest []byte, ok bool) {
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return nil, nil, false
	}
	return v[w : w+int(n)], v[w+int(n):], true
}
