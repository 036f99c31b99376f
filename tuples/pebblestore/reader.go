package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"iter"

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
}

func (r *reader) Revision() tuples.Revision { return r.rev }

func (r *reader) Contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	if err := r.s.acquire(); err != nil {
		return false, err
	}
	defer r.s.release()
	// A pooled iterator's SeekPrefixGE (bloom filters, no iterator set-up) is about
	// twice as fast as DB.Get, which builds a fresh iterator stack per call.
	key := forwardKey(make([]byte, 0, 128), t)
	pi, err := r.s.iters.get(r.s, r.rev)
	if err != nil {
		return false, fmt.Errorf("pebblestore: contains %s: %w", t, err)
	}
	defer r.s.iters.put(pi)
	pi.it.SetBounds(nil, nil)
	if err := r.s.expired(r.rev); err != nil {
		return false, err
	}
	if !pi.it.SeekPrefixGE(key) || !bytes.Equal(pi.it.Key(), key) {
		if err := pi.it.Error(); err != nil {
			return false, fmt.Errorf("pebblestore: contains %s: %w", t, err)
		}
		return false, nil
	}
	v, err := pi.it.ValueAndErr()
	if err != nil {
		return false, fmt.Errorf("pebblestore: contains %s: %w", t, err)
	}
	return liveAt(v, r.rev)
}

func (r *reader) Subjects(ctx context.Context, object tuples.ObjectRef, relation, subjectType string) iter.Seq2[tuples.Tuple, error] {
	parts := []string{object.Type, object.ID, relation}
	if subjectType != "" {
		parts = append(parts, subjectType)
	}
	prefix := appendParts([]byte{tagForward}, parts...)
	return r.scan(ctx, prefix, nil, false, nil)
}

func (r *reader) Objects(ctx context.Context, subject tuples.SubjectRef, objectType, relation string) iter.Seq2[tuples.Tuple, error] {
	prefix := appendParts([]byte{tagReverse}, subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation)
	return r.scan(ctx, prefix, nil, true, nil)
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
			yield(tuples.Tuple{}, fmt.Errorf("pebblestore: scan: %w", err))
			return
		}
		pi.it.SetBounds(lo, hi)
		err = r.s.expired(r.rev)
		if err == nil {
			err = iterateLive(ctx, pi.it, reverse, f, func(v []byte) (bool, error) { return liveAt(v, r.rev) },
				func(t tuples.Tuple) bool { return yield(t, nil) })
		}
		r.s.iters.put(pi)
		if err != nil {
			yield(tuples.Tuple{}, err)
		}
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
	live func([]byte) (bool, error), check func() error, fn func(tuples.Tuple) bool,
) error {
	lo, hi, ok := scanBounds(prefix, lower)
	if !ok {
		return nil
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("pebblestore: scan: %w", err)
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
	live func([]byte) (bool, error), fn func(tuples.Tuple) bool,
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
		ok, err := live(it.Value())
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
		if f != nil && !f.Matches(t) {
			continue
		}
		if !fn(t) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebblestore: scan: %w", err)
	}
	return nil
}
