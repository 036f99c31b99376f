package pgstore

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relata/relata/tuples"
)

// reader is a tuples.Reader at one revision. Each call is one round trip (a query and
// the horizon check, pipelined), or one per chunk of a long scan; it holds no
// connection between calls.
type reader struct {
	s   *Store
	rev tuples.Revision
}

var _ tuples.ScopeTracker = (*reader)(nil)

func (r *reader) Revision() tuples.Revision { return r.rev }

func (r *reader) ForwardScope(object tuples.ObjectRef, relation string) tuples.Scope {
	return tuples.Scope(forwardBucket(object, relation))
}

func (r *reader) ReverseScope(subject tuples.SubjectRef, objectType, relation string) tuples.Scope {
	return tuples.Scope(reverseBucket(subject, objectType, relation))
}

func (r *reader) UnchangedSince(scope tuples.Scope, since tuples.Revision) bool {
	return r.s.follow.unchangedSince(uint32(scope), since, r.rev)
}

// atRev is the visibility condition of a version at revision $n: created at or
// before it, not yet deleted, not expired by its commit time.
func atRev(n int) string {
	p := "$" + strconv.Itoa(n)
	return "created_rev <= " + p + " AND deleted_rev > " + p + " AND " + visibleAt(p)
}

func (r *reader) Contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	if r.s.closed.Load() {
		return false, tuples.ErrClosed
	}
	var key []byte
	var b uint32
	if r.s.cache != nil {
		key = appendKey(make([]byte, 0, 128), cacheContains, t.Object.Type, t.Object.ID, t.Relation, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
		b = forwardBucket(t.Object, t.Relation)
		if v, ok := r.s.cache.get(key, b, r.rev); ok && len(v) == 1 {
			if err := r.expired(int64(r.s.Horizon())); err != nil {
				return false, err
			}
			return v[0] == 1, nil
		}
	}
	found, conditional, err := r.contains(ctx, t)
	if err == nil && !conditional {
		v := make([]byte, 9)
		if found {
			v[8] = 1
		}
		r.s.cache.put(key, v, r.rev)
	}
	return found, err
}

// contains reads Contains from the database; conditional reports that the live
// version carries a caveat or an expiration (its answer is not cached).
func (r *reader) contains(ctx context.Context, t tuples.Tuple) (found, conditional bool, err error) {
	req := &batchReq{t: t}
	req.t.Caveat, req.t.ExpiresAt = nil, time.Time{}
	key := batchKey{kind: cacheContains, rev: r.rev}
	if err := r.s.batched(ctx, key, req); err != nil {
		return false, false, r.s.classifyRead(ctx, "contains "+t.String(), err)
	}
	if len(req.rows) == 0 {
		return false, false, nil
	}
	return true, req.rows[0].Conditional(), nil
}

func (r *reader) expired(h int64) error {
	r.s.observeHorizon(tuples.Revision(h))
	if r.rev < tuples.Revision(h) {
		return fmt.Errorf("revision %d, horizon %d: %w", r.rev, h, tuples.ErrRevisionExpired)
	}
	return nil
}

func (r *reader) Subjects(ctx context.Context, object tuples.ObjectRef, relation, subjectType string) iter.Seq2[tuples.Tuple, error] {
	where := "object_type = $1 AND object_id = $2 AND relation = $3"
	args := []any{object.Type, object.ID, relation}
	if subjectType != "" {
		where += " AND subject_type = $4"
		args = append(args, subjectType)
	}
	rest := func(last *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
		return r.scan(ctx, "subjects", where, args, []string{"subject_type", "subject_id", "subject_relation"}, last, 4*batchRows)
	}
	scan := r.batchedScan(ctx, "subjects", batchKey{kind: cacheSubjects, rev: r.rev},
		&batchReq{t: tuples.Tuple{Object: object, Relation: relation}, subjectType: subjectType}, rest)
	if r.s.cache == nil {
		return scan
	}
	key := appendKey(make([]byte, 0, 96), cacheSubjects, object.Type, object.ID, relation, subjectType)
	return r.cached(scan, key, forwardBucket(object, relation),
		func(v []byte, t tuples.Tuple) []byte {
			return appendString(appendString(appendString(v, t.Subject.Object.Type), t.Subject.Object.ID), t.Subject.Relation)
		},
		func(v []byte) (tuples.Tuple, []byte, bool) {
			t := tuples.Tuple{Object: object, Relation: relation}
			var ok bool
			if t.Subject.Object.Type, v, ok = nextString(v); !ok {
				return t, nil, false
			}
			if t.Subject.Object.ID, v, ok = nextString(v); !ok {
				return t, nil, false
			}
			t.Subject.Relation, v, ok = nextString(v)
			return t, v, ok
		})
}

