package check

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

var propertyCases = flag.Int("property-cases", 60, "random schemas the lookup property test tries")

var (
	propTypes = []string{"t0", "t1", "t2"}
	propRels  = []string{"r0", "r1", "r2"}
	propPerms = []string{"p0", "p1", "p2"}
	propIDs   = []string{"o0", "o1", "o2", "o3"} // o3 never appears in a tuple
	propUsers = []string{"u0", "u1", "u2", "u3"} // u3 never appears in a tuple
)

// randomSchema builds a schema over types t0..t2, each with stored relations r0..r2
// and permissions p0..p2. r0 holds plain objects so that arrows (always over r0) have
// targets.
func randomSchema(rng *rand.Rand) *schema.Schema {
	defs := []*schema.Definition{def("user")}
	for _, typ := range propTypes {
		var rels []*schema.Relation
		for i, name := range propRels {
			var allowed []string
			if i == 0 {
				for _, t := range propTypes {
					if rng.IntN(2) == 0 || len(allowed) == 0 && t == "t2" {
						allowed = append(allowed, t)
					}
				}
				if rng.IntN(2) == 0 {
					allowed = append(allowed, "user")
				}
			} else {
				allowed = append(allowed, "user")
				if rng.IntN(3) == 0 {
					allowed = append(allowed, "user:*")
				}
				for n := rng.IntN(3); n > 0; n-- {
					us := propTypes[rng.IntN(len(propTypes))] + "#" + []string{"r1", "r2", "p0", "p1"}[rng.IntN(4)]
					if !slices.Contains(allowed, us) {
						allowed = append(allowed, us)
					}
				}
			}
			rels = append(rels, rel(name, allowed...))
		}
		for _, name := range propPerms {
			rels = append(rels, perm(name, randomRewrite(rng, 3)))
		}
		defs = append(defs, def(typ, rels...))
	}
	s := mkSchema(defs...)
	s.UseSelf = true
	return s
}

func randomRewrite(rng *rand.Rand, depth int) *schema.Rewrite {
	k := rng.IntN(10)
	if depth == 0 {
		k = rng.IntN(4)
	}
	names := append(slices.Clone(propRels), propPerms...)
	switch k {
	case 0, 1:
		return cu(names[rng.IntN(len(names))])
	case 2:
		target := names[rng.IntN(len(names))]
		if rng.IntN(4) == 0 {
			return arrowAll("r0", target)
		}
		return arrow("r0", target)
	case 3:
		if rng.IntN(2) == 0 {
			return nilRW()
		}
		return selfRW()
	case 4, 5, 6:
		return union(randomRewrite(rng, depth-1), randomRewrite(rng, depth-1))
	case 7, 8:
		return inter(randomRewrite(rng, depth-1), randomRewrite(rng, depth-1))
	default:
		return excl(randomRewrite(rng, depth-1), randomRewrite(rng, depth-1))
	}
}

// randomTuples writes subjects each relation allows.
func randomTuples(rng *rand.Rand, s *schema.Schema, n int) []tuples.Tuple {
	var out []tuples.Tuple
	for len(out) < n {
		typ := propTypes[rng.IntN(len(propTypes))]
		r := s.Definitions[typ].Relations[propRels[rng.IntN(len(propRels))]]
		a := r.Allowed[rng.IntN(len(r.Allowed))]
		obj := tuples.ObjectRef{Type: typ, ID: propIDs[rng.IntN(3)]}
		var subj tuples.SubjectRef
		switch {
		case a.Wildcard:
			subj = tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.Type, ID: tuples.Wildcard}}
		case a.Type == "user":
			subj = tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: propUsers[rng.IntN(3)]}}
		default:
			subj = tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.Type, ID: propIDs[rng.IntN(3)]}, Relation: a.Relation}
		}
		out = append(out, tuples.Tuple{Object: obj, Relation: r.Name, Subject: subj})
	}
	return out
}

