package pgstore

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"

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
	// One statement: its snapshot covers both the data and the horizon.
	var ok bool
	var h int64
	err := r.s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM relata_tuple WHERE object_type = $1 AND object_id = $2
		AND relation = $3 AND subject_type = $4 AND subject_id = $5 AND subject_relation = $6 AND `+atRev(7)+`),
		(SELECT horizon FROM relata_horizon WHERE id = 1)`,
		t.Object.Type, t.Object.ID, t.Relation, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation, int64(r.rev)).Scan(&ok, &h)
	if err != nil {
		return false, r.s.classify(ctx, "contains "+t.String(), err)
	}
	if err := r.expired(h); err != nil {
		return false, err
	}
	return ok, nil
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
	return r.scan(ctx, "subjects", where, args, []string{"subject_type", "subject_id", "subject_relation"}, nil)
}

func (r *reader) Objects(ctx context.Context, subject tuples.SubjectRef, objectType, relation string) iter.Seq2[tuples.Tuple, error] {
	return r.scan(ctx, "objects", "subject_type = $1 AND subject_id = $2 AND subject_relation = $3 AND object_type = $4 AND relation = $5",
		[]any{subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation}, []string{"object_id"}, nil)
}

// ObjectsAfter is Objects starting strictly after object id after (see
// tuples.ObjectsAfterReader).
func (r *reader) ObjectsAfter(ctx context.Context, subject tuples.SubjectRef, objectType, relation, after string) iter.Seq2[tuples.Tuple, error] {
	return r.scan(ctx, "objects", "subject_type = $1 AND subject_id = $2 AND subject_relation = $3 AND object_type = $4 AND relation = $5",
		[]any{subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation}, []string{"object_id"},
		&tuples.Tuple{Object: tuples.ObjectRef{Type: objectType, ID: after}})
}

var canonicalOrder = []string{"object_type", "object_id", "relation", "subject_type", "subject_id", "subject_relation"}

func (r *reader) Read(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	where, args := filterSQL(f, nil)
	return r.scan(ctx, "read", where, args, canonicalOrder, after)
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

// scanChunk is how many rows one query of a scan reads; a longer scan continues
// after the last row (keyset pagination), each chunk with its own horizon check.
const scanChunk = 1000

// scan yields the tuples live at r.rev matching where, ordered by order (columns
// that identify a tuple among those matching where at one revision), starting
// strictly after `after` when it is non-nil.
func (r *reader) scan(ctx context.Context, what, where string, args []any, order []string, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		orderBy := strings.Join(order, ", ")
		revArg := len(args) + 1
		base := "SELECT " + tupleCols + ", " + attrCols + " FROM relata_tuple WHERE " + where + " AND " + atRev(revArg)
		args = append(args, int64(r.rev))
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
			sql += " ORDER BY " + orderBy + " LIMIT " + strconv.Itoa(scanChunk)
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
			if len(chunk) < scanChunk {
				return
			}
			last = &chunk[len(chunk)-1]
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
