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
