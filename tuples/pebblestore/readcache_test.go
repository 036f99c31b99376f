package pebblestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

func TestConformanceWithoutReadCache(t *testing.T) {
	tuplestest.RunAll(t, func(t *testing.T) tuples.Store { return openMem(t, &Options{ReadCacheSize: -1, GCInterval: -1}) })
}

// cacheUniverse is a small graph where random writes often hit the scopes that
// reads have cached.
type cacheUniverse struct {
	objects   []tuples.ObjectRef
	relations []string
	subjects  []tuples.SubjectRef
}

func newCacheUniverse() cacheUniverse {
	u := cacheUniverse{relations: []string{"viewer", "editor"}}
	for i := range 3 {
		u.objects = append(u.objects, tuples.ObjectRef{Type: "doc", ID: fmt.Sprint(i)})
	}
	for i := range 3 {
		u.subjects = append(u.subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprint(i)}})
	}
	u.subjects = append(u.subjects,
		tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "*"}},
		tuples.SubjectRef{Object: tuples.ObjectRef{Type: "group", ID: "g"}, Relation: "member"})
	return u
}

func (u cacheUniverse) random(rng *rand.Rand) tuples.Tuple {
	return tuples.Tuple{
		Object:   u.objects[rng.IntN(len(u.objects))],
		Relation: u.relations[rng.IntN(len(u.relations))],
		Subject:  u.subjects[rng.IntN(len(u.subjects))],
	}
}

// collect drains a scan.
func collect(t *testing.T, seq func(func(tuples.Tuple, error) bool)) []string {
	t.Helper()
	var out []string
	for tup, err := range seq {
		require.NoError(t, err)
		out = append(out, tup.String())
	}
	return out
}

// compareReads reads every scope of u at r through the cache (twice: a miss, then
// usually a hit) and straight from Pebble, and fails on any difference.
func compareReads(t *testing.T, ctx context.Context, r *reader, u cacheUniverse) {
	t.Helper()
	for _, obj := range u.objects {
		// ObjectTuples: every relation's tuples, relation by relation (u.relations
		// are not sorted: "viewer" > "editor").
		var want []string
		for _, rel := range []string{"editor", "viewer"} {
			want = append(want, collect(t, r.scan(ctx, forwardScope(nil, obj, rel), nil, false, nil))...)
		}
		for range 2 {
			require.Equal(t, want, collect(t, r.ObjectTuples(ctx, obj)), "at %d: ObjectTuples(%s)", r.rev, obj)
		}
		for _, rel := range u.relations {
			scope := forwardScope(nil, obj, rel)
			for _, st := range []string{"", "user", "group"} {
				prefix := scope
				if st != "" {
					prefix = appendParts(scope, st)
				}
				want := collect(t, r.scan(ctx, prefix, nil, false, nil))
				for range 2 {
					require.Equal(t, want, collect(t, r.Subjects(ctx, obj, rel, st)), "at %d: Subjects(%s, %s, %q)", r.rev, obj, rel, st)
				}
			}
			for _, sub := range u.subjects {
				tup := tuples.Tuple{Object: obj, Relation: rel, Subject: sub}
				want, _, err := r.contains(forwardKey(nil, tup))
				require.NoError(t, err)
				for range 2 {
					got, err := r.Contains(ctx, tup)
					require.NoError(t, err)
					require.Equal(t, want, got, "at %d: Contains(%s)", r.rev, tup)
				}
			}
		}
	}
	for _, sub := range u.subjects {
		// SubjectTuples: every object type and relation, relation by relation.
		var want []string
		for _, rel := range []string{"editor", "viewer"} {
			want = append(want, collect(t, r.scan(ctx, reverseScope(nil, sub, "doc", rel), nil, true, nil))...)
		}
		for range 2 {
			require.Equal(t, want, collect(t, r.SubjectTuples(ctx, sub)), "at %d: SubjectTuples(%s)", r.rev, sub)
		}
		for _, rel := range u.relations {
			prefix := reverseScope(nil, sub, "doc", rel)
			want := collect(t, r.scan(ctx, prefix, nil, true, nil))
			for range 2 {
				require.Equal(t, want, collect(t, r.Objects(ctx, sub, "doc", rel)), "at %d: Objects(%s, doc, %s)", r.rev, sub, rel)
			}
		}
	}
}

