package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/klauspost/compress/s2"

	"github.com/relata/relata/internal/keyorder"
	"github.com/relata/relata/tuples"
)

// mutation is the body of one write transaction: it runs after the revision row is
// locked (rev is the transaction's revision) and returns how many tuples changed. It
// adds to w what the node's follower needs to know of the write (see written).
type mutation func(ctx context.Context, tx pgx.Tx, rev tuples.Revision, w *written) (int, error)

// written is what a commit tells the node's own follower: every tuple the write may
// have changed (a superset is fine) and the schema text it wrote, if any. A mutation
// may also queue its last statements on tail: mutate sends them in one round trip
// with the commit record, so the revision row stays locked for one round trip less.
type written struct {
	tuples []tuples.Tuple
	schema []byte
	tail   pgx.Batch
}

// mutate runs fn in a write transaction at a new revision (see the package comment)
// and returns that revision once committed.
func (s *Store) mutate(ctx context.Context, fn mutation) (tuples.Revision, int, error) {
	if s.closed.Load() {
		return 0, 0, tuples.ErrClosed
	}
	s.queries.add("write")
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, 0, s.classify(ctx, "begin", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var rev int64
	if err := tx.QueryRow(ctx, "UPDATE relata_revision SET head = head + 1 WHERE id = 1 RETURNING head").Scan(&rev); err != nil {
		return 0, 0, s.classify(ctx, "revision", err)
	}
	var w written
	n, err := fn(ctx, tx, tuples.Revision(rev), &w)
	if err != nil {
		if domainError(err) {
			return 0, 0, err
		}
		return 0, 0, s.classify(ctx, "write", err)
	}
	b := &w.tail
	// The commit time is taken with the revision row locked, so it grows with
	// revisions (expirations are judged against it; see attrs.go).
	b.Queue("INSERT INTO relata_commit (rev, committed_at) VALUES ($1, clock_timestamp())", rev)
	b.Queue("SELECT pg_notify('"+notifyChannel+"', $1)", strconv.FormatInt(rev, 10))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, 0, s.classify(ctx, "write", err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	s.follow.commit(tuples.Revision(rev))
	if err := tx.Commit(cctx); err != nil {
		s.follow.failed(tuples.Revision(rev))
		return 0, 0, commitError(cctx, err)
	}
	s.observeHead(tuples.Revision(rev))
	s.follow.committed(tuples.Revision(rev), &w)
	return tuples.Revision(rev), n, nil
}

// domainError reports errors that a mutation returns for bad input or failed checks.
func domainError(err error) bool {
	var (
		verr *tuples.ValidationError
		perr *tuples.PreconditionError
		aerr *tuples.AlreadyExistsError
	)
	return errors.As(err, &verr) || errors.As(err, &perr) || errors.As(err, &aerr) || errors.Is(err, tuples.ErrSchemaChanged)
}

// checkSchemaRev fails with ErrSchemaChanged when the newest schema is not want.
func checkSchemaRev(ctx context.Context, tx pgx.Tx, want tuples.Revision) error {
	b := &pgx.Batch{}
	var failed error
	queueSchemaRev(b, want, &failed)
	if err := sendReads(ctx, tx, b); err != nil {
		return err
	}
	return failed
}

// queueSchemaRev queues on b the check that the newest schema is want (none when
// want is 0); once b ran, *failed is ErrSchemaChanged (wrapped) if it is not.
func queueSchemaRev(b *pgx.Batch, want tuples.Revision, failed *error) {
	if want == 0 {
		return
	}
	b.Queue("SELECT coalesce(max(rev), 0) FROM relata_schema").QueryRow(func(row pgx.Row) error {
		var cur int64
		if err := row.Scan(&cur); err != nil {
			return err
		}
		if tuples.Revision(cur) != want {
			*failed = fmt.Errorf("schema revision %d, validated against %d: %w", cur, want, tuples.ErrSchemaChanged)
		}
		return nil
	})
}

// sendReads sends b, if it holds anything, and runs its callbacks.
func sendReads(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// filterSQL returns the SQL conditions of f (joined with AND, "true" for none),
// appending its parameters to args.
func filterSQL(f tuples.Filter, args []any) (string, []any) {
	var conds []string
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			conds = append(conds, col+" = $"+strconv.Itoa(len(args)))
		}
	}
	add("object_type", f.ObjectType)
	add("object_id", f.ObjectID)
	add("relation", f.Relation)
	add("subject_type", f.SubjectType)
	add("subject_id", f.SubjectID)
	switch f.SubjectRelation {
	case tuples.Ellipsis:
		conds = append(conds, "subject_relation = ''")
	default:
		add("subject_relation", f.SubjectRelation)
	}
	if f.NoWildcard {
		conds = append(conds, "subject_id <> '*'")
	}
	if f.FormOnly {
		if f.Caveat == "" {
			conds = append(conds, "caveat_name IS NULL")
		} else {
			add("caveat_name", f.Caveat)
		}
		if f.Expiring {
			conds = append(conds, "expires_at IS NOT NULL")
		} else {
			conds = append(conds, "expires_at IS NULL")
		}
	}
	if len(conds) == 0 {
		return "true", args
	}
	return strings.Join(conds, " AND "), args
}

const tupleCols = "object_type, object_id, relation, subject_type, subject_id, subject_relation"

func scanTuple(rows pgx.Rows, t *tuples.Tuple) error {
	return rows.Scan(&t.Object.Type, &t.Object.ID, &t.Relation, &t.Subject.Object.Type, &t.Subject.Object.ID, &t.Subject.Relation)
}

// scanTupleAttrs scans tupleCols followed by attrCols.
func scanTupleAttrs(rows pgx.Rows, t *tuples.Tuple) error {
	var a attrs
	dst := append([]any{&t.Object.Type, &t.Object.ID, &t.Relation, &t.Subject.Object.Type, &t.Subject.Object.ID, &t.Subject.Relation}, a.targets()...)
	if err := rows.Scan(dst...); err != nil {
		return err
	}
	return a.apply(t)
}

// checkPreconditions evaluates each precondition against the live tuples, in one
// pipelined round trip.
func checkPreconditions(ctx context.Context, tx pgx.Tx, pre []tuples.Precondition) error {
	b := &pgx.Batch{}
	var failed error
	queuePreconditions(b, pre, &failed)
	if err := sendReads(ctx, tx, b); err != nil {
		return err
	}
	return failed
}

// queuePreconditions queues on b one query per precondition; once b ran, *failed is
// the first precondition that failed, if any.
func queuePreconditions(b *pgx.Batch, pre []tuples.Precondition, failed *error) {
	for _, p := range pre {
		where, args := filterSQL(p.Filter, nil)
		b.Queue("SELECT "+tupleCols+" FROM relata_tuple WHERE deleted_rev = "+maxRev+" AND "+where+" ORDER BY "+tupleCols+" LIMIT 1", args...).
			Query(func(rows pgx.Rows) error {
				var found *tuples.Tuple
				for rows.Next() {
					var t tuples.Tuple
					if err := scanTuple(rows, &t); err != nil {
						return err
					}
					found = &t
				}
				if err := rows.Err(); err != nil || *failed != nil {
					return err
				}
				switch {
				case p.Op == tuples.MustMatch && found == nil:
					*failed = &tuples.PreconditionError{Precondition: p}
				case p.Op == tuples.MustNotMatch && found != nil:
					*failed = &tuples.PreconditionError{Precondition: p, Tuple: *found}
				}
				return nil
			})
	}
}

// columns holds tuples as six parallel arrays, for unnest.
type columns [6][]string

func (c *columns) add(t tuples.Tuple) {
	for i, v := range [6]string{t.Object.Type, t.Object.ID, t.Relation, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation} {
		c[i] = append(c[i], v)
	}
}

func (c *columns) args() []any {
	return []any{c[0], c[1], c[2], c[3], c[4], c[5]}
}

const unnest6 = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(ot, oid, rel, st, sid, srel)"
const joinU = "t.object_type = u.ot AND t.object_id = u.oid AND t.relation = u.rel AND t.subject_type = u.st AND t.subject_id = u.sid AND t.subject_relation = u.srel"

// Write applies req atomically at a new revision; see tuples.Store. Concurrent
// writes of this node commit together (group.go).
func (s *Store) Write(ctx context.Context, req tuples.WriteRequest) (tuples.Revision, error) {
	if err := s.validateWrite(req); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, tuples.ErrClosed
	}
	return s.group.write(ctx, s, newWriteOp(req))
}

