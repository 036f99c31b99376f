package pebblestore

// Ordered reads by subject.
//
// Read must yield tuples in canonical order (object type, object id, relation,
// subject …), which is forward-index order. A filter that fixes the subject but not
// the object type ("everything user:anne has") would then scan the whole forward
// index. Instead, readBySubject uses the reverse index, whose entries under the
// subject prefix `st sid` are ordered (subject relation, object type, relation,
// object id): within one (subject relation, object type, relation) stream the object
// ids ascend, so a k-way merge of the streams by canonical order yields exactly the
// forward order. The streams are found by skip-scanning the reverse index (one seek
// per stream); a subject has few distinct (subject relation, object type, relation)
// combinations, so the merge is cheap and the read costs what it returns.

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

// bySubject reports whether readBySubject serves f: the subject type and id are
// fixed and the object type is not (otherwise the forward index has a prefix).
func bySubject(f tuples.Filter) bool {
	return f.ObjectType == "" && f.SubjectType != "" && f.SubjectID != ""
}

// subjectStream is one (subject relation, object type, relation) run of the reverse
// index, positioned at its next matching live tuple.
type subjectStream struct {
	it   *pebble.Iterator
	head tuples.Tuple
	ok   bool // head is valid
}

func (r *reader) readBySubject(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		if err := r.s.acquire(); err != nil {
			yield(tuples.Tuple{}, err)
			return
		}
		defer r.s.release()
		streams, err := r.openSubjectStreams(f, after)
		defer func() {
			for _, st := range streams {
				_ = st.it.Close()
			}
		}()
		if err == nil {
			err = r.s.expired(r.rev)
		}
		if err != nil {
			yield(tuples.Tuple{}, err)
			return
		}
		for _, st := range streams {
			if err := r.advance(st, &f, after, true); err != nil {
				yield(tuples.Tuple{}, err)
				return
			}
		}
		for n := 0; ; n++ {
			if n%256 == 255 && ctx.Err() != nil {
				yield(tuples.Tuple{}, ctx.Err())
				return
			}
			var min *subjectStream
			for _, st := range streams {
				if st.ok && (min == nil || tuples.Compare(st.head, min.head) < 0) {
					min = st
				}
			}
			if min == nil {
				return
			}
			if !yield(min.head, nil) {
				return
			}
			if err := r.advance(min, &f, nil, false); err != nil {
				yield(tuples.Tuple{}, err)
				return
			}
		}
	}
}

// openSubjectStreams finds the streams under f's subject and opens an iterator on
// each, skipping the streams that hold only tuples up to after.
func (r *reader) openSubjectStreams(f tuples.Filter, after *tuples.Tuple) ([]*subjectStream, error) {
	parts := filterParts(f, true) // st, sid[, srel]
	base := appendParts([]byte{tagReverse}, parts...)
	scan, err := r.s.db.NewIter(&pebble.IterOptions{LowerBound: base, UpperBound: prefixEnd(base)})
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	defer scan.Close()
	var streams []*subjectStream
	for valid := scan.First(); valid; {
		t, err := decodeReverse(scan.Key())
		if err != nil {
			return streams, err
		}
		prefix := appendParts([]byte{tagReverse}, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation, t.Object.Type, t.Relation)
		valid = scan.SeekGE(prefixEnd(prefix))
		if f.Relation != "" && t.Relation != f.Relation {
			continue
		}
		lower := prefix
		if after != nil {
			switch c := strings.Compare(t.Object.Type, after.Object.Type); {
			case c < 0:
				continue // every tuple of the stream sorts before after
			case c == 0:
				lower = append(bytes.Clone(prefix), after.Object.ID...)
			}
		}
		it, err := r.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return streams, fmt.Errorf("read: %w", err)
		}
		streams = append(streams, &subjectStream{it: it})
	}
	if err := scan.Error(); err != nil {
		return streams, fmt.Errorf("read: %w", err)
	}
	return streams, nil
}

// advance moves st to its next live tuple matching f and sorting after `after` (when
// non-nil); first positions a fresh iterator.
func (r *reader) advance(st *subjectStream, f *tuples.Filter, after *tuples.Tuple, first bool) error {
	var valid bool
	if first {
		valid = st.it.First()
	} else {
		valid = st.it.Next()
	}
	for ; valid; valid = st.it.Next() {
		live, attr, err := r.visible(st.it.Value())
		if err != nil {
			return err
		}
		if !live {
			continue
		}
		t, err := decodeReverse(st.it.Key())
		if err != nil {
			return err
		}
		if err := applyAttr(&t, attr); err != nil {
			return err
		}
		if !f.Matches(t) || (after != nil && tuples.Compare(t, *after) <= 0) {
			continue
		}
		st.head, st.ok = t, true
		return nil
	}
	st.ok = false
	if err := st.it.Error(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}