// TestReadCacheAgreesWithPebble runs random writes, deletes by filter, imports and a
// reopen, and after each compares every read through the cache, at the head and at
// older revisions, with the same read straight from Pebble.
func TestReadCacheAgreesWithPebble(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	open := func() *Store {
		s, err := Open("data", &Options{FS: fs, GCInterval: -1})
		require.NoError(t, err)
		return s
	}
	s := open()
	defer func() { _ = s.Close() }()
	u := newCacheUniverse()
	rng := rand.New(rand.NewPCG(7, 11))
	for step := range 300 {
		switch k := rng.IntN(20); {
		case k < 14:
			var updates []tuples.Update
			seen := map[string]bool{}
			for range 1 + rng.IntN(3) {
				tup := u.random(rng)
				if seen[tup.String()] {
					continue
				}
				seen[tup.String()] = true
				op := tuples.OpTouch
				if rng.IntN(2) == 0 {
					op = tuples.OpDelete
				}
				updates = append(updates, tuples.Update{Op: op, Tuple: tup})
			}
			_, err := s.Write(ctx, tuples.WriteRequest{Updates: updates})
			require.NoError(t, err)
		case k < 17:
			obj := u.objects[rng.IntN(len(u.objects))]
			_, _, err := s.DeleteMatching(ctx, tuples.Filter{ObjectType: obj.Type, ObjectID: obj.ID}, nil)
			require.NoError(t, err)
		case k < 19:
			_, err := s.Import(ctx, []tuples.Tuple{u.random(rng), u.random(rng)}, 0)
			require.NoError(t, err)
		default:
			require.NoError(t, s.Close())
			s = open()
		}
		head, err := s.HeadRevision(ctx)
		require.NoError(t, err)
		revs := []tuples.Revision{head, head}
		if head > 1 {
			revs = append(revs, 1+tuples.Revision(rng.Uint64N(uint64(head))))
		}
		for _, rev := range revs {
			r, err := s.ReaderAt(ctx, rev)
			require.NoError(t, err, "step %d", step)
			compareReads(t, ctx, r.(*reader), u)
		}
	}
}

// TestReadCacheConcurrent has readers compare cached reads with Pebble's while
// writers change the same scopes (run it with -race).
func TestReadCacheConcurrent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openMem(t, nil)
	u := newCacheUniverse()
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for ctx.Err() == nil {
				op := tuples.OpTouch
				if rng.IntN(2) == 0 {
					op = tuples.OpDelete
				}
				if _, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: op, Tuple: u.random(rng)}}}); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 100 {
		head, err := s.HeadRevision(ctx)
		require.NoError(t, err)
		r, err := s.ReaderAt(ctx, head)
		require.NoError(t, err)
		compareReads(t, ctx, r.(*reader), u)
	}
	cancel()
	writers.Wait()
}

// TestReadCacheHits checks that a read at a newer revision is served from the cache
// when no write touched its scope, and not when one did.
func TestReadCacheHits(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, nil)
	tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a", "doc:2#viewer@user:b")
	obj := tuples.ObjectRef{Type: "doc", ID: "1"}
	scope := forwardScope(nil, obj, "viewer")
	key := append([]byte{cacheScan}, scope...)
	hit := func(rev tuples.Revision) bool {
		_, ok := s.cache.get(nil, key, bucket(scope), rev)
		return ok
	}

	r1 := tuplestest.Reader(t, s, tuplestest.Write(t, s, tuples.OpTouch, "doc:3#viewer@user:c"))
	require.Equal(t, []string{"doc:1#viewer@user:a"}, collect(t, r1.Subjects(ctx, obj, "viewer", "")))
	require.True(t, hit(r1.Revision()))
	require.False(t, hit(r1.Revision()-1), "a result read at R is not served below R")

	other := tuplestest.Write(t, s, tuples.OpTouch, "doc:2#viewer@user:d")
	require.True(t, hit(other), "a write to another scope keeps the result")

	same := tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:e")
	require.False(t, hit(same), "a write to the scope invalidates the result")
	r2 := tuplestest.Reader(t, s, same)
	require.Equal(t, []string{"doc:1#viewer@user:a", "doc:1#viewer@user:e"}, collect(t, r2.Subjects(ctx, obj, "viewer", "")))

	// Not cached: a scan the caller leaves early, and one over readCacheMaxTuples.
	texts := make([]string, 0, readCacheMaxTuples+1)
	for i := range readCacheMaxTuples + 1 {
		texts = append(texts, fmt.Sprintf("doc:big#viewer@user:u%d", i))
	}
	r3 := tuplestest.Reader(t, s, tuplestest.Write(t, s, tuples.OpTouch, texts...))
	big := tuples.ObjectRef{Type: "doc", ID: "big"}
	bigScope := forwardScope(nil, big, "viewer")
	for _, err := range r3.Subjects(ctx, big, "viewer", "") {
		require.NoError(t, err)
		break
	}
	_, ok := s.cache.get(nil, append([]byte{cacheScan}, bigScope...), bucket(bigScope), r3.Revision())
	require.False(t, ok, "a scan left early is not cached")
	require.Len(t, collect(t, r3.Subjects(ctx, big, "viewer", "")), readCacheMaxTuples+1)
	_, ok = s.cache.get(nil, append([]byte{cacheScan}, bigScope...), bucket(bigScope), r3.Revision())
	require.False(t, ok, "a scan over readCacheMaxTuples is not cached")
}

// TestScopeTrackerAfterReopen: the tracker cannot vouch for revisions before Open
// (the suite's ScopeTracker test checks the rest).
func TestScopeTrackerAfterReopen(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("data", &Options{FS: fs, GCInterval: -1})
	require.NoError(t, err)
	tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	r3 := tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:c")
	r4 := tuplestest.Write(t, s, tuples.OpDelete, "doc:1#viewer@user:a")
	require.NoError(t, s.Close())
	s, err = Open("data", &Options{FS: fs, GCInterval: -1})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	reopened := tuplestest.Reader(t, s, r4).(tuples.ScopeTracker)
	rev := reopened.ReverseScope(tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "a"}}, "doc", "viewer")
	require.False(t, reopened.UnchangedSince(rev, r3), "writes before Open are unknown")
	require.True(t, reopened.UnchangedSince(rev, r4), "the head at Open is known")
}
