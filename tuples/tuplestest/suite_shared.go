package tuplestest

// Checks that were first written for one store and hold for every store.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// defaultMaxUpdates is the per-write update limit every store applies by default.
const defaultMaxUpdates = 1000

// testUpdateLimit: a write of more than the default limit of updates is refused with
// a *tuples.ValidationError on field "updates" and changes nothing; Import is not
// limited.
func testUpdateLimit(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	updates := make([]tuples.Update, defaultMaxUpdates+1)
	for i := range updates {
		updates[i] = tuples.Update{Op: tuples.OpTouch, Tuple: T(t, fmt.Sprintf("doc:d%d#viewer@user:u%d", i%97, i))}
	}
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: updates})
	var verr *tuples.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "updates", verr.Field)
	require.Zero(t, head(t, s))
	rev, err := s.Write(ctx, tuples.WriteRequest{Updates: updates[:defaultMaxUpdates]})
	require.NoError(t, err)
	require.Len(t, Strings(t, Reader(t, s, rev).Read(ctx, tuples.Filter{}, nil)), defaultMaxUpdates)
	if imp, ok := s.(tuples.Importer); ok {
		ts := make([]tuples.Tuple, len(updates))
		for i, u := range updates {
			ts[i] = u.Tuple
		}
		_, err := imp.Import(ctx, ts, 0)
		require.NoError(t, err)
		require.Len(t, all(t, s), defaultMaxUpdates+1)
	}
}

// testScopeTracker checks a reader's tuples.ScopeTracker after the store's own
// writes: a scope is unchanged since a revision until a write touches it, for forward
// and reverse scopes alike. A tracker that cannot tell (false for every question,
// e.g. a store whose cache is disabled) passes the safety checks only.
func testScopeTracker(t *testing.T, s tuples.Store) {
	r1 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	tr := func(rev tuples.Revision) tuples.ScopeTracker {
		st, ok := Reader(t, s, rev).(tuples.ScopeTracker)
		if !ok {
			t.Skip("the store's readers do not implement tuples.ScopeTracker")
		}
		return st
	}
	doc1 := tuples.ObjectRef{Type: "doc", ID: "1"}
	userA := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "a"}}
	fwd := tr(r1).ForwardScope(doc1, "viewer")
	rev := tr(r1).ReverseScope(userA, "doc", "viewer")

	r2 := Write(t, s, tuples.OpTouch, "doc:2#viewer@user:b")
	tracks := tr(r2).UnchangedSince(fwd, r2)
	mayHold := func(ok bool, msg string) {
		t.Helper()
		if tracks {
			require.True(t, ok, msg)
		}
	}
	mayHold(tr(r2).UnchangedSince(fwd, r1), "another object's write")
	mayHold(tr(r2).UnchangedSince(rev, r1), "another subject's write")

	r3 := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:c")
	require.False(t, tr(r3).UnchangedSince(fwd, r1), "a write to doc:1#viewer")
	mayHold(tr(r3).UnchangedSince(fwd, r3), "the reader's own revision")
	mayHold(tr(r3).UnchangedSince(rev, r1), "user:a's memberships did not change")
	require.False(t, tr(r2).UnchangedSince(fwd, r3), "since after the reader's revision")
	mayHold(tr(r1).UnchangedSince(fwd, r1), "a reader's own revision, whatever came later")

	r4 := Write(t, s, tuples.OpDelete, "doc:1#viewer@user:a")
	require.False(t, tr(r4).UnchangedSince(rev, r3), "a delete changes user:a's memberships")

	_, n, err := s.DeleteMatching(context.Background(), tuples.Filter{ObjectType: "doc", ObjectID: "2"}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	r5 := head(t, s)
	doc2 := tr(r5).ForwardScope(tuples.ObjectRef{Type: "doc", ID: "2"}, "viewer")
	require.False(t, tr(r5).UnchangedSince(doc2, r4), "DeleteMatching changes doc:2#viewer")
}

