package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

func TestOptions(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	require.Equal(t, int64(DefaultCacheSize), o.CacheSize)
	require.Equal(t, 24*time.Hour, o.GCWindow)
	require.Equal(t, time.Minute, o.GCInterval)
	require.Equal(t, 1000, o.MaxUpdatesPerWrite)
	require.NotNil(t, o.FS)
	require.NotNil(t, o.Logger)
	require.NoError(t, o.Validate())

	bad := Options{CacheSize: -1, GCWindow: -time.Second, MaxUpdatesPerWrite: -5}
	err := bad.Validate()
	require.ErrorContains(t, err, "CacheSize")
	require.ErrorContains(t, err, "GCWindow")
	require.ErrorContains(t, err, "MaxUpdatesPerWrite")
	_, err = Open("x", &bad)
	require.Error(t, err)
}

func TestMaxUpdatesPerWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		limit, n int
		ok       bool
	}{{0, 1000, true}, {0, 1001, false}, {3, 3, true}, {3, 4, false}} {
		t.Run(fmt.Sprintf("limit=%d/n=%d", tc.limit, tc.n), func(t *testing.T) {
			s := openMem(t, &Options{MaxUpdatesPerWrite: tc.limit, GCInterval: -1})
			updates := make([]tuples.Update, tc.n)
			for i := range updates {
				updates[i] = tuples.Update{Op: tuples.OpTouch, Tuple: benchTuple(i)}
			}
			_, err := s.Write(ctx, tuples.WriteRequest{Updates: updates})
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var verr *tuples.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, "updates", verr.Field)
			require.Contains(t, verr.Reason, "MaxUpdatesPerWrite")
			require.Zero(t, s.head.Load())
			// Import is not limited.
			ts := make([]tuples.Tuple, tc.n)
			for i := range ts {
				ts[i] = updates[i].Tuple
			}
			_, err = s.Import(ctx, ts, 0)
			require.NoError(t, err)
		})
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	s, err := Open("db", &Options{FS: fs, GCInterval: -1})
	require.NoError(t, err)
	srev, err := s.WriteSchema(ctx, []byte("schema v1"), nil)
	require.NoError(t, err)
	tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a", "doc:2#viewer@user:b")
	tuplestest.Write(t, s, tuples.OpDelete, "doc:2#viewer@user:b")
	last := tuplestest.Write(t, s, tuples.OpTouch, "doc:3#viewer@user:c")
	h, err := s.CollectGarbage(ctx, last-1)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Close(), tuples.ErrClosed)

	s, err = Open("db", &Options{FS: fs, GCInterval: -1})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	require.Equal(t, last, tuplestest.Reader(t, s, last).Revision())
	require.Equal(t, h, s.Horizon())
	_, err = s.ReaderAt(ctx, h-1)
	require.ErrorIs(t, err, tuples.ErrRevisionExpired)
	require.Equal(t, []string{"doc:1#viewer@user:a", "doc:3#viewer@user:c"},
		tuplestest.Strings(t, tuplestest.Reader(t, s, last).Read(ctx, tuples.Filter{}, nil)))
	// The schema revision survived: a write validated against it passes.
	rev, err := s.Write(ctx, tuples.WriteRequest{Updates: tuplestest.Updates(t, tuples.OpTouch, "doc:4#viewer@user:d"), SchemaRevision: srev})
	require.NoError(t, err)
	require.Equal(t, last+1, rev)
}