// writeAlone runs op in a transaction of its own (mutate).
func (s *Store) writeAlone(ctx context.Context, op *writeOp) (tuples.Revision, error) {
	rev, _, err := s.mutate(ctx, func(ctx context.Context, tx pgx.Tx, rev tuples.Revision, w *written) (int, error) {
		reads := &pgx.Batch{}
		op.queueReads(reads)
		if err := sendReads(ctx, tx, reads); err != nil {
			return 0, err
		}
		return op.apply(&w.tail, rev, w)
	})
	return rev, err
}

// writeOp is one Write inside a write transaction, in two steps: queueReads queues
// the reads it needs once the revision row is locked (the schema check, the
// preconditions and the live version of each tuple written, with its caveat and
// expiration), and apply, once they ran, decides and queues the statements of the
// write at its revision.
type writeOp struct {
	req tuples.WriteRequest
	all columns

	schemaErr, preErr error
	live              map[tuples.Tuple]tuples.Tuple
}

func newWriteOp(req tuples.WriteRequest) *writeOp {
	op := &writeOp{req: req}
	for _, u := range req.Updates {
		op.all.add(u.Tuple)
	}
	return op
}

// queueReads queues on b the reads of op (resetting what an earlier run read).
func (op *writeOp) queueReads(b *pgx.Batch) {
	op.schemaErr, op.preErr = nil, nil
	op.live = map[tuples.Tuple]tuples.Tuple{}
	queueSchemaRev(b, op.req.SchemaRevision, &op.schemaErr)
	queuePreconditions(b, op.req.Preconditions, &op.preErr)
	if len(op.req.Updates) == 0 {
		return
	}
	b.Queue("SELECT t.object_type, t.object_id, t.relation, t.subject_type, t.subject_id, t.subject_relation, "+
		"t.caveat_name, t.caveat_context, t.expires_at, t.expires_nanos FROM relata_tuple t JOIN "+
		unnest6+" ON "+joinU+" WHERE t.deleted_rev = "+maxRev, op.all.args()...).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var t tuples.Tuple
				if err := scanTupleAttrs(rows, &t); err != nil {
					return err
				}
				op.live[t.Key()] = t
			}
			return rows.Err()
		})
}

