package tuplestest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// T parses a tuple in text form or fails the test.
func T(t testing.TB, text string) tuples.Tuple {
	t.Helper()
	tup, err := tuples.ParseTuple(text)
	require.NoError(t, err, text)
	return tup
}

// Updates builds updates of one operation from tuples in text form.
func Updates(t testing.TB, op tuples.Operation, texts ...string) []tuples.Update {
	t.Helper()
	us := make([]tuples.Update, len(texts))
	for i, s := range texts {
		us[i] = tuples.Update{Op: op, Tuple: T(t, s)}
	}
	return us
}

// Write writes updates of one operation and returns the revision, failing the test
// on error.
func Write(t testing.TB, s tuples.Store, op tuples.Operation, texts ...string) tuples.Revision {
	t.Helper()
	rev, err := s.Write(context.Background(), tuples.WriteRequest{Updates: Updates(t, op, texts...)})
	require.NoError(t, err)
	return rev
}

// Reader returns the reader at rev, failing the test on error.
func Reader(t testing.TB, s tuples.Store, rev tuples.Revision) tuples.Reader {
	t.Helper()
	r, err := s.ReaderAt(context.Background(), rev)
	require.NoError(t, err)
	return r
}

// Strings drains a tuple iterator into text forms, failing the test on error.
func Strings(t testing.TB, seq func(func(tuples.Tuple, error) bool)) []string {
	t.Helper()
	out := []string{}
	for tup, err := range seq {
		require.NoError(t, err)
		out = append(out, tup.String())
	}
	return out
}

// Contains reports whether the tuple in text form is live in r.
func Contains(t testing.TB, r tuples.Reader, text string) bool {
	t.Helper()
	ok, err := r.Contains(context.Background(), T(t, text))
	require.NoError(t, err)
	return ok
}

func head(t testing.TB, s tuples.Store) tuples.Revision {
	t.Helper()
	rev, err := s.HeadRevision(context.Background())
	require.NoError(t, err)
	return rev
}

func all(t testing.TB, s tuples.Store) []string {
	t.Helper()
	return Strings(t, Reader(t, s, head(t, s)).Read(context.Background(), tuples.Filter{}, nil))
}

func changes(t testing.TB, s tuples.Store, after tuples.Revision) []string {
	t.Helper()
	out := []string{}
	for c, err := range s.Changes(context.Background(), after) {
		require.NoError(t, err)
		out = append(out, fmt.Sprintf("%d %s %s", c.Revision, c.Op, c.Tuple))
	}
	return out
}

func testEmpty(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	require.Equal(t, tuples.Revision(0), head(t, s))
	r := Reader(t, s, 0)
	require.Equal(t, tuples.Revision(0), r.Revision())
	require.False(t, Contains(t, r, "flow:f1#granted@user:anne"))
	require.Empty(t, Strings(t, r.Read(ctx, tuples.Filter{}, nil)))
	_, _, err := r.Schema(ctx)
	require.ErrorIs(t, err, tuples.ErrNoSchema)
	_, err = s.ReaderAt(ctx, 1)
	require.ErrorIs(t, err, tuples.ErrRevisionInFuture)
	require.Empty(t, changes(t, s, 0))
}

func testCreateTouchDelete(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	const anne = "flow:f1#granted@user:anne"
	r1 := Write(t, s, tuples.OpCreate, anne)
	require.Equal(t, r1, head(t, s))
	require.True(t, Contains(t, Reader(t, s, r1), anne))
	require.False(t, Contains(t, Reader(t, s, r1-1), anne))

	// CREATE of a live tuple fails with the tuple and changes nothing.
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: Updates(t, tuples.OpCreate, anne)})
	var exists *tuples.AlreadyExistsError
	require.ErrorAs(t, err, &exists)
	require.Equal(t, T(t, anne), exists.Tuple)
	require.Equal(t, r1, head(t, s))

	// TOUCH is idempotent and still makes a revision.
	r2 := Write(t, s, tuples.OpTouch, anne)
	require.Greater(t, r2, r1)
	require.True(t, Contains(t, Reader(t, s, r2), anne))

	// DELETE removes it from later revisions only.
	r3 := Write(t, s, tuples.OpDelete, anne)
	require.Greater(t, r3, r2)
	require.False(t, Contains(t, Reader(t, s, r3), anne))
	require.True(t, Contains(t, Reader(t, s, r2), anne))

	// DELETE of a missing tuple is a no-op that succeeds.
	r4 := Write(t, s, tuples.OpDelete, anne, "flow:f1#granted@user:nobody")
	require.Greater(t, r4, r3)

	// CREATE after DELETE works, and history stays exact.
	r5 := Write(t, s, tuples.OpCreate, anne)
	for rev, want := range map[tuples.Revision]bool{0: false, r1: true, r2: true, r3: false, r4: false, r5: true} {
		require.Equal(t, want, Contains(t, Reader(t, s, rev), anne), "at %d", rev)
	}
	require.Equal(t, []string{anne}, all(t, s))
}

