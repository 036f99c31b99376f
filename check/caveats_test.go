package check

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// caveatSchema holds the shapes of SpiceDB's caveat advisories.
const caveatSchema = `definition user {}
caveat is_tuesday(day string) { day == "tuesday" }
caveat on_net(ip ipaddress, cidr string) { ip.in_cidr(cidr) }
caveat equals(actual string, required string) { actual == required }
caveat in_list(l list<list<string>>, want string) { l.exists(x, want in x) }
definition office {
	relation parent: office
	relation manager: user
	permission read = manager + parent->read
}
definition group {
	relation parent: office
	permission read = parent->read
}
definition doc {
	relation viewer: user | user with is_tuesday | user with on_net | user:* with is_tuesday
	relation editor: user | user with on_net
	relation banned: user | user with is_tuesday
	relation owner: group with equals
	relation listed: user with in_list
	permission both = viewer & editor
	permission not_banned = viewer - banned
	permission read = owner->read
	permission listed_view = listed
}`

func caveatReader(t *testing.T, lines ...string) tuples.Reader {
	t.Helper()
	s, err := schema.Compile("test", []byte(caveatSchema))
	require.NoError(t, err)
	return newReader(t, s, mustTuples(t, lines...))
}

type triple struct {
	allowed, conditional bool
	missing              []string
}

func checkTriple(t *testing.T, e *Engine, r tuples.Reader, object, perm, subject string, c map[string]any) triple {
	t.Helper()
	obj, err := tuples.ParseObject(object)
	require.NoError(t, err)
	sub, err := tuples.ParseSubject(subject)
	require.NoError(t, err)
	res, err := e.Check(context.Background(), r, CheckRequest{Object: obj, Permission: perm, Subject: sub, Context: c})
	require.NoError(t, err)
	if res.Conditional {
		require.False(t, res.Allowed, "allowed must be false when conditional")
	}
	return triple{res.Allowed, res.Conditional, res.MissingContext}
}

var (
	yes = triple{allowed: true}
	no  = triple{}
)

func maybe(missing ...string) triple { return triple{conditional: true, missing: missing} }

