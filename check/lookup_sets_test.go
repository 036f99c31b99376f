package check

import (
	"context"
	"flag"
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

var setCases = flag.Int("set-cases", 200, "random schemas the set-algebra lookup property test tries")

// TestSetLookupsAgreeWithVerification checks, over random schemas full of
// intersections and exclusions (a quarter of them under a small depth limit), that
// lookups answered by set algebra over sorted streams (lookup_sets.go) give exactly
// what verifying every candidate with Check gives: the same ids or the same kind of
// error, the same pages at every small limit, and, without depth errors, exactly the
// objects Check allows. It also checks that the set path ran often and that its
// intersections and exclusions removed ids.
func TestSetLookupsAgreeWithVerification(t *testing.T) {
	ctx := context.Background()
	compiled := 0
	var viaSets, drops int64
	for i := 0; i < *setCases; i++ {
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 7))
		s := randomSchema(rng)
		if _, err := schema.Compile("random", s.Text()); err != nil {
			continue
		}
		compiled++
		ts := randomTuples(rng, s, 20+rng.IntN(60))
		r := newReader(t, s, ts)
		maxDepth := 50
		if i%4 == 3 {
			maxDepth = 1 + rng.IntN(4)
		}
		conc := 1 + rng.IntN(3)
		sets := New(Options{MaxDepth: maxDepth, CacheBytes: -1, Concurrency: conc})
		verified := New(Options{MaxDepth: maxDepth, CacheBytes: -1, Concurrency: conc})
		verified.noSets = true
		msg := fmt.Sprintf("seed %d max depth %d\nschema:\n%s\ntuples: %v", seed, maxDepth, s.Text(), ts)

		var subjects []tuples.SubjectRef
		for _, u := range propUsers {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}})
		}
		subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}})
		for _, typ := range propTypes {
			for _, name := range []string{"r1", "p0", "p1", "p2"} {
				subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: typ, ID: propIDs[rng.IntN(4)]}, Relation: name})
			}
		}
		for _, typ := range propTypes {
			for _, p := range propPerms {
				for _, subj := range subjects {
					m := fmt.Sprintf("LookupResources(%s, %s, %s)\n%s", typ, p, subj, msg)
					before := sets.setLookups.Load()
					got, gotErr := lookupIDs(ctx, sets, r, typ, p, subj)
					if sets.setLookups.Load() == before {
						continue // no plan, or a walk cut short: candidates were verified
					}
					viaSets++
					want, wantErr := lookupIDs(ctx, verified, r, typ, p, subj)
					if wantErr != "" && gotErr == "" {
						// Verifying can meet a depth error below an object the subject reaches
						// by no path; set algebra never walks there. Where Check answers, the
						// two must still agree.
						for _, id := range propIDs {
							c := checkAnswer(ctx, verified, r, tuples.ObjectRef{Type: typ, ID: id}, p, subj)
							if !strings.HasPrefix(c, "error") {
								require.Equal(t, c == "true", slices.Contains(got, id), "%s\nset algebra %v, Check(%s) = %s", m, got, id, c)
							}
						}
						continue
					}
					require.Equal(t, wantErr, gotErr, m)
					require.Equal(t, want, got, m)
					if gotErr != "" {
						continue
					}
					for limit := 1; limit <= 3; limit++ {
						paged := pageResources(t, sets, r, LookupResourcesRequest{ResourceType: typ, Permission: p, Subject: subj}, limit)
						require.Equal(t, got, paged, "%s\npaged by %d", m, limit)
					}
					if maxDepth == 50 {
						for _, id := range propIDs {
							c := checkAnswer(ctx, verified, r, tuples.ObjectRef{Type: typ, ID: id}, p, subj)
							require.Equal(t, c == "true", slices.Contains(got, id), "%s\nCheck(%s) = %s", m, id, c)
						}
					}
				}
			}
		}
		drops += sets.setDrops.Load()
	}
	require.Greater(t, compiled, *setCases/4, "too few random schemas compiled")
	require.Greater(t, viaSets, int64(5**setCases), "too few lookups went through set algebra")
	require.Greater(t, drops, int64(*setCases/2), "intersections and exclusions removed too few ids")
	t.Logf("%d of %d random schemas compiled; %d lookups by set algebra, which removed %d ids", compiled, *setCases, viaSets, drops)
}

// lookupIDs returns the ids LookupResources gives, or the class of its error.
func lookupIDs(ctx context.Context, e *Engine, r tuples.Reader, typ, p string, subj tuples.SubjectRef) ([]string, string) {
	var got []string
	err := e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: typ, Permission: p, Subject: subj},
		func(res LookupResourcesResult) error {
			got = append(got, res.Object.ID)
			return nil
		})
	if err != nil {
		return nil, errClass(err)
	}
	return got, ""
}

