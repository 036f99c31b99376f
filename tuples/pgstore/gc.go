package pgstore

// Garbage collection: one node at a time (advisory lock gcLock), horizon first, then
// deletions in bounded batches (see the package comment for why readers stay exact).
// The deletions touch only versions that ended at or before the horizon, change-log
// rows and commit times: rows no writer locks, so GC never blocks writers, and each
// batch is its own short transaction.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/relata/relata/tuples"
)

// gcBatch bounds the rows one GC statement deletes; gcChangeBatches the
// relata_change_batch rows (an import's change log each).
const (
	gcBatch         = 5000
	gcChangeBatches = 4
)

// CollectGarbage makes revisions older than horizon (capped at the head) unreadable,
// deletes what only they could see, and returns the resulting horizon, which never
// moves back. It waits for another node's GC to finish first.
func (s *Store) CollectGarbage(ctx context.Context, horizon tuples.Revision) (tuples.Revision, error) {
	return s.collect(ctx, horizon, true)
}

// collect runs GC under the advisory lock; with wait false it returns the current
// horizon at once when another node holds the lock.
func (s *Store) collect(ctx context.Context, target tuples.Revision, wait bool) (tuples.Revision, error) {
	if s.closed.Load() {
		return 0, tuples.ErrClosed
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.classify(ctx, "gc", err)
	}
	defer conn.Release()
	if wait {
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", gcLock); err != nil {
			return 0, s.classify(ctx, "gc lock", err)
		}
	} else {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", gcLock).Scan(&got); err != nil {
			return 0, s.classify(ctx, "gc lock", err)
		}
		if !got {
			return s.Horizon(), nil
		}
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", gcLock); err != nil {
			conn.Conn().PgConn().Close(context.Background()) //nolint:errcheck // dropping the session drops its lock
		}
	}()
	var h int64
	err = conn.QueryRow(ctx, `UPDATE relata_horizon SET horizon = greatest(horizon, least($1::bigint, (SELECT head FROM relata_revision WHERE id = 1)))
		WHERE id = 1 RETURNING horizon`, int64(min(target, 1<<62))).Scan(&h)
	if err != nil {
		return 0, s.classify(ctx, "gc horizon", err)
	}
	s.observeHorizon(tuples.Revision(h))
	for _, q := range []struct {
		sql   string
		limit int64
	}{
		{`DELETE FROM relata_tuple WHERE (` + tupleCols + `, deleted_rev) IN (
			SELECT ` + tupleCols + `, deleted_rev FROM relata_tuple WHERE deleted_rev <= $1 LIMIT ` + strconv.Itoa(gcBatch) + `)`, gcBatch},
		// Versions lapsed by the horizon's commit time: invisible at every readable
		// revision (however long after their write they lapsed).
		{`DELETE FROM relata_tuple WHERE (` + tupleCols + `, deleted_rev) IN (
			SELECT ` + tupleCols + `, deleted_rev FROM relata_tuple WHERE expires_at IS NOT NULL AND NOT ` + visibleAt("$1") + ` LIMIT ` + strconv.Itoa(gcBatch) + `)`, gcBatch},
		{`DELETE FROM relata_change WHERE (rev, seq) IN (
			SELECT rev, seq FROM relata_change WHERE rev <= $1 ORDER BY rev, seq LIMIT ` + strconv.Itoa(gcBatch) + `)`, gcBatch},
		// An import's change log (migration 0004): a few at a time, each is up to
		// thousands of out-of-line chunks.
		{`DELETE FROM relata_change_batch WHERE rev IN (
			SELECT rev FROM relata_change_batch WHERE rev <= $1 ORDER BY rev LIMIT ` + strconv.Itoa(gcChangeBatches) + `)`, gcChangeBatches},
		{`DELETE FROM relata_commit WHERE rev IN (
			SELECT rev FROM relata_commit WHERE rev < $1 ORDER BY rev LIMIT ` + strconv.Itoa(gcBatch) + `)`, gcBatch},
	} {
		for {
			tag, err := conn.Exec(ctx, q.sql, h)
			if err != nil {
				return 0, s.classify(ctx, "gc", err)
			}
			if tag.RowsAffected() < q.limit {
				break
			}
		}
	}
	return tuples.Revision(h), nil
}

// gcLoop tries to collect every GCInterval, up to the newest revision committed at
// least GCWindow ago by the database's clock (so nodes' clocks do not matter).
func (s *Store) gcLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.closing
		cancel()
	}()
	ticker := time.NewTicker(s.opts.GCInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		var h int64
		err := s.pool.QueryRow(ctx, "SELECT coalesce(max(rev), 0) FROM relata_commit WHERE committed_at <= now() - $1::interval",
			fmt.Sprintf("%d microseconds", s.opts.GCWindow.Microseconds())).Scan(&h)
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.Warn("pgstore: gc horizon", "err", classify(ctx, "gc", err))
			}
			continue
		}
		if tuples.Revision(h) <= s.Horizon() {
			continue
		}
		got, err := s.collect(ctx, tuples.Revision(h), false)
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.Warn("pgstore: gc", "err", err)
			}
			continue
		}
		s.opts.Logger.Debug("pgstore: gc", "horizon", got)
	}
}
