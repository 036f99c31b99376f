package pgstore

// The read cache keeps the results of small reads (Contains, Subjects, Objects of at
// most readCacheMaxTuples tuples) across revisions, so that the engine's many tiny
// reads of the parts of the graph nobody writes (a tenant's roles, a workspace's
// members) cost no round trip to the database.
//
// A result read at revision A is the content of one scope at A (see ForwardScope and
// ReverseScope). It holds at a later revision R exactly when no write in (A, R]
// changed that scope (never at an earlier one: a tuple may lapse between them with no
// write), which the follower answers (follower.unchangedSince): it records, per
// bucket of scopes, the newest revision of any node's write to it, and says yes only
// when it has read every node's change log up to R and A is not below its floor. So a
// node never serves a cached result at a revision whose writes it has not seen,
// whichever node made them: the cache is exact across nodes.
// A result is stored only when none of its tuples carries a caveat or an expiration
// (an expiration lapses without a write), and only when the caller read it whole.
//
// Values live in fastcache (off the Go heap), as in pebblestore's read cache.

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/VictoriaMetrics/fastcache"

	"github.com/relata/relata/tuples"
)

// readCacheMaxTuples bounds the tuples of one cached result; larger ones are read
// from the database every time.
const readCacheMaxTuples = 64

// Key namespaces: a result of one kind never answers another.
const (
	cacheContains = 'c'
	cacheSubjects = 's'
	cacheObjects  = 'o'
)

// readCache is a node's cross-revision read cache; a nil *readCache caches nothing.
type readCache struct {
	values       *fastcache.Cache
	follow       *follower
	hits, misses atomic.Uint64
}

func newReadCache(maxBytes int64, f *follower) *readCache {
	if maxBytes <= 0 {
		return nil
	}
	return &readCache{values: fastcache.New(int(maxBytes)), follow: f}
}

// appendKey appends length-prefixed parts to dst.
func appendKey(dst []byte, kind byte, parts ...string) []byte {
	dst = append(dst, kind)
	for _, p := range parts {
		dst = binary.AppendUvarint(dst, uint64(len(p)))
		dst = append(dst, p...)
	}
	return dst
}

// get returns the cached value of key if it holds at rev, given that its scope falls
// in bucket b. The value's first 8 bytes are the revision it was read at.
func (c *readCache) get(key []byte, b uint32, rev tuples.Revision) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	v := c.values.Get(nil, key)
	if len(v) < 8 {
		c.misses.Add(1)
		return nil, false
	}
	at := tuples.Revision(binary.BigEndian.Uint64(v))
	// Only forward: a result read at a later revision may lack a tuple whose
	// expiration lapsed in between, without any write.
	if at != rev && (at > rev || !c.follow.unchangedSince(b, at, rev)) {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return v[8:], true
}

// put stores value (whose first 8 bytes are free) as read at rev.
func (c *readCache) put(key, value []byte, rev tuples.Revision) {
	if c == nil {
		return
	}
	binary.BigEndian.PutUint64(value, uint64(rev))
	c.values.Set(key, value)
}

// appendString appends a length-prefixed string to a cached value.
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// nextString splits a length-prefixed string off v.
func nextString(v []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return "", nil, false
	}
	return string(v[w : w+int(n)]), v[w+int(n):], true
}