// TestCaveatAdvisories covers the shapes of SpiceDB's caveat advisories, with and
// without the shared cache.
func TestCaveatAdvisories(t *testing.T) {
	r := caveatReader(t,
		`doc:1#viewer@user:anne[is_tuesday]`,
		`doc:1#editor@user:anne`,
		`doc:1#viewer@user:bob`,
		`doc:1#editor@user:bob[on_net:{"cidr":"10.0.0.0/8"}]`,
		`doc:1#viewer@user:carl`,
		`doc:1#banned@user:carl[is_tuesday]`,
		`doc:1#viewer@user:*[is_tuesday]`,
		`doc:2#viewer@user:dora[on_net:{"cidr":"192.168.0.0/16"}]`,
		`office:head#manager@user:maria`,
		`office:branch#parent@office:head`,
		`group:admins#parent@office:branch`,
		`group:managers#parent@office:head`,
		`doc:3#owner@group:admins[equals:{"required":"admin"}]`,
		`doc:3#owner@group:managers[equals:{"required":"manager"}]`,
		`doc:4#listed@user:eve[in_list:{"want":"x"}]`,
	)
	tests := []struct {
		name                  string
		object, perm, subject string
		context               map[string]any
		want                  triple
	}{
		// GHSA-4vrg-r928-h5vv: no unconditional answer from a caveated branch under
		// intersection or exclusion.
		{"intersection with a caveated branch", "doc:1", "both", "user:anne", nil, maybe("day")},
		{"intersection, caveat true", "doc:1", "both", "user:anne", map[string]any{"day": "tuesday"}, yes},
		{"intersection, caveat false", "doc:1", "both", "user:anne", map[string]any{"day": "monday"}, no},
		{"intersection, other caveat", "doc:1", "both", "user:bob", nil, maybe("ip")},
		{"exclusion with a caveated subtraction", "doc:1", "not_banned", "user:carl", nil, maybe("day")},
		{"exclusion, subtraction true", "doc:1", "not_banned", "user:carl", map[string]any{"day": "tuesday"}, no},
		{"exclusion, subtraction false", "doc:1", "not_banned", "user:carl", map[string]any{"day": "monday"}, yes},
		{"exclusion with a caveated base", "doc:1", "not_banned", "user:anne", nil, maybe("day")},
		{"caveated wildcard", "doc:1", "not_banned", "user:zed", map[string]any{"day": "tuesday"}, yes},
		// GHSA-cwwm-hr97-qfxm: caveated branches meeting through an arrow.
		{"arrow, first branch", "doc:3", "read", "user:maria", map[string]any{"actual": "admin"}, yes},
		{"arrow, second branch", "doc:3", "read", "user:maria", map[string]any{"actual": "manager"}, yes},
		{"arrow, neither", "doc:3", "read", "user:maria", map[string]any{"actual": "other"}, no},
		{"arrow, no context", "doc:3", "read", "user:maria", nil, maybe("actual")},
		// GO-2024-3131: several caveats on resources of one type.
		{"resource one caveat", "doc:1", "both", "user:bob", map[string]any{"ip": "10.1.1.1"}, yes},
		{"resource two caveat", "doc:2", "viewer", "user:dora", map[string]any{"ip": "10.1.1.1"}, no},
		{"resource two caveat true", "doc:2", "viewer", "user:dora", map[string]any{"ip": "192.168.1.1"}, yes},
		// GO-2026-5514: nested lists in contexts are not confused by the cache.
		{"nested list a", "doc:4", "listed_view", "user:eve", map[string]any{"l": []any{[]any{"x"}}}, yes},
		{"nested list b", "doc:4", "listed_view", "user:eve", map[string]any{"l": []any{[]any{"y"}}}, no},
		{"nested list a again", "doc:4", "listed_view", "user:eve", map[string]any{"l": []any{[]any{"y", "x"}}}, yes},
	}
	for _, cached := range []bool{false, true} {
		opts := Options{CacheBytes: -1}
		if cached {
			opts = Options{}
		}
		e := New(opts)
		for round := 0; round < 2; round++ { // the second round may answer from the cache
			for _, tc := range tests {
				got := checkTriple(t, e, r, tc.object, tc.perm, tc.subject, tc.context)
				require.Equal(t, tc.want, got, "%s (cached %t, round %d)", tc.name, cached, round)
			}
		}
	}
}

// TestCaveatLookups: lookups report conditional results with their missing context,
// and none when the context given decides (CVE-2024-48909).
func TestCaveatLookups(t *testing.T) {
	r := caveatReader(t,
		`doc:1#viewer@user:anne[is_tuesday]`,
		`doc:2#viewer@user:anne`,
		`doc:3#viewer@user:anne[on_net:{"cidr":"10.0.0.0/8"}]`,
		`doc:1#viewer@user:bob`,
	)
	e := New(Options{})
	ctx := context.Background()
	type res struct {
		id      string
		cond    bool
		missing []string
	}
	lr := func(c map[string]any) []res {
		var out []res
		err := e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "doc", Permission: "viewer",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}, Context: c},
			func(x LookupResourcesResult) error {
				out = append(out, res{x.Object.ID, x.Conditional, x.MissingContext})
				return nil
			})
		require.NoError(t, err)
		return out
	}
	require.Equal(t, []res{{"1", true, []string{"day"}}, {"2", false, nil}, {"3", true, []string{"ip"}}}, lr(nil))
	require.Equal(t, []res{{"1", false, nil}, {"2", false, nil}}, lr(map[string]any{"day": "tuesday", "ip": "1.2.3.4"}))
	var subs []res
	err := e.LookupSubjects(ctx, r, LookupSubjectsRequest{Object: tuples.ObjectRef{Type: "doc", ID: "1"}, Permission: "viewer", SubjectType: "user"},
		func(x LookupSubjectsResult) error {
			subs = append(subs, res{x.Subject.Object.ID, x.Conditional, x.MissingContext})
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, []res{{"anne", true, []string{"day"}}, {"bob", false, nil}}, subs)
}

