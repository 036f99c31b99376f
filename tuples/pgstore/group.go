package pgstore

// Group commit: the concurrent Writes of one node share one transaction.
//
// Every write transaction holds the revision row's lock from its first statement to
// its commit (see the package comment), so writers are serialized on it, each for a
// few round trips and one WAL flush. When writes were each their own transaction, the
// writes that arrived while one held the lock each took a pool connection and waited
// on the lock in PostgreSQL: under a read-heavy load (bench's mixed phase, 1% writes
// at concurrency 64) a dozen writers queued on the lock at once, each holding a
// connection the reads needed, and a Write took 160-300 ms at the median.
//
// So a node's Writes queue here, and one goroutine at a time (run) takes every write
// queued and commits them in ONE transaction, as Pebble's committer groups writes into
// one batch: while it runs, the next writes queue and form the next group. The
// transaction:
//
//  1. begins and locks the revision row (BEGIN; SELECT head … FOR UPDATE) in the
//     same round trip as the first writes' reads;
//  2. runs the writes in turn at head+1, head+2, …: each write's reads (schema
//     revision, preconditions, live versions), then its statements. Writes whose
//     reads do not depend on the statements of the writes before them in the group
//     (no tuple in common, no precondition matching their tuples: nextWave) form a
//     wave whose reads go in one round trip, with the previous wave's statements. A
//     write refused by its schema check, a precondition or CREATE of a live tuple
//     has queued nothing: it fails alone and takes no revision, so the revisions
//     stay dense;
//  3. sets the head to the last revision, records every revision's commit time in
//     order and NOTIFYs, then commits (one WAL flush for the group).
//
// Exactness is that of one write per transaction: the writes of a group run one
// after another under the lock, and READ COMMITTED gives each statement a snapshot
// that holds every committed write and the transaction's own earlier statements, so
// write i's reads see exactly the state at its revision − 1, the writes of the group
// before it included (a precondition on a tuple the previous write created holds; a
// second CREATE of it fails). The group's revisions become visible together, at its
// commit, with the head at the last: no reader or Watch sees a revision before every
// smaller one committed. An error other than a refusal (a statement error, a lost
// connection, the group's deadline) rolls the whole group back before anything
// committed, and each of its writes is then run alone, as it would have been without
// grouping; a COMMIT whose outcome is unknown is reported to every write of the
// group as tuples.ErrWriteOutcomeUnknown.
//
// Contexts: a group of one write runs under that write's context, as before. A
// larger group runs without the writes' cancellation (one caller going away must not
// fail the others) but with the earliest of their deadlines, so that no write waits
// past its deadline; a write whose context ended while it was queued is not run.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relata/relata/tuples"
)

// Bounds of one group: at most maxGroupWrites writes and, unless one write has more
// on its own, maxGroupUpdates updates.
const (
	maxGroupWrites  = 256
	maxGroupUpdates = 4000
)

// writeGroups queues a node's Writes and commits them in groups.
type writeGroups struct {
	mu      sync.Mutex
	queue   []*pendingWrite
	running bool // a goroutine is committing groups
}

// pendingWrite is one queued Write and, once done is closed, its outcome.
type pendingWrite struct {
	ctx  context.Context
	op   *writeOp
	done chan struct{}

	rev tuples.Revision
	err error
	w   written
}

// write queues op and waits for its outcome.
func (g *writeGroups) write(ctx context.Context, s *Store, op *writeOp) (tuples.Revision, error) {
	p := &pendingWrite{ctx: ctx, op: op, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go g.run(s)
	}
	<-p.done
	return p.rev, p.err
}

// queued returns how many writes wait for a group.
func (g *writeGroups) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// run commits groups until the queue is empty.
func (g *writeGroups) run(s *Store) {
	for {
		g.mu.Lock()
		n, updates := 0, 0
		for n < len(g.queue) && n < maxGroupWrites {
			u := len(g.queue[n].op.req.Updates)
			if n > 0 && updates+u > maxGroupUpdates {
				break
			}
			updates += u
			n++
		}
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		group := g.queue[:n:n]
		g.queue = append([]*pendingWrite(nil), g.queue[n:]...)
		g.mu.Unlock()
		s.commitGroup(group)
	}
}

// commitGroup commits the writes of ms in one transaction and tells each its
// outcome.
func (s *Store) commitGroup(ms []*pendingWrite) {
	var live []*pendingWrite
	for _, m := range ms {
		if err := m.ctx.Err(); err != nil {
			m.rev, m.err = 0, fmt.Errorf("write: %w", err)
			close(m.done)
			continue
		}
		live = append(live, m)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := groupContext(live)
	err := s.runWriteGroup(ctx, live)
	cancel()
	if err != nil {
		// Nothing committed. One write fails with the error, as it would have alone;
		// the writes of a larger group are run again each on its own.
		if len(live) == 1 {
			live[0].rev, live[0].err = 0, err
		} else {
			for _, m := range live {
				m.rev, m.err = s.writeAlone(m.ctx, m.op)
			}
		}
	}
	for _, m := range live {
		close(m.done)
	}
}

// groupContext returns the context a group runs under (see the top of the file).
func groupContext(ms []*pendingWrite) (context.Context, context.CancelFunc) {
	if len(ms) == 1 {
		return ms[0].ctx, func() {}
	}
	ctx := context.WithoutCancel(ms[0].ctx)
	var earliest time.Time
	for _, m := range ms {
		if d, ok := m.ctx.Deadline(); ok && (earliest.IsZero() || d.Before(earliest)) {
			earliest = d
		}
	}
	if earliest.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, earliest)
}

