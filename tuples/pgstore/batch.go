package pgstore

// Batching: the engine's many tiny reads become few queries.
//
// The engine answers one level of a check as concurrent sub-problems, each of which
// reads one object#relation (Subjects), one subject's memberships (Objects) or one
// tuple (Contains); many concurrent requests do the same. Sent one by one, each read
// is a round trip and a statement in PostgreSQL, and under load they queue for the
// pool's connections. So reads of one kind at one revision join one group: the first
// read of a group (its leader) waits for a connection, and every read of that kind
// and revision that arrives while it waits joins the group; once the leader has its
// connection it closes the group and sends ONE query for all of them (the reads'
// keys as arrays, unnest, one LATERAL index scan per read: one query per kind, which
// covers every (type, relation) of a level) and hands each read its rows. With an
// idle pool the leader gets a connection at once and reads alone, so batching adds no
// latency when there is nothing to batch. A leader first takes one of batchInFlight
// slots of its kind: with that many queries of the kind already in flight, it waits
// for one to finish, and reads that arrive meanwhile join its group. Without that
// bound, reads that arrive a few at a time (a lookup verifying candidates, checks at
// low concurrency) each found an idle connection and went alone: one statement and
// one round trip per read, whose fixed cost in PostgreSQL was more than the read's.
// The horizon is read in the same pipelined round trip, as every read does
// (readChecked).
//
// HeadRevision is grouped the same way, with one more rule: a caller joins only a
// group whose query has not been sent yet, so the head it gets was read after it
// called (a fully_consistent read never gets a head older than its call).
//
// A batched answer holds at most batchRows tuples per read: the engine often stops
// after a few tuples (it reads a small relation whole only up to a bound, and stops
// at the first match), and PostgreSQL's cost is per row produced. A read whose
// caller wants more continues with a keyset scan of its own after the last tuple.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relata/relata/tuples"
)

// maxBatch bounds the reads of one group.
const maxBatch = 256

// batchInFlight is how many batched queries of one kind a node runs at once (1 beat
// 2 and no bound: see BENCHMARKS.md).
const batchInFlight = 1

// batchRows is the most tuples a batched answer holds per read. The engine reads a
// relation of at most 16 tuples whole (check's smallRelation) and stops at the 17th,
// and most reads are those: more rows would be produced only to be dropped.
const batchRows = 17

// batchKey is the shape of a group of reads: its kind and revision.
type batchKey struct {
	kind byte // cacheSubjects, cacheObjects or cacheContains
	rev  tuples.Revision
}

// batchReq is one read of a group and, once the group is done, its answer.
// Subjects reads t.Object#t.Relation (only subjects of type subjectType when it is
// set); Objects reads t.Subject's tuples of t.Object.Type#t.Relation; Contains
// looks for t.
type batchReq struct {
	t           tuples.Tuple
	subjectType string

	rows []tuples.Tuple // the tuples read (Contains: the live version, if any)
	more bool           // batchRows tuples read: there may be more after the last
}

// batchGroup is the reads of one shape sent as one query.
type batchGroup struct {
	key    batchKey
	reqs   []*batchReq
	closed bool // no longer accepts reads (the leader has a connection)
	done   chan struct{}
	err    error
}

// batcher holds the groups still accepting reads.
type batcher struct {
	mu    sync.Mutex
	open  map[batchKey]*batchGroup
	head  *headGroup
	slots map[byte]chan struct{} // per kind, batchInFlight slots
}

// slot returns the semaphore of kind's queries in flight.
func (b *batcher) slot(kind byte) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.slots == nil {
		b.slots = make(map[byte]chan struct{})
	}
	c := b.slots[kind]
	if c == nil {
		c = make(chan struct{}, batchInFlight)
		b.slots[kind] = c
	}
	return c
}

// headGroup is a group of HeadRevision callers.
type headGroup struct {
	done chan struct{}
	head int64
	err  error
}

// join adds req to the open group of key, or opens one with req as its leader.
func (b *batcher) join(key batchKey, req *batchReq) (g *batchGroup, leader bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if g := b.open[key]; g != nil && !g.closed && len(g.reqs) < maxBatch {
		g.reqs = append(g.reqs, req)
		return g, false
	}
	if b.open == nil {
		b.open = make(map[batchKey]*batchGroup)
	}
	g = &batchGroup{key: key, reqs: []*batchReq{req}, done: make(chan struct{})}
	b.open[key] = g
	return g, true
}

// seal closes g to new reads and returns them.
func (b *batcher) seal(g *batchGroup) []*batchReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	g.closed = true
	if b.open[g.key] == g {
		delete(b.open, g.key)
	}
	return g.reqs
}