// TestCaveatContextErrors: a request value of the wrong type names the caveat and
// parameter.
func TestCaveatContextErrors(t *testing.T) {
	r := caveatReader(t, `doc:2#viewer@user:dora[on_net:{"cidr":"192.168.0.0/16"}]`)
	e := New(Options{})
	_, err := e.Check(context.Background(), r, CheckRequest{Object: tuples.ObjectRef{Type: "doc", ID: "2"}, Permission: "viewer",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "dora"}}, Context: map[string]any{"ip": 12.0}})
	var ce *schema.ContextError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "on_net", ce.Caveat)
	require.Equal(t, "ip", ce.Param)
}

// minimalSchema has caveated relations whose conditions overlap.
const minimalSchema = `definition user {}
caveat cx(x int) { x == 1 }
caveat cy(y int) { y == 1 }
caveat cxy(x int, y int) { x == 1 && y == 1 }
definition doc {
	relation a: user with cx
	relation a2: user with cx
	relation b: user with cxy
	relation c: user with cy
	relation banned: user with cx
	permission a_or_b = a + b
	permission a_or_a2_and_c = a + (a2 & c)
	permission a_or_c = a + c
	permission a_and_a2 = a & a2
	permission a_and_c = a & c
	permission a_not_banned = a - banned
	permission a_or_a2_not_banned = (a + a2) - banned
	permission c_not_banned = c - banned
}`

// TestMissingContextMinimal: missing_context lists exactly the parameters whose
// absence leaves the answer open, not every parameter a conditional
// branch lacked: branches with the same caveat and stored context are one condition,
// so `a + b` where b implies a needs only a's parameters, and `a - banned` under one
// condition is false whatever the context.
func TestMissingContextMinimal(t *testing.T) {
	s, err := schema.Compile("test", []byte(minimalSchema))
	require.NoError(t, err)
	r := newReader(t, s, mustTuples(t,
		`doc:1#a@user:anne[cx]`,
		`doc:1#a2@user:anne[cx]`,
		`doc:1#b@user:anne[cxy]`,
		`doc:1#c@user:anne[cy]`,
		`doc:1#banned@user:anne[cx]`,
		`doc:2#a@user:anne[cx]`,
		`doc:2#banned@user:anne[cx:{"x":2}]`,
		`doc:2#b@user:anne[cxy:{"y":1}]`,
	))
	tests := []struct {
		name    string
		object  string
		perm    string
		context map[string]any
		want    triple
	}{
		{"x or (x and y) needs x only", "doc:1", "a_or_a2_and_c", nil, maybe("x")},
		{"x or (x and y), y given false", "doc:1", "a_or_a2_and_c", map[string]any{"y": 0}, maybe("x")},
		{"x or (x and y), x given", "doc:1", "a_or_a2_and_c", map[string]any{"x": 1}, yes},
		{"different caveats are different conditions", "doc:1", "a_or_b", nil, maybe("x", "y")},
		{"independent branches need both", "doc:1", "a_or_c", nil, maybe("x", "y")},
		{"independent branches, one decided false", "doc:1", "a_or_c", map[string]any{"y": 0}, maybe("x")},
		{"one condition twice under intersection", "doc:1", "a_and_a2", nil, maybe("x")},
		{"intersection of independent conditions", "doc:1", "a_and_c", nil, maybe("x", "y")},
		{"a - banned under one condition is false", "doc:1", "a_not_banned", nil, no},
		{"(a + a2) - banned under one condition is false", "doc:1", "a_or_a2_not_banned", nil, no},
		{"c - banned needs both", "doc:1", "c_not_banned", nil, maybe("x", "y")},
		{"banned decided by its stored context", "doc:2", "a_not_banned", nil, maybe("x")},
		{"stored context makes b the same condition as a", "doc:2", "a_or_b", nil, maybe("x")},
	}
	for _, cached := range []bool{false, true} {
		opts := Options{CacheBytes: -1}
		if cached {
			opts = Options{}
		}
		e := New(opts)
		for round := 0; round < 2; round++ {
			for _, tc := range tests {
				got := checkTriple(t, e, r, tc.object, tc.perm, "user:anne", tc.context)
				require.Equal(t, tc.want, got, "%s (cached %t, round %d)", tc.name, cached, round)
			}
		}
	}
	// Lookups report the same narrowed answers.
	e := New(Options{})
	var got []string
	err = e.LookupResources(context.Background(), r, LookupResourcesRequest{ResourceType: "doc", Permission: "a_or_a2_not_banned",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}},
		func(x LookupResourcesResult) error {
			got = append(got, fmt.Sprintf("%s %t %v", x.Object.ID, x.Conditional, x.MissingContext))
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, []string{"2 true [x]"}, got)
}

