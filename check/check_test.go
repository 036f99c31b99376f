package check

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// designSchema is a small workflow-platform schema plus a few definitions exercising the rest
// of the language.
func designSchema() *schema.Schema {
	s := mkSchema(
		def("user",
			rel("friend", "user"),
			perm("me_or_friend", union(cu("friend"), selfRW())),
		),
		def("role", rel("member", "user", "role#member")),
		def("tenant",
			rel("parent", "tenant"),
			rel("admin", "user", "role#member"),
			rel("viewer", "user", "role#member", "user:*"),
			perm("manage", union(cu("admin"), arrow("parent", "manage"))),
			perm("view", union(cu("viewer"), cu("manage"))),
		),
		def("flow",
			rel("tenant", "tenant"),
			rel("granted", "user", "role#member", "user:*"),
			rel("denied", "user", "role#member"),
			perm("execute", excl(union(cu("granted"), arrow("tenant", "view")), cu("denied"))),
			perm("nothing", nilRW()),
		),
		def("group",
			rel("member", "user", "group#member"),
			rel("owner", "user"),
			perm("both", inter(cu("member"), cu("owner"))),
		),
		def("doc",
			rel("group", "group"),
			rel("viewer_direct", "user"),
			rel("restricted", "user", "doc#viewer"),
			perm("viewer", excl(cu("viewer_direct"), cu("restricted"))),
			perm("all_members", arrowAll("group", "member")),
			perm("any_member", arrow("group", "member")),
		),
	)
	s.UseSelf = true
	return s
}

func designTuples(t testing.TB) []tuples.Tuple {
	return mustTuples(t,
		"tenant:eu#parent@tenant:acme",
		"tenant:paris#parent@tenant:eu",
		"tenant:acme#admin@user:ada",
		"tenant:eu#viewer@role:ops#member",
		"role:ops#member@user:olga",
		"role:ops#member@role:sre#member",
		"role:sre#member@user:sam",
		"role:loop#member@role:loop#member", // a role nested in itself
		"role:loop#member@user:lou",
		"flow:f1#tenant@tenant:paris",
		"flow:f1#denied@user:sam",
		"flow:f2#granted@user:*",
		"flow:f2#denied@user:bob",
		"flow:f3#granted@role:ops#member",
		"group:a#member@group:b#member", // two groups nesting each other
		"group:b#member@group:a#member",
		"group:a#member@user:amy",
		"group:b#member@user:ben",
		"group:a#owner@user:amy",
		"group:a#owner@user:ben",
		"group:c#member@user:amy",
		"doc:1#viewer_direct@user:vic",
		"doc:1#restricted@doc:1#viewer", // a contradictory cycle
		"doc:2#viewer_direct@user:vic",
		"doc:2#restricted@user:rob",
		"doc:2#viewer_direct@user:rob",
		"doc:3#group@group:a",
		"doc:3#group@group:c",
		"doc:4#group@group:a#member", // arrows follow only the object
		"user:bob#friend@user:alice",
	)
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	cases := []struct {
		check string // object#permission@subject
		want  bool
	}{
		{"tenant:acme#manage@user:ada", true},
		{"tenant:paris#manage@user:ada", true}, // inherited down the tree
		{"tenant:paris#view@user:ada", true},
		{"tenant:eu#view@user:olga", true},
		{"tenant:eu#view@user:sam", true}, // nested role
		{"tenant:acme#view@user:sam", false},
		{"tenant:eu#view@role:ops#member", true}, // the exact userset is reachable
		{"tenant:eu#view@role:sre#member", true}, // nested userset
		{"tenant:acme#view@role:ops#member", false},
		{"role:ops#member@role:ops#member", true}, // a userset contains itself
		{"flow:f1#execute@user:ada", true},
		{"flow:f1#execute@user:olga", false}, // viewer is not inherited
		{"flow:f1#execute@user:sam", false},  // denied override
		{"flow:f1#execute@user:nobody", false},
		{"flow:f2#execute@user:anyone", true}, // wildcard
		{"flow:f2#execute@user:bob", false},
		{"flow:f2#execute@user:*", true}, // the wildcard itself is granted
		{"flow:f2#granted@role:ops#member", false},
		{"flow:f3#execute@user:sam", true},
		{"flow:f3#execute@user:*", false},
		{"flow:f1#nothing@user:ada", false},
		{"flow:f1#execute@role:unknown#member", false},
		{"role:loop#member@user:lou", true}, // self-nesting terminates
		{"role:loop#member@user:x", false},
		{"group:a#member@user:ben", true}, // mutual nesting shares members
		{"group:b#member@user:amy", true},
		{"group:a#both@user:amy", true},
		{"group:a#both@user:ben", true},
		{"group:b#both@user:amy", false},
		{"doc:1#viewer@user:vic", false}, // contradictory cycle fails closed
		{"doc:2#viewer@user:vic", true},
		{"doc:2#viewer@user:rob", false},
		{"doc:3#any_member@user:amy", true},
		{"doc:3#all_members@user:amy", true},
		{"doc:3#all_members@user:ben", false}, // not in group:c
		{"doc:3#any_member@user:ben", true},
		{"doc:4#any_member@user:ben", true},
		{"doc:5#all_members@user:amy", false}, // no subjects
		{"user:bob#me_or_friend@user:bob", true},
		{"user:bob#me_or_friend@user:alice", true},
		{"user:alice#me_or_friend@user:bob", false},
		{"user:alice#me_or_friend@user:*", false},
		{"tenant:eu#view@group:a#member", false}, // a subject type never allowed
	}
	for _, concurrency := range []int{1, 8} {
		for _, cacheBytes := range []int64{-1, 1 << 20} {
			e := New(Options{Concurrency: concurrency, CacheBytes: cacheBytes})
			if concurrency == 1 {
				e.smallRelation = 0 // the general path: probes and userset scans
			}
			for round := 0; round < 2; round++ { // the second round hits the cache
				for _, tc := range cases {
					req := parseCheck(t, tc.check)
					res, err := e.Check(ctx, r, req)
					require.NoError(t, err, tc.check)
					require.Equal(t, tc.want, res.Allowed, "%s (concurrency %d, cache %d)", tc.check, concurrency, cacheBytes)
					req.Explain = true
					res, err = e.Check(ctx, r, req)
					require.NoError(t, err, tc.check)
					require.Equal(t, tc.want, res.Allowed, "explained %s", tc.check)
					require.NotNil(t, res.Explanation)
					require.Equal(t, tc.want, res.Explanation.Result)
				}
			}
		}
	}
}

