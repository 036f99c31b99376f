package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

// reader is a tuples.Reader at one revision. It holds no Pebble resources between
// calls: each call borrows an iterator that sees every commit up to rev
// (iterpool.go), keeps the versions live at rev, and checks after positioning that
// GC has not passed rev (Store.expired).
type reader struct {
	s   *Store
	rev tuples.Revision

	// commit is the commit time of rev (unix nanoseconds), read once when a tuple
	// with an expiration is first met: such a tuple is visible when it expires after it.
	commitOnce sync.Once
	commit     int64
}

// commitTime returns the commit time of r.rev: the time recorded for the group that
// committed it (the first time key at or after rev).
func (r *reader) commitTime() int64 {
	r.commitOnce.Do(func() {
		r.commit = time.Now().UnixNano()
		it, err := r.s.db.NewIter(&pebble.IterOptions{LowerBound: revKey(tagTime, r.rev), UpperBound: []byte{tagTime + 1}})
		if err != nil {
			return
		}
		defer it.Close()
		if it.First() {
			if ns, err := decodeUint64(it.Value()); err == nil {
				r.commit = int64(ns)
			}
		}
	})
	return r.commit
}

// visible reports whether the versions value v has a version live at r.rev that
// has not expired by r.rev's commit time, and returns its attributes.
func (r *reader) visible(v []byte) (bool, []byte, error) {
	if len(v) == 0 || v[0] != 0 {
		ok, err := liveAt(v, r.rev) // the hot path: plain versions only
		return ok, nil, err
	}
	ok, attr, err := liveAttrAt(v, r.rev, 0)
	if err != nil || !ok {
		return false, nil, err
	}
	if hasExpiry(attr) && expiredBy(attr, r.commitTime()) {
		return false, nil, nil
	}
	return true, attr, nil
}

func (r *reader) Revision() tuples.Revision { return r.rev }

var _ tuples.ScopeTracker = (*reader)(nil)

func (r *reader) ForwardScope(object tuples.ObjectRef, relation string) tuples.Scope {
	var buf [256]byte
	return tuples.Scope(bucket(forwardScope(buf[:0], object, relation)))
}

func (r *reader) ReverseScope(subject tuples.SubjectRef, objectType, relation string) tuples.Scope {
	var buf [256]byte
	return tuples.Scope(bucket(reverseScope(buf[:0], subject, objectType, relation)))
}

func (r *reader) UnchangedSince(scope tuples.Scope, since tuples.Revision) bool {
	return r.s.cache.unchangedSince(uint32(scope), since, r.rev)
}

func (r *reader) Contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	if err := r.s.acquire(); err != nil {
		return false, err
	}
	defer r.s.release()
	// The cache key is the forward key behind a namespace byte.
	ckey := forwardKey(append(make([]byte, 0, 128), cacheContains), t)
	key := ckey[1:]
	var scope [256]byte
	b := bucket(forwardScope(scope[:0], t.Object, t.Relation))
	var buf [16]byte
	if v, ok := r.s.cache.get(buf[:0], ckey, b, r.rev); ok && len(v) == 1 {
		return v[0] == 1, r.s.expired(r.rev)
	}
	ok, attr, err := r.contains(key)
	if err != nil {
		return false, fmt.Errorf("contains %s: %w", t, err)
	}
	if attr != nil {
		return ok, nil // a conditional tuple: its visibility may lapse, so it is not cached
	}
	value := append(buf[:8], 0)
	if ok {
		value[8] = 1
	}
	r.s.cache.put(ckey, value, r.rev)
	return ok, nil
}

// contains reports whether the tuple with forward key key is visible at r.rev, and
// the attributes of its version (nil when plain).
func (r *reader) contains(key []byte) (bool, []byte, error) {
	// A pooled iterator's SeekPrefixGE (bloom filters, no iterator set-up) is about
	// twice as fast as DB.Get, which builds a fresh iterator stack per call.
	pi, err := r.s.iters.get(r.s, r.rev)
	if err != nil {
		return false, nil, err
	}
	defer r.s.iters.put(pi)
	pi.it.SetBounds(nil, nil)
	if err := r.s.expired(r.rev); err != nil {
		return false, nil, err
	}
	if !pi.it.SeekPrefixGE(key) || !bytes.Equal(pi.it.Key(), key) {
		return false, nil, pi.it.Error()
	}
	v, err := pi.it.ValueAndErr()
	if err != nil {
		return false, nil, err
	}
	if len(v) > 0 && v[0] == 0 {
		ok, attr, err := r.visible(v)
		if attr == nil {
			attr = []byte{} // conditional storage: never cached
		}
		return ok, attr, err
	}
	ok, err := liveAt(v, r.rev)
	return ok, nil, err
}