// TestGroupCommit builds one group by hand: each request is checked against the
// state left by the earlier ones, failures fail alone, and the successes get
// consecutive revisions in one batch.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, nil)
	tt := func(text string) tuples.Tuple { return tuplestest.T(t, text) }
	write := func(pre []tuples.Precondition, schemaRev tuples.Revision, op tuples.Operation, text string) *request {
		return &request{kind: kindWrite, done: make(chan struct{}), write: tuples.WriteRequest{
			Updates: []tuples.Update{{Op: op, Tuple: tt(text)}}, Preconditions: pre, SchemaRevision: schemaRev}}
	}
	mustMatchA := []tuples.Precondition{{Op: tuples.MustMatch, Filter: tuples.Filter{SubjectID: "a"}}}
	group := []*request{
		write(nil, 0, tuples.OpCreate, "doc:1#viewer@user:a"),                                   // rev 1
		write(nil, 0, tuples.OpCreate, "doc:1#viewer@user:a"),                                   // exists (from rev 1)
		write(mustMatchA, 0, tuples.OpTouch, "doc:2#viewer@user:b"),                             // rev 2: sees rev 1
		{kind: kindSchema, done: make(chan struct{}), schema: []byte("s")},                      // rev 3
		write(nil, 2, tuples.OpTouch, "doc:3#viewer@user:c"),                                    // schema changed
		write(nil, 3, tuples.OpDelete, "doc:1#viewer@user:a"),                                   // rev 4
		{kind: kindDelete, done: make(chan struct{}), filter: tuples.Filter{ObjectType: "doc"}}, // rev 5: deletes doc:2
		write(mustMatchA, 0, tuples.OpTouch, "doc:4#viewer@user:d"),                             // no a left
	}
	s.commitGroup(group)
	var exists *tuples.AlreadyExistsError
	var perr *tuples.PreconditionError
	for i, want := range []struct {
		rev tuples.Revision
		err func(error) bool
	}{
		{1, nil}, {0, func(err error) bool { return errors.As(err, &exists) }}, {2, nil}, {3, nil},
		{0, func(err error) bool { return errors.Is(err, tuples.ErrSchemaChanged) }}, {4, nil}, {5, nil},
		{0, func(err error) bool { return errors.As(err, &perr) }},
	} {
		r := group[i]
		<-r.done
		require.Equal(t, want.rev, r.rev, "request %d", i)
		if want.err == nil {
			require.NoError(t, r.err, "request %d", i)
		} else {
			require.True(t, want.err(r.err), "request %d: %v", i, r.err)
		}
	}
	require.Equal(t, 1, group[6].n)
	require.Equal(t, uint64(5), s.head.Load())
	for rev, want := range map[tuples.Revision][]string{
		1: {"doc:1#viewer@user:a"},
		2: {"doc:1#viewer@user:a", "doc:2#viewer@user:b"},
		4: {"doc:2#viewer@user:b"},
		5: {},
	} {
		require.Equal(t, want, tuplestest.Strings(t, tuplestest.Reader(t, s, rev).Read(ctx, tuples.Filter{}, nil)), "at %d", rev)
	}
}

func TestBackgroundGC(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, &Options{GCWindow: time.Nanosecond, GCInterval: time.Millisecond})
	tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	rev := tuplestest.Write(t, s, tuples.OpDelete, "doc:1#viewer@user:a")
	require.Eventually(t, func() bool { return s.Horizon() == rev }, 10*time.Second, time.Millisecond)
	// The horizon is published before the GC batch commits; a GC request queued
	// behind it on the committer returns only once that batch is in.
	h, err := s.CollectGarbage(ctx, rev)
	require.NoError(t, err)
	require.Equal(t, rev, h)
	_, err = s.ReaderAt(ctx, rev-1)
	require.ErrorIs(t, err, tuples.ErrRevisionExpired)
	// The deleted tuple's keys are gone, not just invisible.
	it, err := s.db.NewIter(nil)
	require.NoError(t, err)
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		require.NotContains(t, []byte{tagForward, tagReverse, tagChange}, it.Key()[0], "key %q", it.Key())
	}
}