func testAtomicity(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	r1 := Write(t, s, tuples.OpCreate, "flow:f1#granted@user:anne")
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{
		{Op: tuples.OpTouch, Tuple: T(t, "flow:f1#granted@user:bob")},
		{Op: tuples.OpDelete, Tuple: T(t, "flow:f1#granted@user:anne")},
		{Op: tuples.OpCreate, Tuple: T(t, "flow:f1#granted@user:anne")},
	}})
	require.Error(t, err) // duplicate tuple in one request
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{
		{Op: tuples.OpTouch, Tuple: T(t, "flow:f1#granted@user:bob")},
		{Op: tuples.OpCreate, Tuple: T(t, "flow:f1#granted@user:anne")},
	}})
	var exists *tuples.AlreadyExistsError
	require.ErrorAs(t, err, &exists)
	require.Equal(t, r1, head(t, s))
	require.Equal(t, []string{"flow:f1#granted@user:anne"}, all(t, s))

	// A batch of mixed operations lands at one revision.
	r2 := Write(t, s, tuples.OpTouch, "flow:f1#granted@user:bob", "flow:f1#granted@user:carl", "flow:f2#granted@role:ops#member")
	require.Equal(t, r1+1, r2)
	require.Len(t, all(t, s), 4)
	require.Len(t, Strings(t, Reader(t, s, r1).Read(ctx, tuples.Filter{}, nil)), 1)
}

func testValidation(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	good := T(t, "flow:f1#granted@user:anne")
	bad := good
	bad.Subject.Object.ID = "a b"
	for _, tc := range []struct {
		name  string
		req   tuples.WriteRequest
		field string
	}{
		{"bad subject id", tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: good}, {Op: tuples.OpTouch, Tuple: bad}}}, "updates[1].tuple.subject.object.id"},
		{"duplicate", tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: good}, {Op: tuples.OpDelete, Tuple: good}}}, "updates[1].tuple"},
		{"bad relation", tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuples.Tuple{Object: good.Object, Relation: "Granted", Subject: good.Subject}}}}, "updates[0].tuple.relation"},
		{"wildcard object", tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuples.Tuple{Object: tuples.ObjectRef{Type: "flow", ID: "*"}, Relation: "r", Subject: good.Subject}}}}, "updates[0].tuple.object.id"},
		{"bad precondition", tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: good}}, Preconditions: []tuples.Precondition{{Filter: tuples.Filter{ObjectType: "Flow"}}}}, "preconditions[0].filter.object_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Write(ctx, tc.req)
			var verr *tuples.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.field, verr.Field)
			require.Equal(t, tuples.Revision(0), head(t, s))
		})
	}
	_, _, err := s.DeleteMatching(ctx, tuples.Filter{ObjectID: "a b"}, nil)
	var verr *tuples.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Empty(t, all(t, s))
}

