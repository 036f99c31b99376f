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
	var viaSets, viaArrows, drops int64
	for i := 0; i < *setCases; i++ {
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 7))
		var s *schema.Schema
		layered := i%2 == 1
		if layered {
			s = layeredSchema(rng)
		} else {
			s = randomSchema(rng)
		}
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
		msg := fmt.Sprintf("seed %d layered %v max depth %d\nschema:\n%s\ntuples: %v", seed, layered, maxDepth, s.Text(), ts)

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
					before, arrowsBefore := sets.setLookups.Load(), sets.setArrows.Load()
					got, gotErr := lookupIDs(ctx, sets, r, typ, p, subj)
					if sets.setLookups.Load() == before {
						continue // no plan, or a walk cut short: candidates were verified
					}
					viaSets++
					if sets.setArrows.Load() > arrowsBefore {
						viaArrows++
					}
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
					if gotErr != "" && wantErr == "" {
						// Set algebra leaves to Check an object reached only beyond the depth
						// limit somewhere, and reports Check's depth error; verifying candidates
						// shares sub-answers across them (its memo ignores depth) and can miss
						// it. Check must fail on some object.
						failed := false
						for _, id := range propIDs {
							c := checkAnswer(ctx, verified, r, tuples.ObjectRef{Type: typ, ID: id}, p, subj)
							failed = failed || c == gotErr
						}
						require.True(t, failed, "%s\nset algebra: %s; verified: %v; Check fails on no object", m, gotErr, want)
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
	require.Greater(t, viaArrows, int64(*setCases), "too few lookups mapped arrows to non-monotone permissions back")
	t.Logf("%d of %d random schemas compiled; %d lookups by set algebra (%d through arrows to non-monotone permissions), which removed %d ids",
		compiled, *setCases, viaSets, viaArrows, drops)
}

// layeredSchema is randomSchema without cycles but for nested stored relations: t0's
// arrows (over r0) lead to t1 or t2, t1's to t2, and a permission computes only
// relations and lower-numbered permissions of its type, so that arrows to
// non-monotone permissions, over one hop or two (t0 -> t1 -> t2, like flow ->
// workspace -> tenant), are common and plannable.
func layeredSchema(rng *rand.Rand) *schema.Schema {
	defs := []*schema.Definition{def("user")}
	for ti, typ := range propTypes {
		below := propTypes[ti+1:]
		var rels []*schema.Relation
		for i, name := range propRels {
			var allowed []string
			if i == 0 {
				for _, t := range below {
					if rng.IntN(3) > 0 || len(allowed) == 0 {
						allowed = append(allowed, t)
					}
				}
				if len(below) > 0 && rng.IntN(4) == 0 {
					allowed = append(allowed, below[0]+"#r1")
				}
				if len(allowed) == 0 || rng.IntN(3) == 0 {
					allowed = append(allowed, "user")
				}
			} else {
				allowed = append(allowed, "user")
				if rng.IntN(3) == 0 {
					allowed = append(allowed, "user:*")
				}
				if rng.IntN(2) == 0 {
					allowed = append(allowed, typ+"#"+name) // nested, like roles
				}
				for n := rng.IntN(3); n > 0 && len(below) > 0; n-- {
					us := below[rng.IntN(len(below))] + "#" + []string{"r1", "r2", "p0", "p1"}[rng.IntN(4)]
					if !slices.Contains(allowed, us) {
						allowed = append(allowed, us)
					}
				}
			}
			rels = append(rels, rel(name, allowed...))
		}
		for i, name := range propPerms {
			rels = append(rels, perm(name, layeredRewrite(rng, 3, propPerms[:i], len(below) > 0)))
		}
		defs = append(defs, def(typ, rels...))
	}
	s := mkSchema(defs...)
	s.UseSelf = true
	return s
}

// layeredRewrite is randomRewrite computing only relations and the permissions lower,
// with arrows (to any relation or permission) only when arrows is set.
func layeredRewrite(rng *rand.Rand, depth int, lower []string, arrows bool) *schema.Rewrite {
	k := rng.IntN(10)
	if depth == 0 {
		k = rng.IntN(4)
	}
	names := append(slices.Clone(propRels), lower...)
	switch k {
	case 0:
		return cu(names[rng.IntN(len(names))])
	case 1, 2:
		if !arrows {
			return cu(names[rng.IntN(len(names))])
		}
		all := append(slices.Clone(propRels), propPerms...)
		target := all[rng.IntN(len(all))]
		if rng.IntN(3) > 0 {
			target = propPerms[rng.IntN(len(propPerms))]
		}
		if rng.IntN(10) == 0 {
			return arrowAll("r0", target)
		}
		return arrow("r0", target)
	case 3:
		if rng.IntN(2) == 0 {
			return nilRW()
		}
		return selfRW()
	case 4, 5, 6:
		return union(layeredRewrite(rng, depth-1, lower, arrows), layeredRewrite(rng, depth-1, lower, arrows))
	case 7:
		return inter(layeredRewrite(rng, depth-1, lower, arrows), layeredRewrite(rng, depth-1, lower, arrows))
	default:
		return excl(layeredRewrite(rng, depth-1, lower, arrows), layeredRewrite(rng, depth-1, lower, arrows))
	}
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

// allowedByCheck asks Check about typ:id for each of ids and returns the ids allowed, in
// order, and whether Check failed on any of them (the depth limit).
func allowedByCheck(ctx context.Context, e *Engine, r tuples.Reader, typ string, ids []string, p string, subj tuples.SubjectRef) (allowed []string, failed bool) {
	for _, id := range ids {
		switch checkAnswer(ctx, e, r, tuples.ObjectRef{Type: typ, ID: id}, p, subj) {
		case "true":
			allowed = append(allowed, id)
		case "false":
		default:
			failed = true
		}
	}
	return allowed, failed
}

// lookupAgreesWithCheck looks up typ#p for subj on e and requires the answer Check
// gives for each of ids (the only objects of typ in r): the same ids, or, when Check
// fails on one of them (the depth limit), the lookup failing on the depth limit too.
// It reports whether the lookup failed, and whether set algebra answered it.
func lookupAgreesWithCheck(t *testing.T, ctx context.Context, e *Engine, r tuples.Reader, typ string, ids []string, p string, subj tuples.SubjectRef, m string) (failed, setAlgebra bool) {
	t.Helper()
	before := e.setLookups.Load()
	got, errText := lookupIDs(ctx, e, r, typ, p, subj)
	want, checkErr := allowedByCheck(ctx, e, r, typ, ids, p, subj)
	m = fmt.Sprintf("%s (set algebra: %v)", m, e.setLookups.Load() > before)
	if checkErr {
		require.Equal(t, "error: max depth exceeded", errText, "%s: %v", m, got)
		return true, false
	}
	require.Empty(t, errText, m)
	require.Equal(t, want, got, m)
	return false, e.setLookups.Load() > before
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
			switch f, sets := lookupAgreesWithCheck(t, ctx, e, r, "doc", []string{"a", "b", "d"}, p, anne, fmt.Sprintf("n=%d %s", n, p)); {
			case f:
				failed++
			case sets:
				answered++
			}
		}
	}
	require.Positive(t, answered)
	require.Positive(t, failed)
}