// TestGCExpiresLater: a tuple that expires after the horizon has passed the revision
// that wrote it is still removed, by a later GC, once it has lapsed for every
// readable revision (it is queued by expiration, not forgotten with its change-log
// entry).
func TestGCExpiresLater(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, &Options{GCWindow: time.Nanosecond, GCInterval: time.Millisecond})
	expires := time.Now().Add(100 * time.Millisecond).UTC()
	lapsing := "doc:1#viewer@user:a[expiration:" + expires.Format(time.RFC3339Nano) + "]"
	later := "doc:2#viewer@user:b[expiration:" + expires.Add(time.Hour).Format(time.RFC3339Nano) + "]"
	rev := tuplestest.Write(t, s, tuples.OpTouch, lapsing, later, "doc:3#viewer@user:c")
	// The horizon passes the write before the tuple lapses: it stays, visible.
	require.Eventually(t, func() bool { return s.Horizon() >= rev }, 10*time.Second, time.Millisecond)
	keys := func() []string {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagForward}, UpperBound: []byte{tagForward + 1}})
		require.NoError(t, err)
		defer it.Close()
		var out []string
		for valid := it.First(); valid; valid = it.Next() {
			tp, err := decodeForward(it.Key())
			require.NoError(t, err)
			out = append(out, tp.String())
		}
		return out
	}
	if time.Now().Before(expires) {
		require.Contains(t, keys(), "doc:1#viewer@user:a")
	}
	// Once it has lapsed, and a revision committed after that has left the window,
	// its keys are gone; the tuple expiring later and the plain one stay.
	require.Eventually(t, func() bool { return time.Now().After(expires) }, 10*time.Second, time.Millisecond)
	last := tuplestest.Write(t, s, tuples.OpTouch, "doc:4#viewer@user:d")
	require.Eventually(t, func() bool { return s.Horizon() >= last }, 10*time.Second, time.Millisecond)
	_, err := s.CollectGarbage(ctx, last) // returns once the background GC's batch is in
	require.NoError(t, err)
	require.Equal(t, []string{"doc:2#viewer@user:b", "doc:3#viewer@user:c", "doc:4#viewer@user:d"}, keys())
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagReverse}, UpperBound: []byte{tagReverse + 1}})
	require.NoError(t, err)
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	require.Equal(t, 3, n, "reverse index entries")
}

func TestRevisionAt(t *testing.T) {
	s := openMem(t, nil)
	before := time.Now().Add(-time.Second)
	r1 := tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	r2 := tuplestest.Write(t, s, tuples.OpTouch, "doc:2#viewer@user:a")
	for _, tc := range []struct {
		cutoff time.Time
		want   tuples.Revision
	}{{before, 0}, {time.Now().Add(time.Hour), r2}} {
		got, err := s.revisionAt(tc.cutoff)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	require.Less(t, r1, r2)
}

// FuzzKeyEncoding checks that the forward key order is the canonical tuple order and
// that both indexes decode back to the tuple.
func FuzzKeyEncoding(f *testing.F) {
	f.Add("flow", "f1", "granted", "user", "anne", "", "flow", "f1", "granted", "role", "ops", "member")
	f.Add("a", "b", "c", "d", "*", "", "a", "b", "c", "d", "e", "f")
	f.Fuzz(func(t *testing.T, ot1, oid1, rel1, st1, sid1, srel1, ot2, oid2, rel2, st2, sid2, srel2 string) {
		mk := func(ot, oid, rel, st, sid, srel string) (tuples.Tuple, bool) {
			tup := tuples.Tuple{Object: tuples.ObjectRef{Type: ot, ID: oid}, Relation: rel,
				Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: st, ID: sid}, Relation: srel}}
			return tup, tup.Validate() == nil
		}
		a, okA := mk(ot1, oid1, rel1, st1, sid1, srel1)
		b, okB := mk(ot2, oid2, rel2, st2, sid2, srel2)
		if !okA || !okB {
			return
		}
		require.Equal(t, tuples.Compare(a, b), bytes.Compare(forwardKey(nil, a), forwardKey(nil, b)))
		for _, tup := range []tuples.Tuple{a, b} {
			got, err := decodeForward(forwardKey(nil, tup))
			require.NoError(t, err)
			require.Equal(t, tup, got)
			got, err = decodeReverse(reverseKey(nil, tup))
			require.NoError(t, err)
			require.Equal(t, tup, got)
		}
	})
}