// apply runs after op's reads: it returns the domain error that refuses the write
// (schema changed, a precondition, CREATE of a live tuple), having queued nothing,
// or queues on b the statements of the write at rev, notes in w what the follower
// must know, and returns how many tuples change (0: the write changes nothing, but
// still takes rev).
func (op *writeOp) apply(b *pgx.Batch, rev tuples.Revision, w *written) (int, error) {
	if op.schemaErr != nil {
		return 0, op.schemaErr
	}
	if op.preErr != nil {
		return 0, op.preErr
	}
	var created, deleted, changed columns
	var createdAttrs, changedAttrs attrColumns
	var chOps []int16
	for _, u := range op.req.Updates {
		cur, isLive := op.live[u.Tuple.Key()]
		switch {
		case u.Op == tuples.OpCreate && isLive:
			return 0, &tuples.AlreadyExistsError{Tuple: u.Tuple}
		case u.Op == tuples.OpDelete && isLive:
			deleted.add(u.Tuple)
			changed.add(u.Tuple)
			changedAttrs.add(cur)
			chOps = append(chOps, int16(tuples.OpDelete))
		case u.Op != tuples.OpDelete && (!isLive || !same(cur, u.Tuple)):
			if isLive {
				// Another caveat or expiration: the new version replaces the old.
				deleted.add(u.Tuple)
			}
			created.add(u.Tuple)
			createdAttrs.add(u.Tuple)
			changed.add(u.Tuple)
			changedAttrs.add(u.Tuple)
			chOps = append(chOps, int16(tuples.OpTouch))
		}
	}
	if len(chOps) == 0 {
		return 0, nil
	}
	for _, u := range op.req.Updates {
		w.tuples = append(w.tuples, u.Tuple)
	}
	queueVersions(b, rev, created, deleted, changed, createdAttrs, changedAttrs, chOps)
	return len(chOps), nil
}

