package writes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

const testSchema = `definition user {}
definition flow {
    relation granted: user
    relation denied: user
    permission execute = granted - denied
}
`

// newWriter returns a Writer over a fresh Pebble store (in memory) holding testSchema.
func newWriter(t *testing.T) (*Writer, tuples.Store) {
	t.Helper()
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: vfs.NewMem(), GCInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	w := New(Config{Store: store})
	_, err = w.WriteSchema(context.Background(), "schema.zed", []byte(testSchema))
	require.NoError(t, err)
	return w, store
}

func tuple(t *testing.T, s string) tuples.Tuple {
	t.Helper()
	tp, err := tuples.ParseTuple(s)
	require.NoError(t, err)
	return tp
}

func TestWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		updates []string
		err     string
	}{
		{"valid", []string{"flow:f1#granted@user:anne"}, ""},
		{"unknown relation", []string{"flow:f1#granted@user:anne", "flow:f1#nope@user:anne"}, "updates[1].tuple: "},
		{"subject type not allowed", []string{"flow:f1#granted@flow:f2"}, "updates[0].tuple: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, store := newWriter(t)
			before, err := store.HeadRevision(ctx)
			require.NoError(t, err)
			var wr tuples.WriteRequest
			for _, u := range tc.updates {
				wr.Updates = append(wr.Updates, tuples.Update{Op: tuples.OpTouch, Tuple: tuple(t, u)})
			}
			rev, err := w.Write(ctx, wr)
			after, herr := store.HeadRevision(ctx)
			require.NoError(t, herr)
			if tc.err == "" {
				require.NoError(t, err)
				require.Equal(t, before+1, rev)
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.Equal(t, before, after, "a refused write changes nothing")
		})
	}
}

func TestWriteLimits(t *testing.T) {
	w, _ := newWriter(t)
	wr := tuples.WriteRequest{Updates: make([]tuples.Update, tuples.MaxUpdatesPerWrite+1)}
	_, err := w.Write(context.Background(), wr)
	var lerr *LimitError
	require.ErrorAs(t, err, &lerr)
	require.Equal(t, "updates", lerr.Field)
}

func TestDeleteNeedsKnownNames(t *testing.T) {
	ctx := context.Background()
	w, _ := newWriter(t)
	_, err := w.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuple(t, "flow:f1#granted@user:anne")}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		f   tuples.Filter
		err string
	}{
		{tuples.Filter{}, "filter.object_type"},
		{tuples.Filter{ObjectType: "nope"}, "filter.object_type: "},
		{tuples.Filter{ObjectType: "flow", Relation: "nope"}, "filter: "},
	} {
		_, _, err := w.Delete(ctx, tc.f, nil)
		require.ErrorContains(t, err, tc.err, "%+v", tc.f)
	}
	_, n, err := w.Delete(ctx, tuples.Filter{ObjectType: "flow", Relation: "granted"}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestWriteSchemaRefusesOrphans(t *testing.T) {
	ctx := context.Background()
	w, store := newWriter(t)
	_, err := w.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuple(t, "flow:f1#denied@user:anne")}}})
	require.NoError(t, err)
	head, err := store.HeadRevision(ctx)
	require.NoError(t, err)

	// The same text writes nothing.
	rev, err := w.WriteSchema(ctx, "schema.zed", []byte(testSchema))
	require.NoError(t, err)
	require.Equal(t, head, rev)

	without := "definition user {}\ndefinition flow {\n    relation granted: user\n    permission execute = granted\n}\n"
	_, err = w.WriteSchema(ctx, "schema.zed", []byte(without))
	var oerr *OrphanError
	require.ErrorAs(t, err, &oerr)
	require.Equal(t, int64(1), oerr.Total())
	after, err := store.HeadRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, head, after)
}

