package check

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

var closureCases = flag.Int("closure-cases", 40, "random schemas the nested-set index property test tries")

// answer is what one Check or LookupResources gave: the result, or the error text.
func checkAnswer(ctx context.Context, e *Engine, r tuples.Reader, obj tuples.ObjectRef, p string, subj tuples.SubjectRef) string {
	res, err := e.Check(ctx, r, CheckRequest{Object: obj, Permission: p, Subject: subj})
	if err != nil {
		return errClass(err)
	}
	return fmt.Sprint(res.Allowed)
}

func lookupAnswer(ctx context.Context, e *Engine, r tuples.Reader, typ, p string, subj tuples.SubjectRef) string {
	got, errc := lookupIDs(ctx, e, r, typ, p, subj)
	if errc != "" {
		return errc
	}
	return fmt.Sprint(got)
}

// errClass is the kind of a check's error: the path a depth error names depends on
// the order concurrent branches ran in.
func errClass(err error) string {
	if errors.Is(err, ErrMaxDepth) {
		return "error: max depth exceeded"
	}
	return "error: " + err.Error()
}

// TestClosureAgreesWithWalk checks the nested-set index against the walk over random
// schemas (nested relations and arrows over their own type, cycles among tuples) with
// random tuples written and deleted over several revisions: Check and LookupResources
// with the index give exactly what they give without it, at every revision the test
// wrote (older ones included, some of them pruned from the index's history), under a
// small depth limit too (so that depth errors and the index's fallback are exercised).
func TestClosureAgreesWithWalk(t *testing.T) {
	compiled, indexed := 0, 0
	var used int64
	seeds := closureRegressionSeeds
	for i := 0; i < *closureCases; i++ {
		if !slices.Contains(seeds, i) {
			seeds = append(seeds, i)
		}
	}
	for _, i := range seeds {
		ok, idx, n := closureCase(t, i)
		if i >= *closureCases {
			continue // a fixed regression case: not counted in the statistics
		}
		if ok {
			compiled++
		}
		if idx {
			indexed++
		}
		used += n
	}
	require.Greater(t, compiled, *closureCases/4, "too few random schemas compiled")
	require.Greater(t, indexed, compiled/4, "too few random schemas have nested sets")
	require.Positive(t, used, "no walk used the index")
	t.Logf("%d of %d random schemas compiled, %d with nested sets; %d walks used the index", compiled, *closureCases, indexed, used)
}

// closureRegressionSeeds are seeds of TestClosureAgreesWithWalk that once failed; the
// test runs them whatever -closure-cases says.
var closureRegressionSeeds = []int{65}

