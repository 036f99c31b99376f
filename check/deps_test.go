package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// TestCacheAcrossRevisions checks, over random schemas, tuples and writes, that an
// engine whose cache lives across revisions answers exactly as a fresh engine without
// a cache, at the head after every write and at older revisions.
func TestCacheAcrossRevisions(t *testing.T) {
	ctx := context.Background()
	compiled, reused := 0, uint64(0)
	for i := 0; i < *propertyCases/2; i++ {
		seed := uint64(1000 + i)
		rng := rand.New(rand.NewPCG(seed, 7))
		s := randomSchema(rng)
		if _, err := schema.Compile("random", s.Text()); err != nil {
			continue
		}
		compiled++
		st := openStore(t)
		r := st.load(t, s, randomTuples(rng, s, 4+rng.IntN(20)))
		live := liveTuples(t, ctx, r)
		long := New(Options{Concurrency: 1 + rng.IntN(4)})
		if i%2 == 1 {
			long.smallRelation = 0
		}
		fresh := New(Options{CacheBytes: -1, Concurrency: 1})
		msg := fmt.Sprintf("seed %d\nschema:\n%s", seed, s.Text())

		subjects := []tuples.SubjectRef{{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}}}
		for _, u := range propUsers {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}})
		}
		for _, typ := range propTypes {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: typ, ID: propIDs[rng.IntN(3)]}, Relation: "r1"})
		}
		names := append(slices.Clone(propRels), propPerms...)
		compare := func(r tuples.Reader, n int) {
			for range n {
				req := CheckRequest{
					Object:     tuples.ObjectRef{Type: propTypes[rng.IntN(len(propTypes))], ID: propIDs[rng.IntN(len(propIDs))]},
					Permission: names[rng.IntN(len(names))],
					Subject:    subjects[rng.IntN(len(subjects))],
				}
				want, err := fresh.Check(ctx, r, req)
				require.NoError(t, err, msg)
				got, err := long.Check(ctx, r, req)
				require.NoError(t, err, msg)
				require.Equal(t, want.Allowed, got.Allowed, "at revision %d: Check(%s#%s@%s)\n%s\ntuples: %v", r.Revision(), req.Object, req.Permission, req.Subject, msg, live)
			}
			// Lookups fill the shared cache too (through a request-local memo).
			for range n / 30 {
				req := LookupResourcesRequest{
					ResourceType: propTypes[rng.IntN(len(propTypes))],
					Permission:   names[rng.IntN(len(names))],
					Subject:      subjects[rng.IntN(len(subjects))],
				}
				lookup := func(e *Engine) []string {
					var ids []string
					require.NoError(t, e.LookupResources(ctx, r, req, func(res LookupResourcesResult) error {
						ids = append(ids, res.Object.ID)
						return nil
					}), msg)
					return ids
				}
				require.Equal(t, lookup(fresh), lookup(long), "at revision %d: LookupResources(%+v)\n%s", r.Revision(), req, msg)
			}
		}
		revs := []tuples.Revision{r.Revision()}
		compare(r, 150)
		for range 12 {
			rev, err := st.Write(ctx, tuples.WriteRequest{Updates: randomWrite(rng, s, live, 2)})
			require.NoError(t, err, msg)
			revs = append(revs, rev)
			head, err := st.ReaderAt(ctx, rev)
			require.NoError(t, err)
			live = liveTuples(t, ctx, head)
			compare(head, 150)
			old, err := st.ReaderAt(ctx, revs[rng.IntN(len(revs))])
			require.NoError(t, err)
			compare(old, 30)
		}
		stats := long.CacheStats()
		reused += stats.Hits
	}
	require.Greater(t, compiled, *propertyCases/8, "too few random schemas compiled")
	require.Positive(t, reused)
	t.Logf("%d random schemas, %d cache hits", compiled, reused)
}

// TestCacheReusedAcrossRevisions checks that an answer computed at one revision is
// served at a later one when the writes in between touched nothing it read, and
// recomputed when one did.
func TestCacheReusedAcrossRevisions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	r1 := st.load(t, designSchema(), designTuples(t))
	e := New(Options{})
	req := parseCheck(t, "tenant:paris#manage@user:ada")
	res, err := e.Check(ctx, r1, req)
	require.NoError(t, err)
	require.True(t, res.Allowed)

	hitsAfter := func(r tuples.Reader) (bool, uint64) {
		before := e.CacheStats().Hits
		res, err := e.Check(ctx, r, req)
		require.NoError(t, err)
		return res.Allowed, e.CacheStats().Hits - before
	}
	// An unrelated write: the top-level answer is reused.
	rev, err := st.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: mustTuples(t, "doc:9#viewer_direct@user:zed")[0]}}})
	require.NoError(t, err)
	r2, err := st.ReaderAt(ctx, rev)
	require.NoError(t, err)
	ok, hits := hitsAfter(r2)
	require.True(t, ok)
	require.Equal(t, uint64(1), hits, "only the top-level lookup, answered across revisions")

	// Removing what granted it: recomputed, and now denied.
	var updates []tuples.Update
	for _, tup := range designTuples(t) {
		if tup.Subject.Object.ID == "ada" {
			updates = append(updates, tuples.Update{Op: tuples.OpDelete, Tuple: tup})
		}
	}
	require.NotEmpty(t, updates)
	rev, err = st.Write(ctx, tuples.WriteRequest{Updates: updates})
	require.NoError(t, err)
	r3, err := st.ReaderAt(ctx, rev)
	require.NoError(t, err)
	ok, _ = hitsAfter(r3)
	require.False(t, ok)
	// The older revision still answers from its own entry... which the newer answer
	// replaced; either way it must be right.
	ok, _ = hitsAfter(r2)
	require.True(t, ok)
}

// liveTuples returns every live tuple r reads.
// randomWrite is a write that creates 1 to maxCreates random tuples of s and deletes
// up to two of live, each tuple at most once.
func randomWrite(rng *rand.Rand, s *schema.Schema, live []tuples.Tuple, maxCreates int) []tuples.Update {
	var updates []tuples.Update
	seen := map[string]bool{}
	for _, tup := range randomTuples(rng, s, 1+rng.IntN(maxCreates)) {
		if !seen[tup.String()] {
			seen[tup.String()] = true
			updates = append(updates, tuples.Update{Op: tuples.OpTouch, Tuple: tup})
		}
	}
	for range rng.IntN(3) {
		if len(live) == 0 {
			break
		}
		tup := live[rng.IntN(len(live))]
		if !seen[tup.String()] {
			seen[tup.String()] = true
			updates = append(updates, tuples.Update{Op: tuples.OpDelete, Tuple: tup})
		}
	}
	return updates
}

func liveTuples(t *testing.T, ctx context.Context, r tuples.Reader) []tuples.Tuple {
	t.Helper()
	var out []tuples.Tuple
	for tup, err := range r.Read(ctx, tuples.Filter{}, nil) {
		require.NoError(t, err)
		out = append(out, tup)
	}
	return out
}