func (r *reader) Subjects(ctx context.Context, object tuples.ObjectRef, relation, subjectType string) iter.Seq2[tuples.Tuple, error] {
	// key is the cache key: the index prefix behind a namespace byte.
	key := forwardScope(append(make([]byte, 0, 128), cacheScan), object, relation)
	b := bucket(key[1:])
	if subjectType != "" {
		key = appendParts(key, subjectType)
	}
	return r.cachedScan(ctx, key, b, false)
}

var _ tuples.ObjectReader = (*reader)(nil)

// ObjectTuples reads the forward index under the object's prefix, through the read
// cache like Subjects (an object entry, valid while no write touched the object: see
// objectScope).
func (r *reader) ObjectTuples(ctx context.Context, object tuples.ObjectRef) iter.Seq2[tuples.Tuple, error] {
	key := objectScope(append(make([]byte, 0, 128), cacheScan), object)
	return r.cachedScan(ctx, key, bucket(key[1:]), false)
}

var _ tuples.SubjectReader = (*reader)(nil)

// SubjectTuples reads the reverse index under the subject's prefix, through the read
// cache like Objects (a subject entry, valid while no write touched a tuple of the
// subject: see subjectScope).
func (r *reader) SubjectTuples(ctx context.Context, subject tuples.SubjectRef) iter.Seq2[tuples.Tuple, error] {
	key := subjectScope(append(make([]byte, 0, 128), cacheScan), subject)
	return r.cachedScan(ctx, key, bucket(key[1:]), true)
}

func (r *reader) Objects(ctx context.Context, subject tuples.SubjectRef, objectType, relation string) iter.Seq2[tuples.Tuple, error] {
	key := reverseScope(append(make([]byte, 0, 128), cacheScan), subject, objectType, relation)
	return r.cachedScan(ctx, key, bucket(key[1:]), true)
}

// ObjectsAfter is Objects starting strictly after object id after (see
// tuples.ObjectsAfterReader). It bypasses the read cache: lookups page with it.
func (r *reader) ObjectsAfter(ctx context.Context, subject tuples.SubjectRef, objectType, relation, after string) iter.Seq2[tuples.Tuple, error] {
	prefix := reverseScope(make([]byte, 0, 128), subject, objectType, relation)
	t := tuples.Tuple{Object: tuples.ObjectRef{Type: objectType, ID: after}, Relation: relation, Subject: subject}
	lower := append(reverseKey(nil, t), 0) // the least key after after's
	return r.scan(ctx, prefix, lower, true, nil)
}

// SubjectsAfter is Subjects of subjectType starting strictly after subject id after
// (see tuples.SubjectsAfterReader). It bypasses the read cache: lookups page with it.
func (r *reader) SubjectsAfter(ctx context.Context, object tuples.ObjectRef, relation, subjectType, after string) iter.Seq2[tuples.Tuple, error] {
	prefix := appendParts(forwardScope(make([]byte, 0, 128), object, relation), subjectType)
	// Every key of an id greater than after is at or above after+0x01: ids hold no
	// 0x00, which ends each part of a key.
	lower := append(append(slices.Clip(prefix), after...), 1)
	return r.scan(ctx, prefix, lower, false, nil)
}

func (r *reader) Read(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	if bySubject(f) {
		return r.readBySubject(ctx, f, after) // see read_subject.go
	}
	prefix, _ := scanPlan(f, true)
	var lower []byte
	if after != nil {
		lower = append(forwardKey(nil, *after), 0) // the least key after after's
	}
	return r.scan(ctx, prefix, lower, false, &f)
}

func (r *reader) Schema(ctx context.Context) ([]byte, tuples.Revision, error) {
	if err := r.s.acquire(); err != nil {
		return nil, 0, err
	}
	defer r.s.release()
	text, rev, err := r.s.schemaAt(r.rev)
	if err != nil {
		return nil, 0, err
	}
	return text, rev, r.s.expired(r.rev)
}

// scan yields the tuples live at r.rev whose key has prefix, starting at lower when it
// is past the prefix start, and matching f when f is non-nil.
func (r *reader) scan(ctx context.Context, prefix, lower []byte, reverse bool, f *tuples.Filter) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		if err := r.s.acquire(); err != nil {
			yield(tuples.Tuple{}, err)
			return
		}
		defer r.s.release()
		lo, hi, ok := scanBounds(prefix, lower)
		if !ok {
			return
		}
		pi, err := r.s.iters.get(r.s, r.rev)
		if err != nil {
			yield(tuples.Tuple{}, fmt.Errorf("scan: %w", err))
			return
		}
		pi.it.SetBounds(lo, hi)
		err = r.s.expired(r.rev)
		if err == nil {
			err = iterateLive(ctx, pi.it, reverse, f, r.visible,
				func(t tuples.Tuple) bool { return yield(t, nil) })
		}
		r.s.iters.put(pi)
		if err != nil {
			yield(tuples.Tuple{}, err)
		}
	}
}

