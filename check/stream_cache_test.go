package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// TestStreamCacheAcrossRevisions checks, over random schemas (intersections and
// exclusions included, so set algebra runs too), tuples and writes, that an engine
// whose stream cache lives across revisions looks up exactly what an engine without
// caches does, and what Check allows object by object: at the head after every
// write, at older revisions after newer ones were cached, and page by page.
func TestStreamCacheAcrossRevisions(t *testing.T) {
	ctx := context.Background()
	compiled := 0
	var hits, stale int64
	for i := 0; i < *setCases/25; i++ {
		seed := uint64(5000 + i)
		rng := rand.New(rand.NewPCG(seed, 7))
		s := randomSchema(rng)
		if _, err := schema.Compile("random", s.Text()); err != nil {
			continue
		}
		compiled++
		st := openStore(t)
		r := st.load(t, s, randomTuples(rng, s, 20+rng.IntN(40)))
		live := liveTuples(t, ctx, r)
		cached := New(Options{Concurrency: 1 + rng.IntN(3)})
		fresh := New(Options{CacheBytes: -1, Concurrency: 1})
		msg := fmt.Sprintf("seed %d\nschema:\n%s", seed, s.Text())

		subjects := []tuples.SubjectRef{{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}}}
		for _, u := range propUsers {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}})
		}
		for _, typ := range propTypes {
			for _, name := range []string{"r1", "p0"} {
				subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: typ, ID: propIDs[rng.IntN(3)]}, Relation: name})
			}
		}
		names := append(slices.Clone(propRels), propPerms...)
		compare := func(r tuples.Reader) {
			state := fmt.Sprintf("%s\ntuples: %v", msg, liveTuples(t, ctx, r))
			m := func(what string) string {
				return fmt.Sprintf("at revision %d: %s\n%s", r.Revision(), what, state)
			}
			for _, typ := range propTypes {
				for _, p := range names {
					for _, subj := range subjects {
						what := fmt.Sprintf("LookupResources(%s, %s, %s)", typ, p, subj)
						want, wantErr := lookupIDs(ctx, fresh, r, typ, p, subj)
						got, gotErr := lookupIDs(ctx, cached, r, typ, p, subj)
						require.Equal(t, wantErr, gotErr, m(what))
						require.Equal(t, want, got, m(what))
						if gotErr != "" {
							continue
						}
						for _, id := range propIDs {
							c := checkAnswer(ctx, fresh, r, tuples.ObjectRef{Type: typ, ID: id}, p, subj)
							require.Equal(t, c == "true", slices.Contains(got, id), m(what+" against Check("+id+") = "+c))
						}
						if rng.IntN(4) == 0 {
							limit := 1 + rng.IntN(2)
							paged := pageResources(t, cached, r, LookupResourcesRequest{ResourceType: typ, Permission: p, Subject: subj}, limit)
							require.Equal(t, got, paged, m(fmt.Sprintf("%s paged by %d", what, limit)))
						}
					}
					for _, id := range propIDs {
						obj := tuples.ObjectRef{Type: typ, ID: id}
						what := fmt.Sprintf("LookupSubjects(%s, %s, user)", obj, p)
						subjectIDs := func(e *Engine) ([]string, string) {
							var ids []string
							err := e.LookupSubjects(ctx, r, LookupSubjectsRequest{Object: obj, Permission: p, SubjectType: "user"},
								func(res LookupSubjectsResult) error {
									ids = append(ids, res.Subject.String()+fmt.Sprint(res.Excluded))
									return nil
								})
							if err != nil {
								return nil, errClass(err)
							}
							return ids, ""
						}
						want, wantErr := subjectIDs(fresh)
						got, gotErr := subjectIDs(cached)
						require.Equal(t, wantErr, gotErr, m(what))
						require.Equal(t, want, got, m(what))
					}
				}
			}
		}
		revs := []tuples.Revision{r.Revision()}
		compare(r)
		for range 4 {
			rev, err := st.Write(ctx, tuples.WriteRequest{Updates: randomWrite(rng, s, live, 3)})
			require.NoError(t, err, msg)
			revs = append(revs, rev)
			head, err := st.ReaderAt(ctx, rev)
			require.NoError(t, err)
			live = liveTuples(t, ctx, head)
			compare(head)
			old, err := st.ReaderAt(ctx, revs[rng.IntN(len(revs))])
			require.NoError(t, err)
			compare(old)
		}
		stats := cached.StreamCacheStats()
		hits += stats.Hits
		stale += stats.Stale
	}
	require.Greater(t, compiled, *setCases/100, "too few random schemas compiled")
	require.Positive(t, hits, "the stream cache served nothing")
	require.Positive(t, stale, "no write ever made a cached scan stale")
	t.Logf("%d random schemas; stream cache: %d hits, %d stale", compiled, hits, stale)
}