func parseCheck(t testing.TB, s string) CheckRequest {
	t.Helper()
	tp, err := tuples.ParseTuple(s)
	require.NoError(t, err, s)
	return CheckRequest{Object: tp.Object, Permission: tp.Relation, Subject: tp.Subject}
}

func TestCheckErrors(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	e := New(Options{})
	cases := []struct {
		check string
		want  string
	}{
		{"nope:x#view@user:a", `object: unknown type "nope"`},
		{"tenant:x#nope@user:a", `permission: type "tenant" has no relation or permission "nope"`},
		{"tenant:x#view@nope:a", `subject: unknown type "nope"`},
		{"tenant:x#view@role:a#nope", `subject: type "role" has no relation or permission "nope"`},
	}
	for _, tc := range cases {
		_, err := e.Check(ctx, r, parseCheck(t, tc.check))
		require.ErrorIs(t, err, ErrNotFound)
		require.EqualError(t, err, tc.want)
	}
}

func TestCheckContradictoryCycleExplained(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	e := New(Options{})
	req := parseCheck(t, "doc:1#viewer@user:vic")
	req.Explain = true
	res, err := e.Check(ctx, r, req)
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, "contradictory cycle", res.Explanation.Note)
}

func TestCheckMaxDepth(t *testing.T) {
	ctx := context.Background()
	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, "tenant:t"+itoa(i+1)+"#parent@tenant:t"+itoa(i))
	}
	lines = append(lines, "tenant:t00#admin@user:root")
	r := newReader(t, designSchema(), mustTuples(t, lines...))
	// With the cache too: the answers cached for t40's chain were computed shallower
	// than the walk from t60 reaches them, so they do not cut it short.
	for _, cacheBytes := range []int64{-1, 0} {
		e := New(Options{CacheBytes: cacheBytes})
		res, err := e.Check(ctx, r, parseCheck(t, "tenant:t40#manage@user:root"))
		require.NoError(t, err)
		require.True(t, res.Allowed)
		_, err = e.Check(ctx, r, parseCheck(t, "tenant:t60#manage@user:root"))
		require.ErrorIs(t, err, ErrMaxDepth, "cache %d", cacheBytes)
		var de *MaxDepthError
		require.True(t, errors.As(err, &de))
		require.Equal(t, 50, de.Limit)
		require.Len(t, de.Path, 51)
		require.Equal(t, "tenant:t60#manage", de.Path[0])
		require.Contains(t, err.Error(), "max depth exceeded")
		// And t40 still answers from wherever it is cached.
		res, err = e.Check(ctx, r, parseCheck(t, "tenant:t40#manage@user:root"))
		require.NoError(t, err)
		require.True(t, res.Allowed)
	}
}

func itoa(i int) string {
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

// TestCheckMaxDepthNestedUsersets: a chain of nested usersets longer than the limit is
// a depth error on the paths that need it (the answer through the reverse-index
// membership walk is never a silent false), and so is LookupResources over it.
func TestCheckMaxDepthNestedUsersets(t *testing.T) {
	ctx := context.Background()
	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, "group:g"+itoa(i)+"#member@group:g"+itoa(i+1)+"#member")
	}
	lines = append(lines, "group:g60#member@user:deep", "group:g05#member@user:shallow")
	r := newReader(t, designSchema(), mustTuples(t, lines...))
	e := New(Options{CacheBytes: -1})

	res, err := e.Check(ctx, r, parseCheck(t, "group:g00#member@user:shallow"))
	require.NoError(t, err)
	require.True(t, res.Allowed)

	for _, explain := range []bool{false, true} {
		req := parseCheck(t, "group:g00#member@user:deep")
		req.Explain = explain
		_, err = e.Check(ctx, r, req)
		require.ErrorIs(t, err, ErrMaxDepth, "explain=%v", explain)
		require.Contains(t, err.Error(), "group:g10#member")
	}

	err = e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "group", Permission: "member",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "deep"}}},
		func(LookupResourcesResult) error { return nil })
	require.ErrorIs(t, err, ErrMaxDepth)
}