// TestLookupsAgreeWithCheck checks, over random schemas and tuples, that every result
// of LookupResources and LookupSubjects passes Check and that nothing passing Check is
// missing from them.
func TestLookupsAgreeWithCheck(t *testing.T) {
	ctx := context.Background()
	compiled := 0
	for i := 0; i < *propertyCases; i++ {
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 42))
		s := randomSchema(rng)
		if _, err := schema.Compile("random", s.Text()); err != nil {
			continue // a random schema the type checker refuses
		}
		compiled++
		ts := randomTuples(rng, s, 4+rng.IntN(30))
		r := newReader(t, s, ts)
		e := New(Options{Concurrency: 1 + rng.IntN(4)})
		if i%2 == 1 {
			e.smallRelation = 0 // the general path: probes and userset scans
		}
		msg := fmt.Sprintf("seed %d\nschema:\n%s\ntuples: %v", seed, s.Text(), ts)

		var subjects []tuples.SubjectRef
		for _, u := range propUsers {
			subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}})
		}
		subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}})
		for _, typ := range propTypes {
			for _, name := range []string{"r1", "p0"} {
				subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: typ, ID: propIDs[rng.IntN(4)]}, Relation: name})
			}
		}
		check := func(obj tuples.ObjectRef, p string, subj tuples.SubjectRef) bool {
			res, err := e.Check(ctx, r, CheckRequest{Object: obj, Permission: p, Subject: subj})
			require.NoError(t, err, msg)
			// Explained checks walk every userset down instead of using the reverse
			// index: they must agree.
			exp, err := e.Check(ctx, r, CheckRequest{Object: obj, Permission: p, Subject: subj, Explain: true})
			require.NoError(t, err, msg)
			require.Equal(t, res.Allowed, exp.Allowed, "explained Check(%s#%s@%s)\n%s", obj, p, subj, msg)
			return res.Allowed
		}
		for _, typ := range propTypes {
			for _, p := range append(slices.Clone(propRels), propPerms...) {
				// LookupResources against Check on every object id.
				for _, subj := range subjects {
					var got []string
					err := e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: typ, Permission: p, Subject: subj},
						func(res LookupResourcesResult) error {
							got = append(got, res.Object.ID)
							return nil
						})
					require.NoError(t, err, msg)
					require.True(t, slices.IsSorted(got))
					// Paged with every small limit, the lookup gives the same results.
					for limit := 1; limit <= 3; limit++ {
						paged := pageResources(t, e, r, LookupResourcesRequest{ResourceType: typ, Permission: p, Subject: subj}, limit)
						require.Equal(t, got, paged, "LookupResources(%s, %s, %s) paged by %d\n%s", typ, p, subj, limit, msg)
					}
					for _, id := range propIDs {
						want := check(tuples.ObjectRef{Type: typ, ID: id}, p, subj)
						require.Equal(t, want, slices.Contains(got, id), "LookupResources(%s, %s, %s) = %v; Check(%s:%s) = %v\n%s", typ, p, subj, got, typ, id, want, msg)
					}
				}
				// LookupSubjects against Check on every subject.
				for _, id := range propIDs {
					obj := tuples.ObjectRef{Type: typ, ID: id}
					for _, st := range []struct{ typ, rel string }{{"user", ""}, {"t0", "r1"}, {"t1", "p0"}} {
						named := map[string]bool{}
						var wild *LookupSubjectsResult
						err := e.LookupSubjects(ctx, r, LookupSubjectsRequest{Object: obj, Permission: p, SubjectType: st.typ, SubjectRelation: st.rel},
							func(res LookupSubjectsResult) error {
								if res.Subject.IsWildcard() {
									wild = &res
								} else {
									named[res.Subject.Object.ID] = true
								}
								return nil
							})
						require.NoError(t, err, msg)
						full := pageSubjects(t, e, r, LookupSubjectsRequest{Object: obj, Permission: p, SubjectType: st.typ, SubjectRelation: st.rel}, 0)
						for limit := 1; limit <= 3; limit++ {
							paged := pageSubjects(t, e, r, LookupSubjectsRequest{Object: obj, Permission: p, SubjectType: st.typ, SubjectRelation: st.rel}, limit)
							require.Equal(t, full, paged, "LookupSubjects(%s#%s, %s) paged by %d\n%s", obj, p, st.typ, limit, msg)
						}
						ids := propIDs
						if st.typ == "user" {
							ids = propUsers
							want := check(obj, p, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}})
							require.Equal(t, want, wild != nil, "LookupSubjects(%s#%s) wildcard\n%s", obj, p, msg)
						}
						for _, sid := range ids {
							subj := tuples.SubjectRef{Object: tuples.ObjectRef{Type: st.typ, ID: sid}, Relation: st.rel}
							got := named[sid]
							if wild != nil && !slices.ContainsFunc(wild.Excluded, func(x tuples.SubjectRef) bool { return x.Object.ID == sid }) {
								got = true
							}
							want := check(obj, p, subj)
							require.Equal(t, want, got, "LookupSubjects(%s#%s, %s) for %s; Check = %v\n%s", obj, p, st.typ, subj, want, msg)
						}
					}
				}
			}
		}
	}
	require.Greater(t, compiled, *propertyCases/4, "too few random schemas compiled")
	t.Logf("%d of %d random schemas compiled and agreed", compiled, *propertyCases)
}