// closureCase runs TestClosureAgreesWithWalk's case i: it reports whether the random
// schema compiled, whether it has nested sets, and how many walks used the index.
func closureCase(t *testing.T, i int) (compiled, indexed bool, used int64) {
	t.Helper()
	ctx := context.Background()
	{
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 99))
		s := randomSchema(rng)
		if _, err := schema.Compile("random", s.Text()); err != nil {
			return false, false, 0
		}
		compiled = true
		st := openStore(t)
		srev, err := st.WriteSchema(ctx, s.Text(), nil)
		require.NoError(t, err)
		maxDepth := 50
		if i%3 == 2 {
			maxDepth = 2 + rng.IntN(3)
		}
		cacheBytes := int64(-1)
		if i%2 == 1 {
			cacheBytes = 0 // the default cache: the recorded scopes must keep it exact
		}
		conc := 1 + rng.IntN(3)
		withIdx := New(Options{MaxDepth: maxDepth, CacheBytes: cacheBytes, Concurrency: conc})
		plain := New(Options{MaxDepth: maxDepth, CacheBytes: -1, Concurrency: conc})
		fl := &follower{e: withIdx, src: st, history: 90 * time.Second}
		now := time.Unix(1_000_000, 0)
		require.NoError(t, fl.step(ctx, now))

		var live []tuples.Tuple
		revs := []tuples.Revision{srev}
		for w := 0; w < 6; w++ {
			var ups []tuples.Update
			for _, tp := range randomTuples(rng, s, 2+rng.IntN(8)) {
				ups = append(ups, tuples.Update{Op: tuples.OpTouch, Tuple: tp})
			}
			for n := rng.IntN(4); n > 0 && len(live) > 0; n-- {
				ups = append(ups, tuples.Update{Op: tuples.OpDelete, Tuple: live[rng.IntN(len(live))]})
			}
			seen := map[tuples.Tuple]bool{}
			ups = slices.DeleteFunc(ups, func(u tuples.Update) bool {
				dup := seen[u.Tuple]
				seen[u.Tuple] = true
				return dup
			})
			rev, err := st.Write(ctx, tuples.WriteRequest{Updates: ups})
			require.NoError(t, err)
			for _, u := range ups {
				live = slices.DeleteFunc(live, func(x tuples.Tuple) bool { return x == u.Tuple })
				if u.Op == tuples.OpTouch {
					live = append(live, u.Tuple)
				}
			}
			revs = append(revs, rev)
			if rng.IntN(3) > 0 { // sometimes the index lags: those reads must walk
				now = now.Add(time.Minute)
				require.NoError(t, fl.step(ctx, now))
			}
		}
		indexed = withIdx.ClosureStats().Sets > 0
		msg := fmt.Sprintf("seed %d max depth %d\nschema:\n%s", seed, maxDepth, s.Text())

		subjects := []tuples.SubjectRef{{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}}}
		for _, u := range propUsers[:3] {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}})
		}
		for _, typ := range propTypes {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: typ, ID: propIDs[rng.IntN(3)]}, Relation: "r1"})
		}
		for _, rev := range revs {
			r, err := st.ReaderAt(ctx, rev)
			require.NoError(t, err)
			m := fmt.Sprintf("%s\nat revision %d (index base %d applied %d)", msg, rev, fl.ix.base, fl.ix.applied)
			for _, typ := range propTypes {
				for _, p := range append(slices.Clone(propRels), propPerms...) {
					for _, subj := range subjects {
						want := lookupAnswer(ctx, plain, r, typ, p, subj)
						require.Equal(t, want, lookupAnswer(ctx, withIdx, r, typ, p, subj), "LookupResources(%s, %s, %s)\n%s", typ, p, subj, m)
						for _, id := range propIDs[:3] {
							obj := tuples.ObjectRef{Type: typ, ID: id}
							want := checkAnswer(ctx, plain, r, obj, p, subj)
							require.Equal(t, want, checkAnswer(ctx, withIdx, r, obj, p, subj), "Check(%s#%s@%s)\n%s", obj, p, subj, m)
						}
					}
				}
			}
		}
		used = withIdx.closureWalks.Load()
	}
	return compiled, indexed, used
}

// TestClosureNestedRoles follows a store with roles nested in a cycle and in a chain
// through writes and deletes, and checks the closure the index holds at each revision
// and what it costs.
func TestClosureNestedRoles(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	s := mkSchema(def("user"), def("role", rel("member", "user", "role#member")))
	_, err := st.WriteSchema(ctx, s.Text(), nil)
	require.NoError(t, err)
	e := New(Options{CacheBytes: -1})
	fl := &follower{e: e, src: st}
	write := func(op tuples.Operation, lines ...string) tuples.Revision {
		var ups []tuples.Update
		for _, tp := range mustTuples(t, lines...) {
			ups = append(ups, tuples.Update{Op: op, Tuple: tp})
		}
		rev, err := st.Write(ctx, tuples.WriteRequest{Updates: ups})
		require.NoError(t, err)
		require.NoError(t, fl.step(ctx, time.Now()))
		return rev
	}
	closure := func(rev tuples.Revision, x string) map[string]int {
		got := map[string]int{}
		require.True(t, fl.ix.ancestors(relKey{"role", "member"}, x, rev, func(id string, d int) { got[id] = d }))
		return got
	}
	r1 := write(tuples.OpTouch, "role:a#member@user:u", "role:b#member@role:a#member", "role:c#member@role:b#member")
	r2 := write(tuples.OpTouch, "role:a#member@role:c#member") // a cycle a→b→c→a
	r3 := write(tuples.OpDelete, "role:b#member@role:a#member")
	require.Equal(t, map[string]int{"b": 1, "c": 2}, closure(r1, "a"))
	require.Equal(t, map[string]int{"b": 1, "c": 2}, closure(r2, "a"))
	require.Equal(t, map[string]int{"a": 1, "b": 2}, closure(r2, "c"))
	require.Equal(t, map[string]int{}, closure(r3, "a"))
	require.Equal(t, map[string]int{"a": 1}, closure(r3, "c"))
	require.Equal(t, map[string]int{"c": 1, "a": 2}, closure(r3, "b"))
	st3 := e.ClosureStats()
	require.Equal(t, int64(1+1), st3.EdgeChanges) // the build at r1 is not a change
	require.Equal(t, 3, st3.Live)
	for rev, want := range map[tuples.Revision]bool{r1: false, r2: true, r3: false} {
		r, err := st.ReaderAt(ctx, rev)
		require.NoError(t, err)
		res, err := e.Check(ctx, r, CheckRequest{Object: tuples.ObjectRef{Type: "role", ID: "b"}, Permission: "member",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "role", ID: "c"}, Relation: "member"}})
		require.NoError(t, err)
		require.Equal(t, want, res.Allowed, "role:b#member@role:c#member at %d", rev)
	}
	require.Positive(t, e.closureWalks.Load())

	// Pruned history: reads before the kept revision are not the index's any more.
	fl.history = time.Minute
	require.NoError(t, fl.step(ctx, time.Now().Add(2*time.Minute)))
	require.False(t, fl.ix.ancestors(relKey{"role", "member"}, "a", r2, func(string, int) {}))
	require.Equal(t, map[string]int{"c": 1, "a": 2}, closure(r3, "b"))
	require.Equal(t, 3, e.ClosureStats().Entries, "the history before r3 is dropped")
}

