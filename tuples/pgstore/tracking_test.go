package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// syncBuffer is a log sink safe for the store's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// listeners counts the connections in LISTEN on the database of s, other than none.
func listeners(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+notifyChannel+`'`).Scan(&n))
	return n
}

// TestNoCrossNodeTracking: with tracking off a node alone on its database keeps its
// caches exact from its own commits (recorded in revision order even when they
// return out of order) and reads no change log; another node's write stops its
// caches for good (no answer after it is vouched for) and is logged; and Open
// refuses tracking off while another node follows the database.
func TestNoCrossNodeTracking(t *testing.T) {
	ctx := context.Background()
	logs := &syncBuffer{}
	off, url := openTest(t, &Options{GCInterval: -1, MaxConns: 4, PollInterval: 10 * time.Millisecond,
		NoCrossNodeTracking: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.Zero(t, listeners(t, off), "no LISTEN with tracking off")

	r0 := tuplestest.Write(t, off, tuples.OpTouch, "doc:seed#viewer@user:a")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				if _, err := off.Write(ctx, tuples.WriteRequest{Updates: tuplestest.Updates(t, tuples.OpCreate, fmt.Sprintf("doc:w%d#viewer@user:u%d", w, i))}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	head, err := off.HeadRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, r0+20, head)
	require.Equal(t, uint64(head), off.follow.known.Load(), "every local commit recorded")
	tr := tuplestest.Reader(t, off, head).(tuples.ScopeTracker)
	require.True(t, tr.UnchangedSince(tr.ForwardScope(tuples.ObjectRef{Type: "doc", ID: "seed"}, "viewer"), r0))
	for w := range 4 {
		require.False(t, tr.UnchangedSince(tr.ForwardScope(tuples.ObjectRef{Type: "doc", ID: fmt.Sprintf("w%d", w)}, "viewer"), r0))
	}
	require.Zero(t, off.queries["changes"].Load(), "no change-log reads with tracking off")

	// Commits that return out of order are recorded in order.
	k := tuples.Revision(off.follow.known.Load())
	later := &written{tuples: []tuples.Tuple{tuplestest.T(t, "doc:late#viewer@user:x")}}
	off.follow.committed(k+2, later)
	require.Equal(t, uint64(k), off.follow.known.Load(), "k+2 waits for k+1")
	off.follow.committed(k+1, &written{})
	require.Equal(t, uint64(k+2), off.follow.known.Load())
	require.Equal(t, uint64(k+2), off.follow.written[forwardBucket(tuples.ObjectRef{Type: "doc", ID: "late"}, "viewer")].Load())

	// Another node (tracking on: a node with it off is not visible to the guard) writes.
	require.NoError(t, off.Close())
	off = openURL(t, url, &Options{GCInterval: -1, MaxConns: 4, PollInterval: 10 * time.Millisecond,
		NoCrossNodeTracking: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	base := tuplestest.Write(t, off, tuples.OpTouch, "doc:seed2#viewer@user:a")
	on := openURL(t, url, nil)
	foreign := tuplestest.Write(t, on, tuples.OpTouch, "doc:foreign#viewer@user:b")
	mine := tuplestest.Write(t, off, tuples.OpTouch, "doc:mine#viewer@user:c")
	require.Greater(t, mine, foreign)
	tr = tuplestest.Reader(t, off, mine).(tuples.ScopeTracker)
	require.False(t, tr.UnchangedSince(tr.ForwardScope(tuples.ObjectRef{Type: "doc", ID: "foreign"}, "viewer"), base),
		"the other node's write is never vouched for")
	require.False(t, tr.UnchangedSince(tr.ForwardScope(tuples.ObjectRef{Type: "doc", ID: "seed2"}, "viewer"), base),
		"nothing after a revision this node did not record")
	require.Less(t, off.follow.known.Load(), uint64(foreign))
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(logs.String()), []byte(fmt.Sprintf("revision %d was not written by this node", foreign)))
	}, time.Minute, 10*time.Millisecond, "the stall is logged")
	// Watch still sees the other node's write (the poll reads the head).
	got, err := off.WaitForRevision(ctx, foreign-1)
	require.NoError(t, err)
	require.GreaterOrEqual(t, got, foreign)

	// With a node following the database, tracking off is refused.
	require.Eventually(t, func() bool { return listeners(t, on) > 0 }, time.Minute, 10*time.Millisecond)
	_, err = Open(ctx, url, &Options{GCInterval: -1, NoCrossNodeTracking: true})
	require.ErrorIs(t, err, ErrOtherNodes)
	require.ErrorContains(t, err, "measurement only")
}

// TestFollowerRecordsOwnCommits: a node records its own commits (writes and imports)
// from memory and never reads them back from the change log, even though each one's
// notification can wake its follower before the commit returns; another node's
// commits it reads from the log, and learns of them.
func TestFollowerRecordsOwnCommits(t *testing.T) {
	ctx := context.Background()
	a, url := openTest(t, &Options{GCInterval: -1})
	b := openURL(t, url, &Options{GCInterval: -1})
	knows := func(s *Store, rev tuples.Revision) func() bool {
		return func() bool { return tuples.Revision(s.follow.known.Load()) >= rev }
	}
	before := a.queries["changes"].Load()
	var rev tuples.Revision
	for i := range 10 {
		rev = tuplestest.Write(t, a, tuples.OpTouch, fmt.Sprintf("doc:w%d#viewer@user:a", i))
		var err error
		rev, err = a.Import(ctx, []tuples.Tuple{
			tuplestest.T(t, fmt.Sprintf("doc:i%d#viewer@user:a", i)),
			tuplestest.T(t, fmt.Sprintf("doc:i%d#viewer@user:b", i)),
		}, 0)
		require.NoError(t, err)
	}
	// Concurrent writes, committed in groups.
	var wg sync.WaitGroup
	revs := make([]tuples.Revision, 16)
	for i := range revs {
		wg.Go(func() { revs[i] = tuplestest.Write(t, a, tuples.OpTouch, fmt.Sprintf("doc:g%d#viewer@user:a", i)) })
	}
	wg.Wait()
	rev = slices.Max(revs)
	require.Equal(t, rev, tuples.Revision(a.follow.known.Load()), "own commits recorded as they return")
	require.Equal(t, before, a.queries["changes"].Load(), "own commits are not read back from the log")

	other := tuplestest.Write(t, b, tuples.OpTouch, "doc:b#viewer@user:b")
	require.Eventually(t, knows(a, other), time.Minute, 5*time.Millisecond)
	require.Greater(t, a.queries["changes"].Load(), before, "another node's commit is read from the log")
	require.False(t, a.follow.unchangedSince(forwardBucket(tuples.ObjectRef{Type: "doc", ID: "b"}, "viewer"), rev, other),
		"and its scope is marked written")

	// Own commits after it still need no read.
	reads := a.queries["changes"].Load()
	mine := tuplestest.Write(t, a, tuples.OpTouch, "doc:after#viewer@user:a")
	require.Eventually(t, knows(a, mine), time.Minute, 5*time.Millisecond)
	require.Equal(t, reads, a.queries["changes"].Load())
}