// TestImport: batches are committed in order and counted; a bad tuple stops the
// import with its stream index and the count committed before it.
func TestImport(t *testing.T) {
	ctx := context.Background()
	batches := func(bad int) func() ([]tuples.Tuple, error) {
		i := 0
		return func() ([]tuples.Tuple, error) {
			if i == 3 {
				return nil, io.EOF
			}
			var ts []tuples.Tuple
			for j := range 10 {
				rel := "granted"
				if i*10+j == bad {
					rel = "nope"
				}
				ts = append(ts, tuple(t, fmt.Sprintf("flow:f%d#%s@user:u%d", i*10+j, rel, j)))
			}
			i++
			return ts, nil
		}
	}
	w, _ := newWriter(t)
	n, rev, err := w.Import(ctx, batches(-1))
	require.NoError(t, err)
	require.Equal(t, uint64(30), n)
	require.NotZero(t, rev)

	w, _ = newWriter(t)
	n, _, err = w.Import(ctx, batches(25))
	var ie *ImportError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, int64(25), ie.Index)
	require.Equal(t, n, ie.Imported)
	require.LessOrEqual(t, n, uint64(20), "nothing of the bad batch is committed")
	require.ErrorContains(t, err, "tuples[25]")

	// An error of next itself is returned as it is.
	boom := errors.New("boom")
	_, _, err = w.Import(ctx, func() ([]tuples.Tuple, error) { return nil, boom })
	require.ErrorIs(t, err, boom)
}

func TestTupleError(t *testing.T) {
	verr := &tuples.ValidationError{Field: "object.id", Value: "x y", Reason: "bad"}
	got := TupleError(7, verr)
	require.Equal(t, int64(7), got.Index)
	var v *tuples.ValidationError
	require.ErrorAs(t, got, &v)
	require.Equal(t, "tuples[7].object.id", v.Field)
	require.Equal(t, "object.id", verr.Field, "the original is not changed")

	got = TupleError(3, errors.New("plain"))
	require.EqualError(t, got, "tuples[3]: plain")
}

// recentStore is a Pebble store that is also a tuples.RecentHeader whose recent head
// the test sets, and that counts HeadRevision calls (the round trips a database
// store would make).
type recentStore struct {
	tuples.Store
	recent tuples.Revision
	heads  int
}

func (s *recentStore) RecentHead() tuples.Revision { return s.recent }

func (s *recentStore) HeadRevision(ctx context.Context) (tuples.Revision, error) {
	s.heads++
	return s.Store.HeadRevision(ctx)
}

// TestWriteAtRecentHead: on a tuples.RecentHeader, a write validated against the
// schema at the recent head does not read the head; when that schema is older than
// the head's, the write is still judged by the head's schema: a tuple only the newer
// schema allows is written, and a tuple it refuses fails.
func TestWriteAtRecentHead(t *testing.T) {
	ctx := context.Background()
	_, pebble := newWriter(t)
	store := &recentStore{Store: pebble}
	w := New(Config{Store: store})
	old, err := pebble.HeadRevision(ctx)
	require.NoError(t, err)
	write := func(tp string) error {
		_, err := w.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuple(t, tp)}}})
		return err
	}

	store.recent = old
	require.NoError(t, write("flow:f1#granted@user:anne"))
	require.Zero(t, store.heads, "a write at the recent head reads no head")

	// A newer schema the recent head does not know yet: flow#owner.
	_, err = w.WriteSchema(ctx, "schema.zed", []byte(testSchema+"definition team {}\n"))
	require.NoError(t, err)
	_, err = w.WriteSchema(ctx, "schema.zed", []byte(`definition user {}
definition flow {
    relation granted: user
    relation denied: user
    relation owner: user
    permission execute = granted - denied
}
`))
	require.NoError(t, err)
	store.heads = 0
	require.NoError(t, write("flow:f1#owner@user:anne"), "valid under the head's schema")
	require.NotZero(t, store.heads, "the older schema refused it: judged again at the head")
	store.heads = 0
	require.NoError(t, write("flow:f1#denied@user:bob"), "valid under both schemas")
	require.NotZero(t, store.heads, "the store refused the older schema revision: written at the head")
	err = write("flow:f1#nope@user:anne")
	require.ErrorContains(t, err, "updates[0].tuple: ")

	head, err := pebble.HeadRevision(ctx)
	require.NoError(t, err)
	r, err := pebble.ReaderAt(ctx, head)
	require.NoError(t, err)
	for _, tp := range []string{"flow:f1#granted@user:anne", "flow:f1#owner@user:anne", "flow:f1#denied@user:bob"} {
		ok, err := r.Contains(ctx, tuple(t, tp))
		require.NoError(t, err)
		require.True(t, ok, tp)
	}
}