// cachedScan is scan of an index prefix through the read cache: key is the prefix
// behind the cacheScan byte, b the bucket of its scope. A hit yields the cached
// tuples; a miss scans Pebble and, when the caller took every tuple and there are at
// most readCacheMaxTuples, stores them.
func (r *reader) cachedScan(ctx context.Context, key []byte, b uint32, reverse bool) iter.Seq2[tuples.Tuple, error] {
	prefix := key[1:]
	if r.s.cache == nil {
		return r.scan(ctx, prefix, nil, reverse, nil)
	}
	decode, encode := decodeForward, forwardKey
	if reverse {
		decode, encode = decodeReverse, reverseKey
	}
	return func(yield func(tuples.Tuple, error) bool) {
		buf := r.s.cache.buffer()
		defer r.s.cache.bufs.Put(buf)
		if v, ok := r.s.cache.get((*buf)[:0], key, b, r.rev); ok {
			*buf = v[:0]
			r.yieldCached(v, decode, yield)
			return
		}
		value := append((*buf)[:0], make([]byte, 8)...)
		var scratch []byte
		n := 0
		for t, err := range r.scan(ctx, prefix, nil, reverse, nil) {
			if err != nil {
				yield(tuples.Tuple{}, err)
				return
			}
			if t.Conditional() {
				n = readCacheMaxTuples + 1 // attributes are not cached, and expirations lapse
			}
			if n++; n <= readCacheMaxTuples {
				scratch = encode(scratch[:0], t)
				value = appendCachedKey(value, scratch)
			}
			if !yield(t, nil) {
				return
			}
		}
		*buf = value[:0]
		if n <= readCacheMaxTuples {
			r.s.cache.put(key, value, r.rev)
		}
	}
}

// yieldCached yields the tuples of a cached scan value, after the same store checks
// as a scan (store open, revision not collected).
func (r *reader) yieldCached(v []byte, decode func([]byte) (tuples.Tuple, error), yield func(tuples.Tuple, error) bool) {
	err := r.s.acquire()
	if err == nil {
		err = r.s.expired(r.rev)
		r.s.release()
	}
	for err == nil && len(v) > 0 {
		var key []byte
		var ok bool
		if key, v, ok = nextCachedKey(v); !ok {
			err = fmt.Errorf("corrupt read cache entry")
			break
		}
		var t tuples.Tuple
		if t, err = decode(key); err == nil && !yield(t, nil) {
			return
		}
	}
	if err != nil {
		yield(tuples.Tuple{}, err)
	}
}

// iterable is a pebble.DB or an indexed pebble.Batch.
type iterable interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// scanLive iterates keys with prefix (from lower when it sorts after the prefix),
// decodes each tuple whose value satisfies live and which matches f (when non-nil),
// and passes it to fn until fn returns false. check, when non-nil, runs once after
// the iterator is open (it pins the state the scan sees).
func scanLive(ctx context.Context, db iterable, prefix, lower []byte, reverse bool, f *tuples.Filter,
	live func([]byte) (bool, []byte, error), check func() error, fn func(tuples.Tuple) bool,
) error {
	lo, hi, ok := scanBounds(prefix, lower)
	if !ok {
		return nil
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer it.Close()
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	return iterateLive(ctx, it, reverse, f, live, fn)
}

// scanBounds returns the iterator bounds of a scan of prefix from lower (when it
// sorts after the prefix), and false when the range is empty.
func scanBounds(prefix, lower []byte) (lo, hi []byte, ok bool) {
	lo, hi = prefix, prefixEnd(prefix)
	if lower != nil && string(lower) > string(prefix) {
		lo = lower
	}
	if hi != nil && string(lo) >= string(hi) {
		return nil, nil, false
	}
	return lo, hi, true
}

// iterateLive is scanLive's loop over an iterator whose bounds are set.
func iterateLive(ctx context.Context, it *pebble.Iterator, reverse bool, f *tuples.Filter,
	live func([]byte) (bool, []byte, error), fn func(tuples.Tuple) bool,
) error {
	decode := decodeForward
	if reverse {
		decode = decodeReverse
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		ok, attr, err := live(it.Value())
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		t, err := decode(it.Key())
		if err != nil {
			return err
		}
		if attr != nil {
			if err := applyAttr(&t, attr); err != nil {
				return err
			}
		}
		if f != nil && !f.Matches(t) {
			continue
		}
		if !fn(t) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	return nil
}