// TestClosureDepthLimit: a chain of nested roles longer than the depth limit is the
// same depth error with the index as without it (the index falls back to the walk),
// and within the limit the index answers.
func TestClosureDepthLimit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	s := mkSchema(def("user"), def("role", rel("member", "user", "role#member")),
		def("doc", rel("viewer", "role#member"), perm("view", cu("viewer"))))
	_, err := st.WriteSchema(ctx, s.Text(), nil)
	require.NoError(t, err)
	lines := []string{"role:r0#member@user:u", "doc:d#viewer@role:r6#member"}
	for i := 1; i <= 6; i++ {
		lines = append(lines, fmt.Sprintf("role:r%d#member@role:r%d#member", i, i-1))
	}
	var ups []tuples.Update
	for _, tp := range mustTuples(t, lines...) {
		ups = append(ups, tuples.Update{Op: tuples.OpTouch, Tuple: tp})
	}
	rev, err := st.Write(ctx, tuples.WriteRequest{Updates: ups})
	require.NoError(t, err)
	r, err := st.ReaderAt(ctx, rev)
	require.NoError(t, err)
	u := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "u"}}
	for _, limit := range []int{3, 6, 7, 8, 20} {
		withIdx := New(Options{MaxDepth: limit, CacheBytes: -1, Concurrency: 1})
		plain := New(Options{MaxDepth: limit, CacheBytes: -1, Concurrency: 1})
		fl := &follower{e: withIdx, src: st}
		require.NoError(t, fl.step(ctx, time.Now()))
		for _, q := range []struct {
			obj tuples.ObjectRef
			p   string
		}{{tuples.ObjectRef{Type: "doc", ID: "d"}, "view"}, {tuples.ObjectRef{Type: "role", ID: "r6"}, "member"}, {tuples.ObjectRef{Type: "role", ID: "r3"}, "member"}} {
			want, err := plain.Check(ctx, r, CheckRequest{Object: q.obj, Permission: q.p, Subject: u})
			got, err2 := withIdx.Check(ctx, r, CheckRequest{Object: q.obj, Permission: q.p, Subject: u})
			require.Equal(t, fmt.Sprint(want.Allowed, err), fmt.Sprint(got.Allowed, err2), "Check(%s#%s) with limit %d", q.obj, q.p, limit)
			require.Equal(t, lookupAnswer(ctx, plain, r, q.obj.Type, q.p, u), lookupAnswer(ctx, withIdx, r, q.obj.Type, q.p, u), "LookupResources(%s#%s) with limit %d", q.obj.Type, q.p, limit)
		}
		if limit == 20 {
			require.Positive(t, withIdx.closureWalks.Load())
		}
	}
}