func testPreconditions(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	Write(t, s, tuples.OpCreate, "flow:f1#granted@user:anne", "flow:f1#denied@user:bob")
	before := head(t, s)
	carl := Updates(t, tuples.OpTouch, "flow:f1#granted@user:carl")

	mustNot := tuples.Precondition{Op: tuples.MustNotMatch, Filter: tuples.Filter{ObjectType: "flow", Relation: "denied"}}
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{mustNot}})
	var perr *tuples.PreconditionError
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "flow:f1#denied@user:bob", perr.Tuple.String())

	must := tuples.Precondition{Op: tuples.MustMatch, Filter: tuples.Filter{SubjectType: "user", SubjectID: "zed"}}
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{must}})
	require.ErrorAs(t, err, &perr)
	require.Equal(t, tuples.MustMatch, perr.Precondition.Op)
	require.Equal(t, before, head(t, s))

	// Passing preconditions: the write lands.
	ok := []tuples.Precondition{
		{Op: tuples.MustMatch, Filter: tuples.Filter{SubjectID: "anne"}},
		{Op: tuples.MustNotMatch, Filter: tuples.Filter{ObjectType: "flow", ObjectID: "f1", Relation: "granted", SubjectType: "user", SubjectID: "carl"}},
	}
	rev, err := s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: ok})
	require.NoError(t, err)
	require.True(t, Contains(t, Reader(t, s, rev), "flow:f1#granted@user:carl"))

	// A precondition sees the state before the write it guards, not after.
	_, err = s.Write(ctx, tuples.WriteRequest{
		Updates:       Updates(t, tuples.OpTouch, "flow:f9#granted@user:dan"),
		Preconditions: []tuples.Precondition{{Op: tuples.MustMatch, Filter: tuples.Filter{ObjectID: "f9"}}},
	})
	require.ErrorAs(t, err, &perr)

	// Deleted tuples do not satisfy MustMatch.
	Write(t, s, tuples.OpDelete, "flow:f1#denied@user:bob")
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{{Op: tuples.MustMatch, Filter: tuples.Filter{Relation: "denied"}}}})
	require.ErrorAs(t, err, &perr)
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{mustNot}})
	require.NoError(t, err)

	// NoWildcard: a guard against plain users (the orphan check of a schema that drops
	// `user` but keeps `user:*`) passes when only the wildcard is stored.
	Write(t, s, tuples.OpTouch, "flow:f3#granted@user:*")
	plain := tuples.Filter{ObjectType: "flow", ObjectID: "f3", Relation: "granted", SubjectType: "user", SubjectRelation: tuples.Ellipsis}
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: plain}}})
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "flow:f3#granted@user:*", perr.Tuple.String())
	plain.NoWildcard = true
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: plain}}})
	require.NoError(t, err)
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: carl, Preconditions: []tuples.Precondition{{Op: tuples.MustMatch, Filter: plain}}})
	require.ErrorAs(t, err, &perr)
}

func testSnapshotIsolation(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	r1 := Write(t, s, tuples.OpTouch, "role:ops#member@user:anne", "role:ops#member@user:bob", "flow:f1#granted@role:ops#member")
	old := Reader(t, s, r1)
	Write(t, s, tuples.OpDelete, "role:ops#member@user:anne")
	Write(t, s, tuples.OpTouch, "role:ops#member@user:carl", "flow:f2#granted@role:ops#member")
	_, _, err := s.DeleteMatching(ctx, tuples.Filter{ObjectType: "flow", ObjectID: "f1"}, nil)
	require.NoError(t, err)

	require.True(t, Contains(t, old, "role:ops#member@user:anne"))
	require.False(t, Contains(t, old, "role:ops#member@user:carl"))
	require.Equal(t, []string{"role:ops#member@user:anne", "role:ops#member@user:bob"},
		Strings(t, old.Subjects(ctx, tuples.ObjectRef{Type: "role", ID: "ops"}, "member", "")))
	ops := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "role", ID: "ops"}, Relation: "member"}
	require.Equal(t, []string{"flow:f1#granted@role:ops#member"}, Strings(t, old.Objects(ctx, ops, "flow", "granted")))
	require.Len(t, Strings(t, old.Read(ctx, tuples.Filter{}, nil)), 3)

	now := Reader(t, s, head(t, s))
	require.Equal(t, []string{"role:ops#member@user:bob", "role:ops#member@user:carl"},
		Strings(t, now.Subjects(ctx, tuples.ObjectRef{Type: "role", ID: "ops"}, "member", "")))
	require.Equal(t, []string{"flow:f2#granted@role:ops#member"}, Strings(t, now.Objects(ctx, ops, "flow", "granted")))
}