// batchedScan reads req in a group of its kind (batch.go) and yields its tuples; when
// the batched answer was full and the caller wants more, it continues with rest, a
// scan of its own after the last tuple yielded.
func (r *reader) batchedScan(ctx context.Context, what string, key batchKey, tmpl *batchReq, rest func(last *tuples.Tuple) iter.Seq2[tuples.Tuple, error]) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		if r.s.closed.Load() {
			yield(tuples.Tuple{}, tuples.ErrClosed)
			return
		}
		req := &batchReq{t: tmpl.t, subjectType: tmpl.subjectType} // one per iteration
		if err := r.s.batched(ctx, key, req); err != nil {
			yield(tuples.Tuple{}, r.s.classifyRead(ctx, what, err))
			return
		}
		for _, t := range req.rows {
			if !yield(t, nil) {
				return
			}
		}
		if req.more {
			rest(&req.rows[len(req.rows)-1])(yield)
		}
	}
}

// cached is a scan through the read cache: a hit yields the cached tuples (decoded by
// next); a miss runs scan and, when the caller took every tuple, there are at most
// readCacheMaxTuples and none is conditional, stores them (encoded by add).
func (r *reader) cached(scan iter.Seq2[tuples.Tuple, error], key []byte, b uint32,
	add func([]byte, tuples.Tuple) []byte, next func([]byte) (tuples.Tuple, []byte, bool)) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		if v, ok := r.s.cache.get(key, b, r.rev); ok {
			if err := r.expired(int64(r.s.Horizon())); err != nil {
				yield(tuples.Tuple{}, err)
				return
			}
			for len(v) > 0 {
				t, rest, ok := next(v)
				if !ok {
					yield(tuples.Tuple{}, fmt.Errorf("corrupt read cache entry"))
					return
				}
				if !yield(t, nil) {
					return
				}
				v = rest
			}
			return
		}
		value := make([]byte, 8, 64)
		n := 0
		for t, err := range scan {
			if err != nil {
				yield(tuples.Tuple{}, err)
				return
			}
			if t.Conditional() {
				n = readCacheMaxTuples + 1
			}
			if n++; n <= readCacheMaxTuples {
				value = add(value, t)
			}
			if !yield(t, nil) {
				return
			}
		}
		if n <= readCacheMaxTuples {
			r.s.cache.put(key, value, r.rev)
		}
	}
}

func (r *reader) Objects(ctx context.Context, subject tuples.SubjectRef, objectType, relation string) iter.Seq2[tuples.Tuple, error] {
	rest := func(last *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
		return r.scan(ctx, "objects", "subject_type = $1 AND subject_id = $2 AND subject_relation = $3 AND object_type = $4 AND relation = $5",
			[]any{subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation}, []string{"object_id"}, last, 4*batchRows)
	}
	scan := r.batchedScan(ctx, "objects", batchKey{kind: cacheObjects, rev: r.rev},
		&batchReq{t: tuples.Tuple{Object: tuples.ObjectRef{Type: objectType}, Relation: relation, Subject: subject}}, rest)
	if r.s.cache == nil {
		return scan
	}
	key := appendKey(make([]byte, 0, 96), cacheObjects, subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation)
	return r.cached(scan, key, reverseBucket(subject, objectType, relation),
		func(v []byte, t tuples.Tuple) []byte { return appendString(v, t.Object.ID) },
		func(v []byte) (tuples.Tuple, []byte, bool) {
			t := tuples.Tuple{Object: tuples.ObjectRef{Type: objectType}, Relation: relation, Subject: subject}
			var ok bool
			t.Object.ID, v, ok = nextString(v)
			return t, v, ok
		})
}

// ObjectsAfter is Objects starting strictly after object id after (see
// tuples.ObjectsAfterReader).
func (r *reader) ObjectsAfter(ctx context.Context, subject tuples.SubjectRef, objectType, relation, after string) iter.Seq2[tuples.Tuple, error] {
	return r.scan(ctx, "objects", "subject_type = $1 AND subject_id = $2 AND subject_relation = $3 AND object_type = $4 AND relation = $5",
		[]any{subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation}, []string{"object_id"},
		&tuples.Tuple{Object: tuples.ObjectRef{Type: objectType, ID: after}}, scanFirst)
}

// SubjectsAfter is Subjects of subjectType starting strictly after subject id after
// (see tuples.SubjectsAfterReader).
func (r *reader) SubjectsAfter(ctx context.Context, object tuples.ObjectRef, relation, subjectType, after string) iter.Seq2[tuples.Tuple, error] {
	return r.scan(ctx, "subjects", "object_type = $1 AND object_id = $2 AND relation = $3 AND subject_type = $4 AND subject_id > $5",
		[]any{object.Type, object.ID, relation, subjectType, after}, []string{"subject_type", "subject_id", "subject_relation"}, nil, scanFirst)
}