// TestStreamCacheServesAndInvalidates checks, on the peer workload's shape, that a
// second user of a tenant gets the tenant's flows from the cache, that a flow added
// to the tenant afterwards shows at the new revision and not at the old one, and
// that a scan holding an expiring tuple is never stored.
func TestStreamCacheServesAndInvalidates(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	// Two viewers of tenant c0, who reach its flows through tenant->view.
	ts := append(peerTuples(2, 2, 12, 6, 12), mustTuples(t, "tenant:c0#viewer@user:zz0", "tenant:c0#viewer@user:zz1")...)
	r1 := st.load(t, peerSchema(), ts)
	e := New(Options{})
	user := func(id string) tuples.SubjectRef {
		return tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: id}}
	}
	a, errA := lookupIDs(ctx, e, r1, "flow", "execute", user("zz0"))
	require.Empty(t, errA)
	require.True(t, slices.ContainsFunc(a, func(id string) bool { return strings.HasPrefix(id, "c0f") }), "zz0 reaches c0's flows: %v", a)
	before := e.StreamCacheStats()
	require.Positive(t, before.Puts)
	b, errB := lookupIDs(ctx, e, r1, "flow", "execute", user("zz1"))
	require.Empty(t, errB)
	require.Equal(t, a, b)
	require.Greater(t, e.StreamCacheStats().Hits, before.Hits, "the second viewer of the tenant shares its scans")

	// A new flow of tenant c0: seen at the new revision, not at the old one.
	rev2, err := st.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: mustTuples(t, "flow:c0fnew#tenant@tenant:c0")[0]}}})
	require.NoError(t, err)
	r2, err := st.ReaderAt(ctx, rev2)
	require.NoError(t, err)
	got2, _ := lookupIDs(ctx, e, r2, "flow", "execute", user("zz0"))
	require.Equal(t, append(slices.Clone(a), "c0fnew"), got2)
	got1, _ := lookupIDs(ctx, e, r1, "flow", "execute", user("zz1"))
	require.Equal(t, a, got1, "the old revision does not see the new flow")
	got2, _ = lookupIDs(ctx, e, r2, "flow", "execute", user("zz1"))
	require.Equal(t, append(slices.Clone(a), "c0fnew"), got2)

	// An expiring grant: the scan that holds it is read from the store every time.
	exp := mustTuples(t, "flow:c1f0#owner@user:zz0")[0]
	exp.ExpiresAt = time.Now().Add(time.Hour)
	withExpiry := peerSchema()
	owner := withExpiry.Definitions["flow"].Relations["owner"]
	for i := range owner.Allowed {
		owner.Allowed[i].Expiration = true
	}
	owner.Allowed = append(owner.Allowed, schema.AllowedSubject{Type: "user"})
	_, err = st.WriteSchema(ctx, withExpiry.Text(), nil)
	require.NoError(t, err)
	rev3, err := st.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: exp}}})
	require.NoError(t, err)
	r3, err := st.ReaderAt(ctx, rev3)
	require.NoError(t, err)
	k := scanKey{subj: user("zz0"), typ: "flow", rel: "owner"}
	for range 2 {
		got3, err3 := lookupIDs(ctx, e, r3, "flow", "execute", user("zz0"))
		require.Empty(t, err3)
		require.Contains(t, got3, "c1f0")
		e.streams.mu.Lock()
		entry := e.streams.m[k]
		e.streams.mu.Unlock()
		if entry != nil {
			require.Less(t, entry.rev, rev3, "a scan with an expiring tuple was stored")
		}
	}
}