func testSubjectsObjectsOrder(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	Write(t, s, tuples.OpTouch,
		"flow:f1#granted@user:bob", "flow:f1#granted@user:anne", "flow:f1#granted@role:ops#member",
		"flow:f1#granted@role:ops", "flow:f1#granted@user:*", "flow:f1#granted@role:dev#member",
		"flow:f1#denied@user:carl", "flow:f10#granted@user:anne", "flow:f2#granted@user:anne",
		"flow:f0#granted@user:anne", "flow:f2#denied@user:anne", "tenant:t#granted@user:anne",
		"flow:f3#granted@user:anne#member")
	r := Reader(t, s, head(t, s))
	f1 := tuples.ObjectRef{Type: "flow", ID: "f1"}
	require.Equal(t, []string{
		"flow:f1#granted@role:dev#member", "flow:f1#granted@role:ops", "flow:f1#granted@role:ops#member",
		"flow:f1#granted@user:*", "flow:f1#granted@user:anne", "flow:f1#granted@user:bob",
	}, Strings(t, r.Subjects(ctx, f1, "granted", "")))
	require.Equal(t, []string{"flow:f1#granted@user:*", "flow:f1#granted@user:anne", "flow:f1#granted@user:bob"},
		Strings(t, r.Subjects(ctx, f1, "granted", "user")))
	require.Empty(t, Strings(t, r.Subjects(ctx, f1, "viewer", "")))
	require.Empty(t, Strings(t, r.Subjects(ctx, tuples.ObjectRef{Type: "flow", ID: "f"}, "granted", "")))

	anne := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}
	require.Equal(t, []string{"flow:f0#granted@user:anne", "flow:f1#granted@user:anne", "flow:f10#granted@user:anne", "flow:f2#granted@user:anne"},
		Strings(t, r.Objects(ctx, anne, "flow", "granted")))
	require.Equal(t, []string{"flow:f3#granted@user:anne#member"},
		Strings(t, r.Objects(ctx, tuples.SubjectRef{Object: anne.Object, Relation: "member"}, "flow", "granted")))
	star := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "*"}}
	require.Equal(t, []string{"flow:f1#granted@user:*"}, Strings(t, r.Objects(ctx, star, "flow", "granted")))

	// ObjectsAfter, where the store has it, starts strictly after an object id.
	if ar, ok := r.(tuples.ObjectsAfterReader); ok {
		for after, want := range map[string][]string{
			"":    {"flow:f0#granted@user:anne", "flow:f1#granted@user:anne", "flow:f10#granted@user:anne", "flow:f2#granted@user:anne"},
			"f0":  {"flow:f1#granted@user:anne", "flow:f10#granted@user:anne", "flow:f2#granted@user:anne"},
			"f1":  {"flow:f10#granted@user:anne", "flow:f2#granted@user:anne"},
			"f10": {"flow:f2#granted@user:anne"},
			"f15": {"flow:f2#granted@user:anne"},
			"f2":  nil,
		} {
			got := Strings(t, ar.ObjectsAfter(ctx, anne, "flow", "granted", after))
			if want == nil {
				require.Empty(t, got, "after %q", after)
				continue
			}
			require.Equal(t, want, got, "after %q", after)
		}
	}

	// SubjectsAfter, where the store has it, starts strictly after a subject id: the
	// usersets and the wildcard of that type come in id order too.
	if sr, ok := r.(tuples.SubjectsAfterReader); ok {
		for after, want := range map[string][]string{
			"":     {"flow:f1#granted@role:dev#member", "flow:f1#granted@role:ops", "flow:f1#granted@role:ops#member"},
			"d":    {"flow:f1#granted@role:dev#member", "flow:f1#granted@role:ops", "flow:f1#granted@role:ops#member"},
			"dev":  {"flow:f1#granted@role:ops", "flow:f1#granted@role:ops#member"},
			"dev0": {"flow:f1#granted@role:ops", "flow:f1#granted@role:ops#member"},
			"ops":  nil,
		} {
			got := Strings(t, sr.SubjectsAfter(ctx, f1, "granted", "role", after))
			if want == nil {
				require.Empty(t, got, "after %q", after)
				continue
			}
			require.Equal(t, want, got, "after %q", after)
		}
		require.Equal(t, []string{"flow:f1#granted@user:anne", "flow:f1#granted@user:bob"},
			Strings(t, sr.SubjectsAfter(ctx, f1, "granted", "user", "*")))
		require.Equal(t, []string{"flow:f1#granted@user:bob"}, Strings(t, sr.SubjectsAfter(ctx, f1, "granted", "user", "anne")))
		require.Empty(t, Strings(t, sr.SubjectsAfter(ctx, f1, "granted", "user", "bob")))
		require.Empty(t, Strings(t, sr.SubjectsAfter(ctx, f1, "denied", "user", "carl")))
	}
}