// TestCacheContext: answers that read no caveated tuple are shared whatever the
// context; answers that did are shared between requests that give the same values of
// the parameters they can read, and only those.
func TestCacheContext(t *testing.T) {
	s, err := schema.Compile("test", []byte(minimalSchema+`
definition folder {
	relation viewer: user
	permission view = viewer
}`))
	require.NoError(t, err)
	r := newReader(t, s, mustTuples(t,
		`doc:1#a@user:anne[cx]`,
		`doc:1#c@user:anne[cy]`,
		`folder:1#viewer@user:anne`,
	))
	e := New(Options{Concurrency: 1})
	check := func(object, perm string, c map[string]any) (triple, CacheStats) {
		before := e.CacheStats()
		got := checkTriple(t, e, r, object, perm, "user:anne", c)
		after := e.CacheStats()
		return got, CacheStats{Hits: after.Hits - before.Hits, Misses: after.Misses - before.Misses}
	}
	// No caveat read: one entry for every context.
	got, st := check("folder:1", "view", map[string]any{"x": 1})
	require.Equal(t, yes, got)
	require.Zero(t, st.Hits)
	got, st = check("folder:1", "view", map[string]any{"x": 2, "other": []any{[]any{"a"}}})
	require.Equal(t, yes, got)
	require.Equal(t, uint64(1), st.Hits, "an answer that read no caveat must hit whatever the context")
	got, st = check("folder:1", "view", nil)
	require.Equal(t, yes, got)
	require.Equal(t, uint64(1), st.Hits)

	// A caveated answer, decided by the context: cached by x only (a reads cx).
	got, st = check("doc:1", "a", map[string]any{"x": 1, "y": 0})
	require.Equal(t, yes, got)
	require.Zero(t, st.Hits)
	got, st = check("doc:1", "a", map[string]any{"x": 1, "y": 1, "z": "other"})
	require.Equal(t, yes, got)
	require.Equal(t, uint64(1), st.Hits, "values of parameters a cannot read must not split its entry")
	got, st = check("doc:1", "a", map[string]any{"x": 2})
	require.Equal(t, no, got)
	require.Zero(t, st.Hits, "another value of x is another entry")
	got, st = check("doc:1", "a", map[string]any{"x": 2})
	require.Equal(t, no, got)
	require.Equal(t, uint64(1), st.Hits)
	// Conditional answers are not shared (their condition is request-local), and
	// never reused for a context that decides.
	got, _ = check("doc:1", "a", nil)
	require.Equal(t, maybe("x"), got)
	got, _ = check("doc:1", "a", nil)
	require.Equal(t, maybe("x"), got)
	got, _ = check("doc:1", "a", map[string]any{"x": 1})
	require.Equal(t, yes, got)
	// a + c reads both parameters.
	got, _ = check("doc:1", "a_or_c", map[string]any{"x": 2, "y": 2})
	require.Equal(t, no, got)
	got, _ = check("doc:1", "a_or_c", map[string]any{"x": 2, "y": 1})
	require.Equal(t, yes, got, "a different y must not hit a + c's entry")
}