// pageResources pages through a lookup limit results at a time and returns every id,
// checking that no page is longer than limit and no id comes twice.
func pageResources(t *testing.T, e *Engine, r tuples.Reader, req LookupResourcesRequest, limit int) []string {
	t.Helper()
	var all []string
	req.Limit = limit
	for page := 0; ; page++ {
		n := 0
		err := e.LookupResources(context.Background(), r, req, func(res LookupResourcesResult) error {
			require.NotContains(t, all, res.Object.ID, "returned twice")
			all = append(all, res.Object.ID)
			req.Cursor = res.Cursor
			n++
			return nil
		})
		require.NoError(t, err)
		require.LessOrEqual(t, n, limit)
		if n < limit {
			return all
		}
		require.Less(t, page, 100, "paging does not end")
	}
}

// pageSubjects pages through a subject lookup (all at once when limit is 0) and
// returns every subject with its exclusions, checking that none comes twice.
func pageSubjects(t *testing.T, e *Engine, r tuples.Reader, req LookupSubjectsRequest, limit int) []string {
	t.Helper()
	var all []string
	req.Limit = limit
	for page := 0; ; page++ {
		n := 0
		err := e.LookupSubjects(context.Background(), r, req, func(res LookupSubjectsResult) error {
			s := res.Subject.String()
			for _, x := range res.Excluded {
				s += " -" + x.String()
			}
			if res.Conditional {
				s += fmt.Sprintf(" ?%v", res.MissingContext)
			}
			require.NotContains(t, all, s, "returned twice")
			all = append(all, s)
			req.Cursor = res.Cursor
			n++
			return nil
		})
		require.NoError(t, err)
		if limit == 0 || n < limit {
			return all
		}
		require.LessOrEqual(t, n, limit)
		require.Less(t, page, 100, "paging does not end")
	}
}

func TestLookupPagination(t *testing.T) {
	ctx := context.Background()
	var lines []string
	for i := 0; i < 25; i++ {
		lines = append(lines, fmt.Sprintf("flow:f%02d#granted@user:anne", i), fmt.Sprintf("flow:f%02d#granted@user:u%02d", i, i))
	}
	lines = append(lines, "flow:f03#denied@user:anne", "flow:f04#granted@user:*", "flow:f04#denied@user:u07")
	r := newReader(t, designSchema(), mustTuples(t, lines...))
	e := New(Options{})

	var all []string
	cursor := ""
	for page := 0; ; page++ {
		var got []string
		err := e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "flow", Permission: "execute",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}, Cursor: cursor, Limit: 10},
			func(res LookupResourcesResult) error {
				got = append(got, res.Object.ID)
				cursor = res.Cursor
				return nil
			})
		require.NoError(t, err)
		if len(got) == 0 {
			break
		}
		require.LessOrEqual(t, len(got), 10)
		all = append(all, got...)
		require.Less(t, page, 5)
	}
	require.Len(t, all, 24) // f03 is denied
	require.NotContains(t, all, "f03")
	require.True(t, slices.IsSorted(all))

	// OmitCursors: no cursor on any result, and ResourceCursor makes the one it left
	// out; both through set algebra (execute) and the plain walk (granted).
	for _, p := range []string{"execute", "granted"} {
		req := LookupResourcesRequest{ResourceType: "flow", Permission: p, Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}}
		var with, without []string
		require.NoError(t, e.LookupResources(ctx, r, req, func(res LookupResourcesResult) error {
			with = append(with, res.Cursor)
			return nil
		}))
		req.OmitCursors = true
		require.NoError(t, e.LookupResources(ctx, r, req, func(res LookupResourcesResult) error {
			require.Empty(t, res.Cursor)
			without = append(without, ResourceCursor(res.Object.ID))
			return nil
		}))
		require.NotEmpty(t, with)
		require.Equal(t, with, without, p)
	}

	var subs []string
	err := e.LookupSubjects(ctx, r, LookupSubjectsRequest{Object: tuples.ObjectRef{Type: "flow", ID: "f04"}, Permission: "execute", SubjectType: "user"},
		func(res LookupSubjectsResult) error {
			s := res.Subject.String()
			for _, x := range res.Excluded {
				s += " -" + x.String()
			}
			subs = append(subs, s)
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, []string{"user:* -user:u07", "user:anne", "user:u04"}, subs)

	// A userset subject is in its own userset, whatever the subtracted side says.
	var own []string
	err = e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "flow", Permission: "execute",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "flow", ID: "f03"}, Relation: "execute"}},
		func(res LookupResourcesResult) error { own = append(own, res.Object.ID); return nil })
	require.NoError(t, err)
	require.Equal(t, []string{"f03"}, own)

	err = e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "flow", Permission: "execute",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}, Cursor: "garbage"},
		func(LookupResourcesResult) error { return nil })
	var ve *tuples.ValidationError
	require.ErrorAs(t, err, &ve)
	err = e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "nope", Permission: "execute",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}},
		func(LookupResourcesResult) error { return nil })
	require.ErrorIs(t, err, ErrNotFound)
}
