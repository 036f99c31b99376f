package pgstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestTwoNodesNoGapNoReordering runs concurrent writers on two nodes (two stores, two
// pools) over one database. Every write creates one tuple, so revision R holds exactly
// R tuples. Readers on both nodes check that a read at any head they see holds
// exactly that many tuples (no revision visible before a smaller one), and a follower
// on each node (WaitForRevision + Changes, as Watch does) sees revisions 1, 2, 3, …
// with no gap and never out of order.
func TestTwoNodesNoGapNoReordering(t *testing.T) {
	a, url := openTest(t, nil)
	b := openURL(t, url, nil)
	nodes := []*Store{a, b}
	ctx := context.Background()
	const writersPerNode, each = 3, 25
	const total = 2 * writersPerNode * each

	var wg sync.WaitGroup
	for n, s := range nodes {
		for w := range writersPerNode {
			wg.Go(func() {
				for i := range each {
					_, err := s.Write(ctx, tuples.WriteRequest{Updates: tuplestest.Updates(t, tuples.OpCreate, fmt.Sprintf("doc:n%dw%d#viewer@user:u%d", n, w, i))})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	var readers sync.WaitGroup
	for n, s := range nodes {
		readers.Go(func() { // the Watch pattern: wait, then read the log after the last revision seen
			last := tuples.Revision(0)
			for last < total {
				if _, err := s.WaitForRevision(ctx, last); err != nil {
					t.Error(err)
					return
				}
				for c, err := range s.Changes(ctx, last) {
					if err != nil {
						t.Error(err)
						return
					}
					if c.Revision != last+1 {
						t.Errorf("node %d: change at revision %d after %d", n, c.Revision, last)
						return
					}
					last = c.Revision
				}
			}
		})
		readers.Go(func() { // snapshot reads at every head seen
			for {
				head, err := s.HeadRevision(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				r, err := s.ReaderAt(ctx, head)
				if err != nil {
					t.Error(err)
					return
				}
				got := len(tuplestest.Strings(t, r.Read(ctx, tuples.Filter{}, nil)))
				if got != int(head) {
					t.Errorf("node %d: %d tuples at revision %d", n, got, head)
					return
				}
				if head == total {
					return
				}
			}
		})
	}
	wg.Wait()
	readers.Wait()
	for _, s := range nodes {
		require.Equal(t, tuples.Revision(total), tuplestest.Reader(t, s, total).Revision())
		require.Len(t, tuplestest.Strings(t, tuplestest.Reader(t, s, total).Read(ctx, tuples.Filter{}, nil)), total)
	}
}

// TestCrossNodeScopeTracker: a node never vouches for a scope another node wrote
// until it has read that write from the change log, and then it knows exactly.
func TestCrossNodeScopeTracker(t *testing.T) {
	a, url := openTest(t, nil)
	b := openURL(t, url, nil)
	ctx := context.Background()
	r1 := tuplestest.Write(t, a, tuples.OpTouch, "doc:1#viewer@user:a")
	// b catches up to r1 (the Watch wait is the follower's).
	_, err := b.WaitForRevision(ctx, r1-1)
	require.NoError(t, err)
	doc1 := tuples.ObjectRef{Type: "doc", ID: "1"}
	r2 := tuplestest.Write(t, a, tuples.OpTouch, "doc:1#viewer@user:b")
	rb, err := b.ReaderAt(ctx, r2)
	require.NoError(t, err)
	tr := rb.(tuples.ScopeTracker)
	fwd := tr.ForwardScope(doc1, "viewer")
	require.False(t, tr.UnchangedSince(fwd, r1), "b must not vouch for doc:1#viewer before reading a's write")
	_, err = b.WaitForRevision(ctx, r2-1)
	require.NoError(t, err)
	require.False(t, tr.UnchangedSince(fwd, r1), "a's write changed doc:1#viewer")
	r3 := tuplestest.Write(t, a, tuples.OpTouch, "doc:2#viewer@user:b")
	for b.follow.known.Load() < uint64(r3) {
		_, err = b.WaitForRevision(ctx, tuples.Revision(b.follow.known.Load()))
		require.NoError(t, err)
	}
	rb3, err := b.ReaderAt(ctx, r3)
	require.NoError(t, err)
	require.True(t, rb3.(tuples.ScopeTracker).UnchangedSince(fwd, r2), "doc:2's write leaves doc:1#viewer unchanged")
	// Schema per revision is exact on the other node too.
	s1, err := a.WriteSchema(ctx, []byte("definition doc {}"), nil)
	require.NoError(t, err)
	rs, err := b.ReaderAt(ctx, s1)
	require.NoError(t, err)
	text, rev, err := rs.Schema(ctx)
	require.NoError(t, err)
	require.Equal(t, "definition doc {}", string(text))
	require.Equal(t, s1, rev)
	_, _, err = tuplestest.Reader(t, b, s1-1).Schema(ctx)
	require.ErrorIs(t, err, tuples.ErrNoSchema)
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	s, url := openTest(t, nil)
	require.NoError(t, s.Close())
	from, to, err := Migrate(ctx, url, nil)
	require.NoError(t, err, "migrating twice changes nothing")
	require.Equal(t, SchemaVersion(), from)
	require.Equal(t, SchemaVersion(), to)

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	newer := SchemaVersion() + 1
	_, err = conn.Exec(ctx, "INSERT INTO relata_migration (version, name) VALUES ($1, 'from the future')", newer)
	require.NoError(t, err)
	_, err = Open(ctx, url, nil)
	require.ErrorIs(t, err, ErrNewerDatabase)
	require.ErrorContains(t, err, fmt.Sprintf("schema version %d, this binary knows versions up to %d", newer, SchemaVersion()))
	_, _, err = Migrate(ctx, url, nil)
	require.ErrorIs(t, err, ErrNewerDatabase)
	_, err = conn.Exec(ctx, "DELETE FROM relata_migration")
	require.NoError(t, err)
	_, err = Open(ctx, url, nil)
	require.ErrorIs(t, err, ErrNotMigrated)
	require.ErrorContains(t, err, "relata migrate")
}

func TestPasswordNeverInErrors(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{
		"postgres://relata:s3cret-pw@127.0.0.1:1/relata?sslmode=disable&connect_timeout=1",
		"postgres://relata:s3cret-pw@127.0.0.1:1/relata?sslmode=bogus",
		"postgres://relata@127.0.0.1:1/relata?password=s3cret-pw&sslmode=disable&connect_timeout=1",
		"mysql://relata:s3cret-pw@127.0.0.1/relata",
	} {
		_, err := Open(ctx, url, nil)
		require.Error(t, err, url)
		require.NotContains(t, err.Error(), "s3cret-pw")
		_, _, err = Migrate(ctx, url, nil)
		require.Error(t, err, url)
		require.NotContains(t, err.Error(), "s3cret-pw")
		require.NotContains(t, RedactURL(url), "s3cret-pw")
	}
	_, err := Open(ctx, "postgres://relata:pw@127.0.0.1:1/relata?sslmode=disable&connect_timeout=1", nil)
	require.ErrorIs(t, err, tuples.ErrUnavailable, "a database that cannot be reached is unavailable")
	require.True(t, strings.Contains(RedactURL("postgres://u:pw@h/db"), "xxxxx"))
}