// queueVersions queues on b the statements that end the live versions of deleted,
// create versions of created and log changed (with ops) at rev.
func queueVersions(b *pgx.Batch, rev tuples.Revision, created, deleted, changed columns, createdAttrs, changedAttrs attrColumns, ops []int16) {
	if len(deleted[0]) > 0 {
		b.Queue("UPDATE relata_tuple t SET deleted_rev = $7 FROM "+unnest6+" WHERE "+joinU+" AND t.deleted_rev = "+maxRev,
			append(deleted.args(), int64(rev))...)
	}
	const unnestAttrs = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::text[], $9::text[], $10::timestamptz[], $11::smallint[]"
	if len(created[0]) > 0 {
		b.Queue("INSERT INTO relata_tuple ("+tupleCols+", "+attrCols+", created_rev) SELECT u.ot, u.oid, u.rel, u.st, u.sid, u.srel, u.cv, u.ctx::jsonb, u.exp, u.ns, $7 FROM "+
			unnestAttrs+") AS u(ot, oid, rel, st, sid, srel, cv, ctx, exp, ns)",
			append(created.args(), int64(rev), createdAttrs.caveat, createdAttrs.context, createdAttrs.expires, createdAttrs.nanos)...)
	}
	b.Queue("INSERT INTO relata_change (rev, seq, "+tupleCols+", "+attrCols+", op) SELECT $7, u.ord - 1, u.ot, u.oid, u.rel, u.st, u.sid, u.srel, u.cv, u.ctx::jsonb, u.exp, u.ns, u.op FROM "+
		unnestAttrs+", $12::smallint[]) WITH ORDINALITY AS u(ot, oid, rel, st, sid, srel, cv, ctx, exp, ns, op, ord)",
		append(changed.args(), int64(rev), changedAttrs.caveat, changedAttrs.context, changedAttrs.expires, changedAttrs.nanos, ops)...)
}

// DeleteMatching deletes every live tuple matching f; see tuples.Store.
func (s *Store) DeleteMatching(ctx context.Context, f tuples.Filter, preconditions []tuples.Precondition) (tuples.Revision, int, error) {
	if err := f.Validate(); err != nil {
		return 0, 0, err
	}
	if err := tuples.ValidatePreconditions(preconditions); err != nil {
		return 0, 0, err
	}
	return s.mutate(ctx, func(ctx context.Context, tx pgx.Tx, rev tuples.Revision, w *written) (int, error) {
		if err := checkPreconditions(ctx, tx, preconditions); err != nil {
			return 0, err
		}
		where, args := filterSQL(f, []any{int64(rev)})
		rows, err := tx.Query(ctx, `WITH del AS (
			UPDATE relata_tuple SET deleted_rev = $1 WHERE deleted_rev = `+maxRev+` AND `+where+`
			RETURNING `+tupleCols+`)
			INSERT INTO relata_change (rev, seq, op, `+tupleCols+`)
			SELECT $1, row_number() OVER (ORDER BY `+tupleCols+`) - 1, `+strconv.Itoa(int(tuples.OpDelete))+`, `+tupleCols+` FROM del
			RETURNING `+tupleCols, args...)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var t tuples.Tuple
			if err := scanTuple(rows, &t); err != nil {
				rows.Close()
				return 0, err
			}
			w.tuples = append(w.tuples, t)
		}
		rows.Close()
		return len(w.tuples), rows.Err()
	})
}

// WriteSchema stores text at a new revision; see tuples.Store.
func (s *Store) WriteSchema(ctx context.Context, text []byte, preconditions []tuples.Precondition) (tuples.Revision, error) {
	if err := tuples.ValidatePreconditions(preconditions); err != nil {
		return 0, err
	}
	rev, _, err := s.mutate(ctx, func(ctx context.Context, tx pgx.Tx, rev tuples.Revision, w *written) (int, error) {
		if err := checkPreconditions(ctx, tx, preconditions); err != nil {
			return 0, err
		}
		_, err := tx.Exec(ctx, "INSERT INTO relata_schema (rev, text) VALUES ($1, $2)", int64(rev), text)
		w.schema = text
		return 0, err
	})
	return rev, err
}

// Import writes ts with TOUCH semantics at one new revision; see tuples.Importer.
func (s *Store) Import(ctx context.Context, ts []tuples.Tuple, schemaRevision tuples.Revision) (tuples.Revision, error) {
	p, err := s.PrepareImport(ts)
	if err != nil {
		return 0, err
	}
	return s.ImportPrepared(ctx, p, schemaRevision)
}

// preparedImport is an import's tuples made ready for ImportPrepared: distinct, in
// key order, encoded for COPY, and compressed for the change log.
type preparedImport struct {
	staged []tuples.Tuple
	rows   *encodedRows
	logged []byte // rows.buf as one S2 block; nil when an import too large logs rows
}