// testGCWithConcurrentReaders checks that GC racing readers never yields a wrong
// answer: each read is exact or fails with ErrRevisionExpired. Write R touches doc:R
// and deletes doc:R-1, so at revision R exactly doc:R is live.
func testGCWithConcurrentReaders(t *testing.T, s tuples.Store) {
	gc, ok := s.(GarbageCollector)
	if !ok {
		t.Skip("store does not implement tuplestest.GarbageCollector")
	}
	ctx := context.Background()
	Write(t, s, tuples.OpTouch, "doc:1#viewer@user:x")
	const revisions = 120
	var horizon, headRev atomic.Uint64
	headRev.Store(1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // writer and collector
		defer close(stop)
		for r := 2; r <= revisions; r++ {
			rev, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{
				{Op: tuples.OpTouch, Tuple: T(t, fmt.Sprintf("doc:%d#viewer@user:x", r))},
				{Op: tuples.OpDelete, Tuple: T(t, fmt.Sprintf("doc:%d#viewer@user:x", r-1))},
			}})
			if err != nil {
				t.Error(err)
				return
			}
			headRev.Store(uint64(rev))
			if r%7 == 0 {
				h, err := gc.CollectGarbage(ctx, tuples.Revision(r-4))
				if err != nil {
					t.Error(err)
					return
				}
				horizon.Store(uint64(h))
			}
		}
	})
	var expired, exact atomic.Int64
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := tuples.Revision(horizon.Load())
				hd := max(tuples.Revision(headRev.Load()), h)
				rev := max(1, h+tuples.Revision(rng.Uint64N(uint64(hd-h)+1)))
				want := fmt.Sprintf("doc:%d#viewer@user:x", rev)
				r, err := s.ReaderAt(ctx, rev)
				if errors.Is(err, tuples.ErrRevisionExpired) {
					expired.Add(1)
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				var got []string
				var readErr error
				for tup, err := range r.Read(ctx, tuples.Filter{ObjectType: "doc"}, nil) {
					if err != nil {
						readErr = err
						break
					}
					got = append(got, tup.String())
				}
				ok, err := r.Contains(ctx, T(t, want))
				switch {
				case errors.Is(readErr, tuples.ErrRevisionExpired) || errors.Is(err, tuples.ErrRevisionExpired):
					expired.Add(1)
				case readErr != nil || err != nil:
					t.Error(readErr, err)
					return
				case !ok || len(got) != 1 || got[0] != want:
					t.Errorf("at %d: Contains(%s) = %v, Read = %v", rev, want, ok, got)
					return
				default:
					exact.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("exact reads %d, expired %d", exact.Load(), expired.Load())
	require.Positive(t, exact.Load())
}

// testIdentity: every store has an id, two stores never share one, and each refuses
// the other's zookies while decoding its own. A fresh store accepts no zookie that
// names no store. The id does not change as the store is written.
func testIdentity(t *testing.T, a, b tuples.Store) {
	ida, idb := a.Identity(), b.Identity()
	require.NotEmpty(t, ida.ID)
	require.NotEmpty(t, idb.ID)
	require.NotEqual(t, ida.ID, idb.ID)
	require.Zero(t, ida.UnnamedThrough, "a store created with its id")

	rev := Write(t, a, tuples.OpTouch, "flow:f1#granted@user:anne")
	Write(t, b, tuples.OpTouch, "flow:f1#granted@user:anne")
	require.Equal(t, ida, a.Identity())

	za, zb := tuples.NewZookies(a.Identity()), tuples.NewZookies(b.Identity())
	got, err := za.Decode(za.Encode(rev))
	require.NoError(t, err)
	require.Equal(t, rev, got)
	_, err = zb.Decode(za.Encode(rev))
	require.ErrorIs(t, err, tuples.ErrInvalidZookie)
	_, err = za.Decode(zb.Encode(rev))
	require.ErrorIs(t, err, tuples.ErrInvalidZookie)
	_, err = za.Decode(tuples.Zookies{}.Encode(rev))
	require.ErrorIs(t, err, tuples.ErrInvalidZookie, "a zookie naming no store")
}