func testReadFilters(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	texts := []string{
		"flow:f1#granted@user:anne", "flow:f1#granted@role:ops#member", "flow:f1#denied@user:bob",
		"flow:f2#granted@user:anne", "flow:f2#granted@user:*", "tenant:acme#admin@user:anne",
		"tenant:acme#viewer@role:ops#member", "role:ops#member@user:anne", "acme/flow:x#granted@acme/user:y",
		"tenant:acme#viewer@role:ops", "acme/flow:x#granted@user:anne", "flow:f1#granted@user:anne#member",
	}
	Write(t, s, tuples.OpTouch, texts...)
	r := Reader(t, s, head(t, s))
	for _, f := range []tuples.Filter{
		{},
		{ObjectType: "flow"},
		{ObjectType: "flow", ObjectID: "f1"},
		{ObjectType: "flow", Relation: "granted"},
		{Relation: "granted"},
		{SubjectType: "user"},
		{SubjectType: "user", SubjectID: "anne"},
		{SubjectID: "anne"},
		{SubjectType: "role", SubjectID: "ops", SubjectRelation: "member"},
		{SubjectType: "role", SubjectID: "ops"},
		{SubjectType: "user", SubjectID: "anne", Relation: "granted"},
		{SubjectType: "user", SubjectID: "anne", SubjectRelation: tuples.Ellipsis},
		{SubjectType: "user", SubjectID: "anne", ObjectID: "f2"},
		{SubjectType: "user", SubjectID: "*"},
		{SubjectType: "user", SubjectRelation: tuples.Ellipsis, NoWildcard: true},
		{ObjectType: "flow", Relation: "granted", SubjectType: "user", NoWildcard: true},
		{SubjectType: "user", SubjectID: "*", NoWildcard: true},
		{SubjectRelation: tuples.Ellipsis},
		{SubjectRelation: "member"},
		{ObjectType: "flow", SubjectRelation: tuples.Ellipsis},
		{ObjectType: "tenant", ObjectID: "acme", Relation: "viewer", SubjectType: "role", SubjectID: "ops", SubjectRelation: "member"},
		{ObjectType: "nothing"},
		{ObjectID: "acme"},
	} {
		var want []tuples.Tuple
		for _, text := range texts {
			if tup := T(t, text); f.Matches(tup) {
				want = append(want, tup)
			}
		}
		slices.SortFunc(want, tuples.Compare)
		wantText := []string{}
		for _, w := range want {
			wantText = append(wantText, w.String())
		}
		require.Equal(t, wantText, Strings(t, r.Read(ctx, f, nil)), "filter %+v", f)
	}
}

func testPagination(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var texts []string
	seen := map[string]bool{}
	for len(texts) < 300 {
		text := fmt.Sprintf("doc:d%d#%s@user:u%d", rng.IntN(20), []string{"viewer", "editor"}[rng.IntN(2)], rng.IntN(40))
		switch rng.IntN(10) {
		case 0, 1:
			text = fmt.Sprintf("doc:d%d#viewer@group:g%d#member", rng.IntN(20), rng.IntN(5))
		case 2:
			text = fmt.Sprintf("%s:d%d#%s@user:u%d#member", []string{"doc", "folder"}[rng.IntN(2)], rng.IntN(20),
				[]string{"viewer", "editor", "owner"}[rng.IntN(3)], rng.IntN(4))
		}
		if !seen[text] {
			seen[text] = true
			texts = append(texts, text)
		}
	}
	for chunk := range slices.Chunk(texts, 100) {
		Write(t, s, tuples.OpTouch, chunk...)
	}
	rev := head(t, s)
	r := Reader(t, s, rev)
	for _, f := range []tuples.Filter{
		{}, {ObjectType: "doc", ObjectID: "d3"}, {SubjectType: "group"}, {Relation: "viewer"},
		{SubjectType: "user", SubjectID: "u3"}, {SubjectType: "group", SubjectID: "g1", SubjectRelation: "member"},
	} {
		want := []string{}
		for _, text := range texts {
			if f.Matches(T(t, text)) {
				want = append(want, text)
			}
		}
		slices.SortFunc(want, func(a, b string) int { return tuples.Compare(T(t, a), T(t, b)) })
		require.Equal(t, want, Strings(t, r.Read(ctx, f, nil)), "filter %+v", f)
		for _, pageSize := range []int{1, 7, 64} {
			var got []string
			var after *tuples.Tuple
			for {
				var page []tuples.Tuple
				for tup, err := range r.Read(ctx, f, after) {
					require.NoError(t, err)
					page = append(page, tup)
					if len(page) == pageSize {
						break
					}
				}
				if len(page) == 0 {
					break
				}
				// Concurrent writes between pages must not disturb the snapshot.
				Write(t, s, tuples.OpTouch, fmt.Sprintf("doc:d%d#viewer@user:new%d", rng.IntN(20), rng.IntN(1_000_000)))
				for _, p := range page {
					got = append(got, p.String())
				}
				last := page[len(page)-1]
				after = &last
			}
			require.Equal(t, want, got, "filter %+v, page size %d", f, pageSize)
		}
	}
	// A cursor that names no stored tuple still works: strictly after it.
	after := T(t, "doc:d1#viewer@user:zzz")
	for tup, err := range r.Read(ctx, tuples.Filter{}, &after) {
		require.NoError(t, err)
		require.Positive(t, tuples.Compare(tup, after))
	}
}