// PrepareImport validates ts, sorts and deduplicates it (the first of equal keys
// wins, as in the Pebble store), encodes the rows for COPY and compresses them for
// the change log; see tuples.ImportPreparer. It reads nothing from the database.
func (s *Store) PrepareImport(ts []tuples.Tuple) (tuples.PreparedImport, error) {
	for i, t := range ts {
		if err := t.Validate(); err != nil {
			return nil, tuples.PrefixField(err, "tuples["+strconv.Itoa(i)+"].")
		}
	}
	p := &preparedImport{staged: importOrder(ts)}
	p.rows = encodeRows(p.staged)
	if len(p.staged) > 0 && len(p.rows.buf) <= s.changeBatchMax {
		p.logged = s2.Encode(nil, p.rows.buf)
	}
	return p, nil
}

// ImportPrepared writes an import that PrepareImport prepared, at one new revision.
//
// Under the revision row's lock, inside a savepoint, the tuples are copied (binary
// COPY) straight into relata_tuple at the new revision, in key order: no staging
// table, no per-row executor work, and the heap inserts go in multi-row WAL records;
// the change log is one relata_change_batch row. That is the whole import when no
// tuple of the batch is live yet: a load into an empty store, or of new tuples. A
// tuple that is live already makes the COPY fail on the version key (tuple,
// deleted_rev: see migration 0003), whose deleted_rev is the live mark for every
// copied row; the import then rolls back to the savepoint and takes the conflict path
// (importConflicts), which yields exactly the same versions and change log: a tuple
// live with the same caveat and expiration is left alone, one live with others is
// replaced.
func (s *Store) ImportPrepared(ctx context.Context, prepared tuples.PreparedImport, schemaRevision tuples.Revision) (tuples.Revision, error) {
	p, ok := prepared.(*preparedImport)
	if !ok {
		return 0, fmt.Errorf("import: prepared by another store (%T)", prepared)
	}
	staged, rows := p.staged, p.rows
	rev, _, err := s.mutate(ctx, func(ctx context.Context, tx pgx.Tx, rev tuples.Revision, w *written) (int, error) {
		b := &pgx.Batch{}
		var schemaErr error
		queueSchemaRev(b, schemaRevision, &schemaErr)
		if len(staged) > 0 {
			b.Queue("SAVEPOINT relata_import")
		}
		if err := sendReads(ctx, tx, b); err != nil {
			return 0, err
		}
		if schemaErr != nil {
			return 0, schemaErr
		}
		w.tuples = staged
		if len(staged) == 0 {
			return 0, nil
		}
		conn := tx.Conn().PgConn()
		_, err := conn.CopyFrom(ctx, newCopyReader(rows, copyTuples, rev), copyTupleSQL)
		if isUniqueViolation(err) {
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT relata_import"); err != nil {
				return 0, err
			}
			return importConflicts(ctx, tx, rev, rows)
		}
		if err != nil {
			return 0, err
		}
		// The change log: the same rows, seq in key order, op TOUCH; as one row of
		// relata_change_batch (migration 0004), sent with the commit record.
		if p.logged != nil {
			w.tail.Queue("INSERT INTO relata_change_batch (rev, format, n, rows) VALUES ($1, $2, $3, $4)",
				int64(rev), int16(changeBatchS2), int32(len(staged)), p.logged)
			return len(staged), nil
		}
		if _, err := conn.CopyFrom(ctx, newCopyReader(rows, copyChanges, rev), copyChangeSQL); err != nil {
			return 0, err
		}
		return len(staged), nil
	})
	return rev, err
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// importConflicts is Import's path when some of its tuples are live already (the
// transaction holds the revision lock and rev): the rows are copied to a temporary
// staging table; one statement ends the live versions whose caveat or expiration
// differs from the staged tuple's, and one inserts the staged tuples that are not
// live (INSERT … ON CONFLICT DO NOTHING on the version key, whose deleted_rev is the
// live mark for every staged row: the index insertion itself is the probe, so no plan can turn it into a scan of
// relata_tuple) and logs them, in key order.
//
// Plans: the staging table has no statistics, and relata_tuple's may be far behind a
// bulk load (autovacuum analyzes it now and then). With a join to choose, the planner
// took the staged tuples against a "two-row" relata_tuple read whole for each staged
// tuple: 15,000 x 1,000 comparisons (1.5 s) for one batch at 1,000 tuples, 21 s at
// 100,000 (auto_explain). The UPDATE is therefore a LATERAL probe per staged tuple,
// with sequential and bitmap scans off, and the INSERT needs no join at all.
func importConflicts(ctx context.Context, tx pgx.Tx, rev tuples.Revision, rows *encodedRows) (int, error) {
	if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS relata_import (
		object_type text COLLATE "C", object_id text COLLATE "C", relation text COLLATE "C",
		subject_type text COLLATE "C", subject_id text COLLATE "C", subject_relation text COLLATE "C",
		caveat_name text, caveat_context jsonb, expires_at timestamptz, expires_nanos smallint) ON COMMIT DELETE ROWS`); err != nil {
		return 0, err
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, newCopyReader(rows, copyStaged, rev), copyStagingSQL); err != nil {
		return 0, err
	}
	const sameKey = `t.object_type = s.object_type AND t.object_id = s.object_id AND t.relation = s.relation AND
			t.subject_type = s.subject_type AND t.subject_id = s.subject_id AND t.subject_relation = s.subject_relation`
	const sameAttrs = `(t.caveat_name, t.caveat_context, t.expires_at, t.expires_nanos) IS NOT DISTINCT FROM
			(s.caveat_name, s.caveat_context, s.expires_at, s.expires_nanos)`
	if _, err := tx.Exec(ctx, `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
		set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE relata_tuple SET deleted_rev = $1 WHERE ctid = ANY (ARRAY(
		SELECT l.tid FROM relata_import s CROSS JOIN LATERAL (
			SELECT t.ctid AS tid FROM relata_tuple t
			WHERE t.deleted_rev = `+maxRev+` AND `+sameKey+` AND NOT `+sameAttrs+` LIMIT 1) l))`, int64(rev)); err != nil {
		return 0, err
	}
	// The staged tuples come in key order, so the log's seq follows it.
	tag, err := tx.Exec(ctx, `WITH ins AS (
		INSERT INTO relata_tuple (`+tupleCols+`, `+attrCols+`, created_rev)
		SELECT `+tupleCols+`, `+attrCols+`, $1::bigint FROM relata_import
		ON CONFLICT (`+tupleCols+`, deleted_rev) DO NOTHING
		RETURNING `+tupleCols+`, `+attrCols+`)
		INSERT INTO relata_change (rev, seq, op, `+tupleCols+`, `+attrCols+`)
		SELECT $1, row_number() OVER (ORDER BY `+tupleCols+`) - 1, `+opTouch+`, `+tupleCols+`, `+attrCols+` FROM ins`, int64(rev))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// opTouch is tuples.OpTouch as SQL text.
var opTouch = strconv.Itoa(int(tuples.OpTouch))

// importOrder returns the distinct tuples of ts in key order (column by column, byte
// order, as the "C" collation sorts); of tuples with equal keys, the first in ts.
//
// It sorts by the keys' first 16 bytes as two integers and compares the tuples
// themselves only on ties (internal/keyorder): the tuple comparisons (six strings
// through a pointer into 13 MB of tuples) were 20% of a loading node's CPU. The key is
// the six columns joined by 0 bytes, which orders as the columns do because names and
// object ids never hold a 0 byte (ts is validated).
func importOrder(ts []tuples.Tuple) []tuples.Tuple {
	order := keyorder.Order(len(ts), func(i int) (b [16]byte) {
		t := &ts[i]
		k := b[:0]
		for j, s := range [6]string{t.Object.Type, t.Object.ID, t.Relation, t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation} {
			if j > 0 {
				k = append(k, 0)
			}
			k = append(k, s[:min(len(s), cap(k)-len(k))]...)
			if len(k) == cap(k) {
				break
			}
		}
		return b
	}, func(i, j int32) int {
		if c := tuples.ComparePtr(&ts[i], &ts[j]); c != 0 {
			return c
		}
		return int(i - j)
	})
	out := make([]tuples.Tuple, 0, len(ts))
	for k, i := range order {
		if k > 0 && tuples.ComparePtr(&ts[order[k-1]], &ts[i]) == 0 {
			continue // a later tuple with the previous one's key
		}
		out = append(out, ts[i])
	}
	return out
}

// validateWrite checks a write before any round trip: the update limit, each tuple,
// duplicates, and the precondition filters.
func (s *Store) validateWrite(req tuples.WriteRequest) error {
	return req.Validate(s.opts.MaxUpdatesPerWrite)
}