// TestSetLookupsPeer checks the set path on the peer workload's shape (flow#execute
// = (owner + granted + tenant->view) - denied, nested roles, a tenant tree), with and
// without the nested-set index: every user's lookup is exactly the flows Check
// allows, and it is answered by set algebra.
func TestSetLookupsPeer(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	r := st.load(t, peerSchema(), peerTuples(2, 2, 12, 6, 12))
	for _, indexed := range []bool{false, true} {
		e := New(Options{CacheBytes: -1})
		if indexed {
			fl := &follower{e: e, src: st}
			require.NoError(t, fl.step(ctx, time.Now()))
		}
		var flows []string
		for t := 0; t < 6; t++ {
			name := fmt.Sprintf("c%d", t-2)
			if t < 2 {
				name = fmt.Sprintf("p%d", t)
			}
			for f := 0; f < 12; f++ {
				flows = append(flows, fmt.Sprintf("%sf%d", name, f))
			}
		}
		slices.Sort(flows)
		total, denied := 0, 0
		for _, u := range []string{"p0u0", "p0u3", "p1u5", "c0u1", "c0u7", "c1u2", "c2u11", "c3u4", "c3u9", "nobody"} {
			subj := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}}
			before := e.setLookups.Load()
			got, errText := lookupIDs(ctx, e, r, "flow", "execute", subj)
			require.Empty(t, errText)
			require.Equal(t, before+1, e.setLookups.Load(), "the lookup was not answered by set algebra")
			var want []string
			for _, f := range flows {
				res, err := e.Check(ctx, r, CheckRequest{Object: tuples.ObjectRef{Type: "flow", ID: f}, Permission: "execute", Subject: subj})
				require.NoError(t, err)
				if res.Allowed {
					want = append(want, f)
				}
			}
			require.Equal(t, want, got, "indexed %v, %s", indexed, subj)
			total += len(got)
			for limit := 1; limit <= 3; limit++ {
				require.Equal(t, got, pageResources(t, e, r, LookupResourcesRequest{ResourceType: "flow", Permission: "execute", Subject: subj}, limit))
			}
		}
		denied = int(e.setDrops.Load())
		require.Positive(t, total)
		require.Positive(t, denied, "no denial removed a flow")
	}
}

// TestSetLookupsDepthLimit: near the depth limit, set algebra answers exactly what
// Check answers for every object, and where Check meets the limit on an object the
// lookup is a depth error. anne is in group gn through a chain of n nestings; d is
// viewed and a banned through gn; view3 and view2 put frames above view.
func TestSetLookupsDepthLimit(t *testing.T) {
	ctx := context.Background()
	s := mkSchema(def("user"),
		def("group", rel("member", "user", "group#member")),
		def("doc", rel("viewer", "user", "group#member"), rel("banned", "user", "group#member"),
			perm("view", excl(cu("viewer"), cu("banned"))),
			perm("both", inter(cu("viewer"), cu("banned"))),
			perm("view2", cu("view")),
			perm("view3", union(cu("view2"), nilRW()))))
	anne := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}
	answered, failed := 0, 0
	for n := 1; n <= 6; n++ {
		lines := []string{"group:g0#member@user:anne", "doc:a#viewer@user:anne", "doc:b#viewer@user:anne",
			fmt.Sprintf("doc:d#viewer@group:g%d#member", n), fmt.Sprintf("doc:a#banned@group:g%d#member", n)}
		for i := 0; i < n; i++ {
			lines = append(lines, fmt.Sprintf("group:g%d#member@group:g%d#member", i+1, i))
		}
		r := newReader(t, s, mustTuples(t, lines...))
		for _, p := range []string{"view", "both", "view2", "view3"} {
			e := New(Options{MaxDepth: 5, CacheBytes: -1})
			before := e.setLookups.Load()
			got, errText := lookupIDs(ctx, e, r, "doc", p, anne)
			var want []string
			checkErr := false
			for _, id := range []string{"a", "b", "d"} {
				switch checkAnswer(ctx, e, r, tuples.ObjectRef{Type: "doc", ID: id}, p, anne) {
				case "true":
					want = append(want, id)
				case "false":
				default:
					checkErr = true
				}
			}
			m := fmt.Sprintf("n=%d %s (set algebra: %v)", n, p, e.setLookups.Load() > before)
			if checkErr {
				require.Equal(t, "error: max depth exceeded", errText, "%s: %v", m, got)
				failed++
				continue
			}
			require.Empty(t, errText, m)
			require.Equal(t, want, got, m)
			if e.setLookups.Load() > before {
				answered++
			}
		}
	}
	require.Positive(t, answered)
	require.Positive(t, failed)
}