func testDeleteMatching(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	Write(t, s, tuples.OpTouch, "flow:f1#granted@user:anne", "flow:f1#granted@user:bob", "flow:f1#denied@user:anne",
		"flow:f2#granted@user:anne", "tenant:t#admin@user:anne")
	before := head(t, s)

	_, _, err := s.DeleteMatching(ctx, tuples.Filter{ObjectType: "flow"},
		[]tuples.Precondition{{Op: tuples.MustMatch, Filter: tuples.Filter{ObjectType: "nope"}}})
	var perr *tuples.PreconditionError
	require.ErrorAs(t, err, &perr)
	require.Equal(t, before, head(t, s))

	rev, n, err := s.DeleteMatching(ctx, tuples.Filter{SubjectType: "user", SubjectID: "anne", ObjectType: "flow"}, nil)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Greater(t, rev, before)
	require.Equal(t, []string{"flow:f1#granted@user:bob", "tenant:t#admin@user:anne"}, all(t, s))
	require.Len(t, Strings(t, Reader(t, s, before).Read(ctx, tuples.Filter{}, nil)), 5)

	got := changes(t, s, before)
	require.Len(t, got, 3)
	for _, c := range got {
		require.Contains(t, c, fmt.Sprintf("%d DELETE flow:", rev))
	}

	_, n, err = s.DeleteMatching(ctx, tuples.Filter{ObjectType: "flow", ObjectID: "f9"}, nil)
	require.NoError(t, err)
	require.Zero(t, n)

	_, n, err = s.DeleteMatching(ctx, tuples.Filter{}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Empty(t, all(t, s))
}

func testChanges(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	r1 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:b", "doc:1#viewer@user:a")
	r2 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a") // no change: already live
	r3, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{
		{Op: tuples.OpDelete, Tuple: T(t, "doc:1#viewer@user:b")},
		{Op: tuples.OpCreate, Tuple: T(t, "doc:2#viewer@user:c")},
		{Op: tuples.OpDelete, Tuple: T(t, "doc:3#viewer@user:missing")},
	}})
	require.NoError(t, err)
	require.Equal(t, []string{
		fmt.Sprintf("%d TOUCH doc:1#viewer@user:b", r1),
		fmt.Sprintf("%d TOUCH doc:1#viewer@user:a", r1),
		fmt.Sprintf("%d DELETE doc:1#viewer@user:b", r3),
		fmt.Sprintf("%d TOUCH doc:2#viewer@user:c", r3),
	}, changes(t, s, 0))
	require.Equal(t, changes(t, s, 0)[2:], changes(t, s, r2))
	require.Empty(t, changes(t, s, r3))
	for _, err := range s.Changes(ctx, r3+1) {
		require.ErrorIs(t, err, tuples.ErrRevisionInFuture)
	}
	// Early exit from the loop is allowed.
	for range s.Changes(ctx, 0) {
		break
	}
}

