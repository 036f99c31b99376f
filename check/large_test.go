package check

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// TestCheckRemembersLargeRelations checks that a stored relation thisSmall found
// larger than smallRelation is not read whole again by later checks (they take the
// general path at once, one read fewer), with the answers of the general path, also
// after the relation shrank below the bound.
func TestCheckRemembersLargeRelations(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	lines := []string{"role:r1#member@user:inrole", "tenant:t1#viewer@role:r1#member"}
	for i := range smallRelation + 2 {
		lines = append(lines, fmt.Sprintf("tenant:t1#viewer@user:v%d", i))
	}
	r0 := st.load(t, peerSchema(), mustTuples(t, lines...))
	users := []struct {
		id   string
		want bool
	}{{"v0", true}, {"inrole", true}, {"nobody", false}, {fmt.Sprintf("v%d", smallRelation+1), true}}
	check := func(e *Engine, r tuples.Reader, user string) bool {
		t.Helper()
		res, err := e.Check(ctx, r, CheckRequest{Object: tuples.ObjectRef{Type: "tenant", ID: "t1"}, Permission: "viewer",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: user}}})
		require.NoError(t, err)
		return res.Allowed
	}
	var n atomic.Int64
	r := readCounter{Reader: r0, n: &n}
	e := New(Options{CacheBytes: -1, Concurrency: 1})
	general := New(Options{CacheBytes: -1, Concurrency: 1})
	general.smallRelation = 0
	for i, u := range users {
		n.Store(0)
		require.Equal(t, u.want, check(e, r, u.id), u.id)
		first := n.Load()
		n.Store(0)
		require.Equal(t, u.want, check(general, r, u.id), u.id)
		if i == 0 {
			require.Equal(t, n.Load()+1, first, "the first check reads the relation's first tuples, then falls back")
		} else {
			require.Equal(t, n.Load(), first, "%s: a later check takes the general path at once", u.id)
		}
	}
	require.True(t, e.large.has(tuples.ObjectRef{Type: "tenant", ID: "t1"}, "viewer"))

	// The relation shrinks below the bound: the stale hint keeps the general path,
	// whose answers are the same.
	var dels []tuples.Update
	for i := 1; i < smallRelation+2; i++ {
		dels = append(dels, tuples.Update{Op: tuples.OpDelete, Tuple: mustTuples(t, fmt.Sprintf("tenant:t1#viewer@user:v%d", i))[0]})
	}
	rev, err := st.Write(ctx, tuples.WriteRequest{Updates: dels})
	require.NoError(t, err)
	r1, err := st.ReaderAt(ctx, rev)
	require.NoError(t, err)
	for _, u := range []struct {
		id   string
		want bool
	}{{"v0", true}, {"v1", false}, {"inrole", true}, {"nobody", false}} {
		require.Equal(t, u.want, check(e, r1, u.id), u.id)
		require.Equal(t, u.want, check(general, r1, u.id), u.id)
	}
}