// TestSetLookupsArrowDepthLimit: through arrows to non-monotone permissions (flow ->
// workspace -> tenant, as in the default model), near the depth limit, set algebra
// answers exactly what Check answers for every object, and where Check meets the limit
// on an object the lookup is a depth error. anne is in group gn through a chain of n
// nestings; tenant t's members are gn's; w1 and w2 are t's workspaces; f1 is in w1, f2
// in w2 (anne is denied on w2 through gn), f3 is owned by anne and in w1; f4 is in w3,
// whose "tenant" is org o, where exec is monotone (anne is a member through gn), when
// withOrg (t's member is then anne herself).
func TestSetLookupsArrowDepthLimit(t *testing.T) {
	ctx := context.Background()
	for _, withOrg := range []bool{false, true} {
		t.Run(fmt.Sprintf("org %v", withOrg), func(t *testing.T) { testArrowDepthLimit(ctx, t, withOrg) })
	}
}

func testArrowDepthLimit(ctx context.Context, t *testing.T, withOrg bool) {
	wsTenant := rel("tenant", "tenant")
	if withOrg {
		wsTenant = rel("tenant", "tenant", "org")
	}
	s := mkSchema(def("user"),
		def("group", rel("member", "user", "group#member")),
		def("tenant", rel("member", "user", "group#member"), rel("denied", "user"),
			perm("exec", excl(cu("member"), cu("denied")))),
		def("org", rel("member", "user", "group#member"), perm("exec", cu("member"))),
		def("workspace", wsTenant, rel("banned", "user", "group#member"), rel("extra", "user"),
			perm("exec", union(excl(arrow("tenant", "exec"), cu("banned")), cu("extra"))),
			perm("exec2", cu("exec"))),
		def("flow", rel("workspace", "workspace"), rel("owner", "user"), rel("denied", "user"),
			perm("execute", union(cu("owner"), excl(arrow("workspace", "exec"), cu("denied")))),
			perm("execute2", union(cu("owner"), excl(arrow("workspace", "exec2"), cu("denied"))))))
	anne := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}
	answered, failed := 0, 0
	for n := 0; n <= 5; n++ {
		member := fmt.Sprintf("tenant:t#member@group:g%d#member", n)
		if withOrg {
			member = "tenant:t#member@user:anne" // so that f4 is the deepest object
		}
		lines := []string{"group:g0#member@user:anne", member,
			"workspace:w1#tenant@tenant:t", "workspace:w2#tenant@tenant:t", fmt.Sprintf("workspace:w2#banned@group:g%d#member", n),
			"flow:f1#workspace@workspace:w1", "flow:f2#workspace@workspace:w2", "flow:f3#workspace@workspace:w1",
			"flow:f3#owner@user:anne"}
		if withOrg {
			lines = append(lines, fmt.Sprintf("org:o#member@group:g%d#member", n), "workspace:w3#tenant@org:o",
				"flow:f4#workspace@workspace:w3")
		}
		for i := 0; i < n; i++ {
			lines = append(lines, fmt.Sprintf("group:g%d#member@group:g%d#member", i+1, i))
		}
		r := newReader(t, s, mustTuples(t, lines...))
		for maxDepth := 3; maxDepth <= 9; maxDepth++ {
			for _, p := range []string{"execute", "execute2"} {
				e := New(Options{MaxDepth: maxDepth, CacheBytes: -1})
				m := fmt.Sprintf("n=%d max depth %d %s", n, maxDepth, p)
				switch f, sets := lookupAgreesWithCheck(t, ctx, e, r, "flow", []string{"f1", "f2", "f3", "f4"}, p, anne, m); {
				case f:
					failed++
				case sets:
					require.Positive(t, e.setArrows.Load(), "%s: set algebra through an arrow", m)
					answered++
				}
			}
		}
	}
	require.Greater(t, answered, 8)
	require.Greater(t, failed, 8)
}