func testSchemaPerRevision(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	v1 := []byte("definition user {}\ndefinition doc { relation viewer: user }")
	s1, err := s.WriteSchema(ctx, v1, nil)
	require.NoError(t, err)
	r2 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")

	// A MustNotMatch guard (the orphan check) refuses the schema write.
	v2 := []byte("definition user {}\ndefinition doc {}")
	_, err = s.WriteSchema(ctx, v2, []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: tuples.Filter{ObjectType: "doc", Relation: "viewer"}}})
	var perr *tuples.PreconditionError
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "doc:1#viewer@user:a", perr.Tuple.String())

	// A tuple write validated against the current schema passes; a stale one fails.
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: Updates(t, tuples.OpTouch, "doc:2#viewer@user:a"), SchemaRevision: s1})
	require.NoError(t, err)
	Write(t, s, tuples.OpDelete, "doc:1#viewer@user:a", "doc:2#viewer@user:a")
	s2, err := s.WriteSchema(ctx, v2, []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: tuples.Filter{ObjectType: "doc", Relation: "viewer"}}})
	require.NoError(t, err)
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: Updates(t, tuples.OpTouch, "doc:3#viewer@user:a"), SchemaRevision: s1})
	require.ErrorIs(t, err, tuples.ErrSchemaChanged)

	for _, tc := range []struct {
		at      tuples.Revision
		want    []byte
		wantRev tuples.Revision
	}{{s1, v1, s1}, {r2, v1, s1}, {s2 - 1, v1, s1}, {s2, v2, s2}} {
		text, rev, err := Reader(t, s, tc.at).Schema(ctx)
		require.NoError(t, err)
		require.Equal(t, string(tc.want), string(text), "at %d", tc.at)
		require.Equal(t, tc.wantRev, rev)
	}
	_, _, err = Reader(t, s, s1-1).Schema(ctx)
	require.ErrorIs(t, err, tuples.ErrNoSchema)
}

func testConcurrentWriters(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	const writers, each = 16, 20
	revs := make(chan tuples.Revision, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rev, err := s.Write(ctx, tuples.WriteRequest{Updates: Updates(t, tuples.OpCreate, fmt.Sprintf("doc:w%d#viewer@user:u%d", w, i))})
				if err != nil {
					t.Error(err)
					return
				}
				revs <- rev
			}
		})
	}
	wg.Wait()
	close(revs)
	seen := map[tuples.Revision]bool{}
	for rev := range revs {
		require.False(t, seen[rev], "revision %d returned twice", rev)
		seen[rev] = true
	}
	require.Len(t, seen, writers*each)
	require.Len(t, all(t, s), writers*each)
	require.Len(t, changes(t, s, 0), writers*each)
	// Every returned revision shows its own write.
	for c, err := range s.Changes(ctx, 0) {
		require.NoError(t, err)
		require.True(t, seen[c.Revision])
		r := Reader(t, s, c.Revision)
		ok, err := r.Contains(ctx, c.Tuple)
		require.NoError(t, err)
		require.True(t, ok)
		if c.Revision > 1 {
			ok, err = Reader(t, s, c.Revision-1).Contains(ctx, c.Tuple)
			require.NoError(t, err)
			require.False(t, ok)
		}
	}
}

func testImport(t *testing.T, s tuples.Store) {
	imp, ok := s.(tuples.Importer)
	if !ok {
		t.Skip("store does not implement tuples.Importer")
	}
	ctx := context.Background()
	Write(t, s, tuples.OpCreate, "doc:0#viewer@user:u0")
	var ts []tuples.Tuple
	for i := range 5000 {
		ts = append(ts, T(t, fmt.Sprintf("doc:%d#viewer@user:u%d", i%50, i%100)))
	}
	rev, err := imp.Import(ctx, ts, 0)
	require.NoError(t, err)
	require.Equal(t, rev, head(t, s))
	require.Len(t, all(t, s), 100)
	require.Len(t, changes(t, s, rev-1), 99) // doc:0@u0 was live already

	bad := append(slices.Clone(ts[:3]), tuples.Tuple{Object: tuples.ObjectRef{Type: "doc", ID: "x"}, Relation: "viewer"})
	_, err = imp.Import(ctx, bad, 0)
	var verr *tuples.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "tuples[3].subject.object.type", verr.Field)

	s1, err := s.WriteSchema(ctx, []byte("definition doc {}"), nil)
	require.NoError(t, err)
	_, err = imp.Import(ctx, ts[:1], s1-1)
	require.ErrorIs(t, err, tuples.ErrSchemaChanged)
	_, err = imp.Import(ctx, ts[:1], s1)
	require.NoError(t, err)
}

