package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestWritesCommitTogether: writes that queue while a write transaction holds the
// revision row commit in ONE transaction, each at its own revision in queue order,
// each judged on the state the writes before it left: a CREATE of a tuple an earlier
// write of the group created fails, a precondition on it holds, and a refused write
// takes no revision.
func TestWritesCommitTogether(t *testing.T) {
	s, url := openTest(t, nil)
	ctx := context.Background()
	start := tuplestest.Write(t, s, tuples.OpTouch, "doc:0#viewer@user:z")

	// Another session holds the revision row, so the first write waits on it and the
	// next ones queue behind it.
	blocker, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SELECT head FROM relata_revision WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)

	type result struct {
		rev tuples.Revision
		err error
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		require.Eventually(t, cond, 30*time.Second, time.Millisecond, what)
	}
	txBefore := s.queries["write"].Load()
	var results []chan result
	submit := func(req tuples.WriteRequest) {
		ch := make(chan result, 1)
		results = append(results, ch)
		go func() {
			rev, err := s.Write(ctx, req)
			ch <- result{rev, err}
		}()
	}
	updates := func(op tuples.Operation, text string) []tuples.Update {
		return tuplestest.Updates(t, op, text)
	}
	// The first write: its group (of one) waits for the row.
	submit(tuples.WriteRequest{Updates: updates(tuples.OpTouch, "doc:first#viewer@user:a")})
	waitFor("the first write to leave the queue", func() bool {
		s.group.mu.Lock()
		defer s.group.mu.Unlock()
		return s.group.running && len(s.group.queue) == 0
	})
	x := tuples.Filter{ObjectType: "doc", ObjectID: "1"}
	queued := []tuples.WriteRequest{
		{Updates: updates(tuples.OpCreate, "doc:1#viewer@user:x")},
		{Updates: updates(tuples.OpCreate, "doc:1#viewer@user:x")}, // the write before created it
		{Updates: updates(tuples.OpTouch, "doc:2#viewer@user:y"), Preconditions: []tuples.Precondition{{Op: tuples.MustMatch, Filter: x}}},
		{Updates: updates(tuples.OpTouch, "doc:3#viewer@user:y"), Preconditions: []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: tuples.Filter{ObjectType: "doc", ObjectID: "2"}}}},
		{Updates: updates(tuples.OpTouch, "doc:4#viewer@user:y")},
		{Updates: updates(tuples.OpDelete, "doc:0#viewer@user:z")},
		{Updates: updates(tuples.OpTouch, "doc:5#viewer@user:y")},
	}
	for i, req := range queued {
		submit(req)
		waitFor("the write to queue", func() bool { return s.group.queued() == i+1 })
	}
	require.NoError(t, tx.Commit(ctx))

	got := make([]result, len(results))
	for i, ch := range results {
		got[i] = <-ch
	}
	require.Equal(t, uint64(2), s.queries["write"].Load()-txBefore, "the first write's transaction and one for the %d queued writes", len(queued))

	require.NoError(t, got[0].err)
	require.Equal(t, start+1, got[0].rev)
	var aerr *tuples.AlreadyExistsError
	require.ErrorAs(t, got[2].err, &aerr)
	var perr *tuples.PreconditionError
	require.ErrorAs(t, got[4].err, &perr)
	want := start + 1
	for _, i := range []int{1, 3, 5, 6, 7} {
		want++
		require.NoError(t, got[i].err, i)
		require.Equal(t, want, got[i].rev, "write %d: the next revision in queue order", i)
	}
	require.Equal(t, want, head(t, s))

	// Each revision holds exactly its write.
	var log []string
	for c, err := range s.Changes(ctx, start) {
		require.NoError(t, err)
		log = append(log, c.Tuple.String()+"@"+c.Op.String())
		require.Equal(t, got[map[string]int{
			"doc:first#viewer@user:a": 0, "doc:1#viewer@user:x": 1, "doc:2#viewer@user:y": 3,
			"doc:4#viewer@user:y": 5, "doc:0#viewer@user:z": 6, "doc:5#viewer@user:y": 7,
		}[c.Tuple.String()]].rev, c.Revision, c.Tuple.String())
	}
	require.Len(t, log, 6, log)
	r := tuplestest.Reader(t, s, got[3].rev)
	require.True(t, tuplestest.Contains(t, r, "doc:1#viewer@user:x"))
	require.True(t, tuplestest.Contains(t, r, "doc:0#viewer@user:z"))
	require.False(t, tuplestest.Contains(t, r, "doc:3#viewer@user:y"))
	require.False(t, tuplestest.Contains(t, tuplestest.Reader(t, s, got[7].rev), "doc:0#viewer@user:z"))
}

func head(t *testing.T, s *Store) tuples.Revision {
	t.Helper()
	rev, err := s.HeadRevision(context.Background())
	require.NoError(t, err)
	return rev
}