// batched runs req in a group of its shape and waits for its answer. A read whose
// group failed only because its leader's context ended is retried, alone or in
// another group, as long as its own context lives.
func (s *Store) batched(ctx context.Context, key batchKey, req *batchReq) error {
	for {
		g, leader := s.batch.join(key, req)
		if leader {
			s.runGroup(ctx, g)
		} else {
			select {
			case <-g.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := g.err
		if err != nil && !leader && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			req.rows, req.more = nil, false
			continue
		}
		return err
	}
}

// runGroup is the leader's part: get a slot of its kind and a connection (reads join
// meanwhile), seal the group, send its one query and hand out the rows.
func (s *Store) runGroup(ctx context.Context, g *batchGroup) {
	defer close(g.done)
	slot := s.batch.slot(g.key.kind)
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		s.batch.seal(g)
		g.err = ctx.Err()
		return
	}
	defer func() { <-slot }()
	conn, err := s.pool.Acquire(ctx)
	reqs := s.batch.seal(g)
	if err != nil {
		g.err = err
		return
	}
	defer conn.Release()
	switch g.key.kind {
	case cacheSubjects:
		s.queries.add("subjects")
		g.err = s.subjectsBatch(ctx, conn, g.key, reqs)
	case cacheObjects:
		s.queries.add("objects")
		g.err = s.objectsBatch(ctx, conn, g.key, reqs)
	default:
		s.queries.add("contains")
		g.err = s.containsBatch(ctx, conn, g.key, reqs)
	}
}