func testWaitForRevision(t *testing.T, s tuples.Store) {
	w, ok := s.(tuples.RevisionWaiter)
	if !ok {
		t.Skip("store does not implement tuples.RevisionWaiter")
	}
	ctx := context.Background()
	got := make(chan tuples.Revision, 1)
	go func() {
		rev, err := w.WaitForRevision(ctx, 0)
		if err != nil {
			t.Error(err)
		}
		got <- rev
	}()
	rev := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	require.Equal(t, rev, <-got)
	// Already newer: returns at once.
	rev2, err := w.WaitForRevision(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, rev, rev2)
	// Cancellation.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = w.WaitForRevision(cctx, rev)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func testGC(t *testing.T, s tuples.Store) {
	gc, ok := s.(GarbageCollector)
	if !ok {
		t.Skip("store does not implement tuplestest.GarbageCollector")
	}
	ctx := context.Background()
	_, err := s.WriteSchema(ctx, []byte("v1"), nil)
	require.NoError(t, err)
	r1 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a", "doc:1#viewer@user:b", "doc:2#viewer@user:a")
	old := Reader(t, s, r1)
	r2 := Write(t, s, tuples.OpDelete, "doc:1#viewer@user:a")
	r3 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a") // re-created: two versions
	r4 := Write(t, s, tuples.OpDelete, "doc:1#viewer@user:b")
	r5 := Write(t, s, tuples.OpTouch, "doc:3#viewer@user:c")

	h, err := gc.CollectGarbage(ctx, r4)
	require.NoError(t, err)
	require.Equal(t, r4, h)

	// Older revisions are expired, through new and existing readers alike.
	_, err = s.ReaderAt(ctx, r3)
	require.ErrorIs(t, err, tuples.ErrRevisionExpired)
	_, err = old.Contains(ctx, T(t, "doc:1#viewer@user:a"))
	require.ErrorIs(t, err, tuples.ErrRevisionExpired)
	for _, err := range old.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "1"}, "viewer", "") {
		require.ErrorIs(t, err, tuples.ErrRevisionExpired)
	}
	for _, err := range s.Changes(ctx, r3) {
		require.ErrorIs(t, err, tuples.ErrRevisionExpired)
	}

	// The horizon and later revisions read exactly as before.
	at4 := Reader(t, s, r4)
	require.Equal(t, []string{"doc:1#viewer@user:a", "doc:2#viewer@user:a"}, Strings(t, at4.Read(ctx, tuples.Filter{}, nil)))
	require.Equal(t, []string{"doc:1#viewer@user:a", "doc:2#viewer@user:a", "doc:3#viewer@user:c"}, all(t, s))
	require.Equal(t, []string{fmt.Sprintf("%d TOUCH doc:3#viewer@user:c", r5)}, changes(t, s, r4))
	text, _, err := at4.Schema(ctx)
	require.NoError(t, err)
	require.Equal(t, "v1", string(text))

	// The horizon never moves back, and GC past the head stops at the head.
	h, err = gc.CollectGarbage(ctx, r2)
	require.NoError(t, err)
	require.Equal(t, r4, h)
	Write(t, s, tuples.OpDelete, "doc:1#viewer@user:a")
	h, err = gc.CollectGarbage(ctx, 1<<40)
	require.NoError(t, err)
	require.Equal(t, head(t, s), h)
	require.Equal(t, []string{"doc:2#viewer@user:a", "doc:3#viewer@user:c"}, all(t, s))
	Write(t, s, tuples.OpCreate, "doc:1#viewer@user:a", "doc:1#viewer@user:b")
	require.Len(t, all(t, s), 4)
}

func testClosed(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	rev := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	r := Reader(t, s, rev)
	require.NoError(t, s.Close())
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: Updates(t, tuples.OpTouch, "doc:2#viewer@user:a")})
	require.ErrorIs(t, err, tuples.ErrClosed)
	_, err = s.ReaderAt(ctx, rev)
	require.ErrorIs(t, err, tuples.ErrClosed)
	_, err = r.Contains(ctx, T(t, "doc:1#viewer@user:a"))
	require.ErrorIs(t, err, tuples.ErrClosed)
	for _, err := range r.Read(ctx, tuples.Filter{}, nil) {
		require.ErrorIs(t, err, tuples.ErrClosed)
	}
}