// runWriteGroup runs the writes of ms in one transaction (see the top of the file) and
// sets each one's outcome. It returns an error only when nothing committed and the
// outcomes are not set.
func (s *Store) runWriteGroup(ctx context.Context, ms []*pendingWrite) error {
	s.queries.add("write")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.classify(ctx, "begin", err)
	}
	defer func() {
		// Not committed: roll back (a connection left in a transaction is closed by
		// Release).
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "rollback")
		}
		conn.Release()
	}()
	var head int64
	b := &pgx.Batch{}
	// BEGIN travels with the lock and the first wave's reads: one round trip.
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue("SELECT head FROM relata_revision WHERE id = 1 FOR UPDATE").QueryRow(func(row pgx.Row) error {
		return row.Scan(&head)
	})
	var n int64 // revisions taken
	for i := 0; i < len(ms); {
		wave := nextWave(ms[i:])
		for _, m := range wave {
			m.op.queueReads(b)
		}
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return s.classify(ctx, "write", err)
		}
		b = &pgx.Batch{}
		for _, m := range wave {
			m.w = written{}
			rev := tuples.Revision(head + n + 1)
			if _, err := m.op.apply(b, rev, &m.w); err != nil {
				if !domainError(err) {
					return s.classify(ctx, "write", err)
				}
				m.rev, m.err = 0, err
				continue
			}
			m.rev, m.err = rev, nil
			n++
		}
		i += len(wave)
	}
	if n == 0 {
		return nil // every write was refused: nothing to commit
	}
	last := head + n
	// The commit times are taken with the revision row locked and in revision order,
	// so they grow with revisions (expirations are judged against them; attrs.go).
	b.Queue("UPDATE relata_revision SET head = $1 WHERE id = 1", last)
	b.Queue("INSERT INTO relata_commit (rev, committed_at) SELECT r, clock_timestamp() FROM generate_series($1::bigint, $2::bigint) AS r", head+1, last)
	b.Queue("SELECT pg_notify('"+notifyChannel+"', $1)", strconv.FormatInt(last, 10))
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return s.classify(ctx, "write", err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	for _, m := range ms {
		if m.err == nil {
			s.follow.commit(m.rev)
		}
	}
	tag, err := conn.Exec(cctx, "commit")
	if err == nil && tag.String() == "ROLLBACK" {
		err = &pgconn.PgError{Severity: "ERROR", Code: "25P02", Message: "the transaction was aborted: COMMIT rolled back"}
	}
	if err != nil {
		err = commitError(cctx, err)
		for _, m := range ms {
			if m.err == nil {
				s.follow.failed(m.rev)
				m.rev, m.err = 0, err
			}
		}
		return nil
	}
	s.observeHead(tuples.Revision(last))
	for _, m := range ms {
		if m.err == nil {
			s.follow.committed(m.rev, &m.w)
		}
	}
	return nil
}

// nextWave returns the longest prefix of ms (at least one write) whose reads do not
// depend on each other's statements, so that they can be sent together: no write of
// it writes a tuple an earlier one writes, or has a precondition that a tuple an
// earlier one writes matches (by key, whatever its caveat or expiration: a superset).
// A wave's writes then read, all at once, exactly what each would read after the
// earlier ones' statements ran.
func nextWave(ms []*pendingWrite) []*pendingWrite {
	keys := map[tuples.Tuple]bool{}
	var ts []tuples.Tuple
	n := 0
	for ; n < len(ms); n++ {
		req := ms[n].op.req
		if n > 0 && !independent(req, keys, ts) {
			break
		}
		for _, u := range req.Updates {
			keys[u.Tuple.Key()] = true
			ts = append(ts, u.Tuple)
		}
	}
	return ms[:n]
}

// independent reports whether req reads nothing that writes of the tuples ts (whose
// keys are keys) change: none of its tuples, and nothing its preconditions match.
func independent(req tuples.WriteRequest, keys map[tuples.Tuple]bool, ts []tuples.Tuple) bool {
	for _, u := range req.Updates {
		if keys[u.Tuple.Key()] {
			return false
		}
	}
	for _, p := range req.Preconditions {
		f := p.Filter
		f.FormOnly, f.NoWildcard = false, false
		for _, t := range ts {
			if f.Matches(t) {
				return false
			}
		}
	}
	return true
}