// batchSender is what sendChecked sends on: a pooled connection or the pool.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// sendChecked sends one query and the horizon read in one pipelined round trip on
// conn, calls each for every row, and fails with ErrRevisionExpired when the horizon
// passed rev (the later statement's snapshot covers the earlier one's: see the
// package comment).
func (s *Store) sendChecked(ctx context.Context, conn batchSender, rev tuples.Revision, sql string, args []any, each func(pgx.Rows) error) error {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	b.Queue("SELECT horizon FROM relata_horizon WHERE id = 1")
	br := conn.SendBatch(ctx, b)
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			if err = each(rows); err != nil {
				break
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	var h int64
	if err == nil {
		err = br.QueryRow().Scan(&h)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	s.observeHorizon(tuples.Revision(h))
	if rev < tuples.Revision(h) {
		return errRevisionExpired(rev, h)
	}
	return nil
}

// subjectsBatch reads Subjects for every request of a group: per request, the first
// batchRows tuples in scan order.
func (s *Store) subjectsBatch(ctx context.Context, conn *pgxpool.Conn, key batchKey, reqs []*batchReq) error {
	var ots, ids, rels, sts []string
	for _, r := range reqs {
		ots = append(ots, r.t.Object.Type)
		ids = append(ids, r.t.Object.ID)
		rels = append(rels, r.t.Relation)
		sts = append(sts, r.subjectType)
	}
	sql := `SELECT k.i, t.subject_type, t.subject_id, t.subject_relation, t.caveat_name, t.caveat_context, t.expires_at, t.expires_nanos
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY k(ot, id, rel, st, i)
		CROSS JOIN LATERAL (SELECT subject_type, subject_id, subject_relation, ` + attrCols + ` FROM relata_tuple t
			WHERE t.object_type = k.ot AND t.object_id = k.id AND t.relation = k.rel AND (k.st = '' OR t.subject_type = k.st)
			AND ` + atRev(5) + `
			ORDER BY subject_type, subject_id, subject_relation LIMIT ` + strconv.Itoa(batchRows) + `) t
		ORDER BY k.i, t.subject_type, t.subject_id, t.subject_relation`
	return s.sendChecked(ctx, conn, key.rev, sql, []any{ots, ids, rels, sts, int64(key.rev)}, func(rows pgx.Rows) error {
		var i int64
		var a attrs
		var t tuples.Tuple
		if err := rows.Scan(append([]any{&i, &t.Subject.Object.Type, &t.Subject.Object.ID, &t.Subject.Relation}, a.targets()...)...); err != nil {
			return err
		}
		if err := a.apply(&t); err != nil {
			return err
		}
		r := reqs[i-1]
		t.Object, t.Relation = r.t.Object, r.t.Relation
		r.add(t)
		return nil
	})
}

// objectsBatch reads Objects for every request of a group, as subjectsBatch.
func (s *Store) objectsBatch(ctx context.Context, conn *pgxpool.Conn, key batchKey, reqs []*batchReq) error {
	var sts, sids, srs, ots, rels []string
	for _, r := range reqs {
		sts = append(sts, r.t.Subject.Object.Type)
		sids = append(sids, r.t.Subject.Object.ID)
		srs = append(srs, r.t.Subject.Relation)
		ots = append(ots, r.t.Object.Type)
		rels = append(rels, r.t.Relation)
	}
	sql := `SELECT k.i, t.object_id, t.caveat_name, t.caveat_context, t.expires_at, t.expires_nanos
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY k(st, sid, sr, ot, rel, i)
		CROSS JOIN LATERAL (SELECT object_id, ` + attrCols + ` FROM relata_tuple t
			WHERE t.subject_type = k.st AND t.subject_id = k.sid AND t.subject_relation = k.sr
			AND t.object_type = k.ot AND t.relation = k.rel AND ` + atRev(6) + `
			ORDER BY object_id LIMIT ` + strconv.Itoa(batchRows) + `) t
		ORDER BY k.i, t.object_id`
	return s.sendChecked(ctx, conn, key.rev, sql, []any{sts, sids, srs, ots, rels, int64(key.rev)}, func(rows pgx.Rows) error {
		var i int64
		var a attrs
		var t tuples.Tuple
		if err := rows.Scan(append([]any{&i, &t.Object.ID}, a.targets()...)...); err != nil {
			return err
		}
		if err := a.apply(&t); err != nil {
			return err
		}
		r := reqs[i-1]
		t.Object.Type, t.Relation, t.Subject = r.t.Object.Type, r.t.Relation, r.t.Subject
		r.add(t)
		return nil
	})
}

// add appends a tuple read for r; the batchRows-th marks that more may follow.
func (r *batchReq) add(t tuples.Tuple) {
	r.rows = append(r.rows, t)
	r.more = len(r.rows) == batchRows
}

// containsBatch reads Contains for every request of a group: the live version of
// each tuple, if any.
func (s *Store) containsBatch(ctx context.Context, conn *pgxpool.Conn, key batchKey, reqs []*batchReq) error {
	var ots, ids, rels, sts, sids, srs []string
	for _, r := range reqs {
		ots = append(ots, r.t.Object.Type)
		ids = append(ids, r.t.Object.ID)
		rels = append(rels, r.t.Relation)
		sts = append(sts, r.t.Subject.Object.Type)
		sids = append(sids, r.t.Subject.Object.ID)
		srs = append(srs, r.t.Subject.Relation)
	}
	sql := `SELECT k.i, t.caveat_name, t.caveat_context, t.expires_at, t.expires_nanos
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY k(ot, id, rel, st, sid, sr, i)
		CROSS JOIN LATERAL (SELECT ` + attrCols + ` FROM relata_tuple t
			WHERE t.object_type = k.ot AND t.object_id = k.id AND t.relation = k.rel AND t.subject_type = k.st
			AND t.subject_id = k.sid AND t.subject_relation = k.sr AND ` + atRev(7) + ` LIMIT 1) t`
	return s.sendChecked(ctx, conn, key.rev, sql, []any{ots, ids, rels, sts, sids, srs, int64(key.rev)}, func(rows pgx.Rows) error {
		var i int64
		var a attrs
		if err := rows.Scan(append([]any{&i}, a.targets()...)...); err != nil {
			return err
		}
		r := reqs[i-1]
		t := r.t
		if err := a.apply(&t); err != nil {
			return err
		}
		r.rows = append(r.rows[:0], t)
		return nil
	})
}

// headRevision reads the head in a group of concurrent callers (see the top of the
// file): the query is sent after every member called.
func (s *Store) headRevision(ctx context.Context) (int64, error) {
	for {
		b := &s.batch
		b.mu.Lock()
		g, leader := b.head, false
		if g == nil {
			g, leader = &headGroup{done: make(chan struct{})}, true
			b.head = g
		}
		b.mu.Unlock()
		if leader {
			func() {
				defer close(g.done)
				conn, err := s.pool.Acquire(ctx)
				b.mu.Lock()
				if b.head == g {
					b.head = nil
				}
				b.mu.Unlock()
				if err != nil {
					g.err = err
					return
				}
				defer conn.Release()
				s.queries.add("head")
				g.err = conn.QueryRow(ctx, "SELECT head FROM relata_revision WHERE id = 1").Scan(&g.head)
			}()
		} else {
			select {
			case <-g.done:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if g.err != nil && !leader && ctx.Err() == nil && (errors.Is(g.err, context.Canceled) || errors.Is(g.err, context.DeadlineExceeded)) {
			continue
		}
		return g.head, g.err
	}
}

// errRevisionExpired is the error of a read at rev below the horizon h.
func errRevisionExpired(rev tuples.Revision, h int64) error {
	return fmt.Errorf("revision %d, horizon %d: %w", rev, h, tuples.ErrRevisionExpired)
}