var canonicalOrder = []string{"object_type", "object_id", "relation", "subject_type", "subject_id", "subject_relation"}

func (r *reader) Read(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	where, args := filterSQL(f, nil)
	return r.scan(ctx, "read", where, args, canonicalOrder, after, scanFirst)
}

func (r *reader) Schema(ctx context.Context) ([]byte, tuples.Revision, error) {
	if r.s.closed.Load() {
		return nil, 0, tuples.ErrClosed
	}
	if text, rev, ok := r.s.follow.schemaAt(r.rev); ok {
		if err := r.expired(int64(r.s.Horizon())); err != nil {
			return nil, 0, err
		}
		if text == nil {
			return nil, 0, tuples.ErrNoSchema
		}
		return text, rev, nil
	}
	var text []byte
	var rev *int64
	var h int64
	err := r.s.pool.QueryRow(ctx, `SELECT s.text, s.rev, h.horizon FROM relata_horizon h
		LEFT JOIN LATERAL (SELECT text, rev FROM relata_schema WHERE rev <= $1 ORDER BY rev DESC LIMIT 1) s ON true
		WHERE h.id = 1`, int64(r.rev)).Scan(&text, &rev, &h)
	if err != nil {
		return nil, 0, r.s.classify(ctx, "schema", err)
	}
	if err := r.expired(h); err != nil {
		return nil, 0, err
	}
	if rev == nil {
		return nil, 0, tuples.ErrNoSchema
	}
	return text, tuples.Revision(*rev), nil
}

// A scan reads in chunks, one query each: first scanFirst rows (or what its caller
// asks), then four times as many as the chunk before, up to scanChunk; it continues
// after the last row read (keyset pagination), each chunk with its own horizon check.
// Callers often stop after a few tuples (lookups read a few ids of a reverse scan at
// a time), and PostgreSQL's cost is per row produced, so the first chunks are small.
const (
	scanFirst = 64
	scanChunk = 1000
)

// scan yields the tuples live at r.rev matching where, ordered by order (columns
// that identify a tuple among those matching where at one revision), starting
// strictly after `after` when it is non-nil; its first query reads first rows.
func (r *reader) scan(ctx context.Context, what, where string, args []any, order []string, after *tuples.Tuple, first int) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		chunkSize := min(first, scanChunk)
		orderBy := strings.Join(order, ", ")
		revArg := len(args) + 1
		base := "SELECT " + tupleCols + ", " + attrCols + " FROM relata_tuple WHERE " + where + " AND " + atRev(revArg)
		args := append(args[:len(args):len(args)], int64(r.rev)) // a copy: the scan may run again
		last := after
		for {
			sql := base
			qargs := args
			if last != nil {
				ph := make([]string, len(order))
				for i, col := range order {
					qargs = append(qargs, column(*last, col))
					ph[i] = "$" + strconv.Itoa(len(qargs))
				}
				sql += " AND (" + orderBy + ") > (" + strings.Join(ph, ", ") + ")"
			}
			sql += " ORDER BY " + orderBy + " LIMIT " + strconv.Itoa(chunkSize)
			var chunk []tuples.Tuple
			err := r.s.readChecked(ctx, r.rev, what, sql, qargs, func(rows pgx.Rows) error {
				var t tuples.Tuple
				if err := scanTupleAttrs(rows, &t); err != nil {
					return err
				}
				chunk = append(chunk, t)
				return nil
			})
			if err != nil {
				yield(tuples.Tuple{}, err)
				return
			}
			for _, t := range chunk {
				if !yield(t, nil) {
					return
				}
			}
			if len(chunk) < chunkSize {
				return
			}
			last = &chunk[len(chunk)-1]
			chunkSize = min(4*chunkSize, scanChunk)
		}
	}
}

// column returns the value of a tuple column.
func column(t tuples.Tuple, col string) string {
	switch col {
	case "object_type":
		return t.Object.Type
	case "object_id":
		return t.Object.ID
	case "relation":
		return t.Relation
	case "subject_type":
		return t.Subject.Object.Type
	case "subject_id":
		return t.Subject.Object.ID
	}
	return t.Subject.Relation
}

// CountMatching counts the tuples matching f live at r.rev with one SQL count; see
// tuples.Counter.
func (r *reader) CountMatching(ctx context.Context, f tuples.Filter) (int64, error) {
	where, args := filterSQL(f, nil)
	args = append(args, int64(r.rev))
	sql := "SELECT count(*) FROM relata_tuple WHERE " + where + " AND " + atRev(len(args))
	var n int64
	err := r.s.readChecked(ctx, r.rev, "count", sql, args, func(rows pgx.Rows) error {
		return rows.Scan(&n)
	})
	return n, err
}
