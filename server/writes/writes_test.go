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
	"github.com/relata/relata/tuples/pgstore"
	"github.com/relata/relata/tuples/pgstore/pgtest"
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
	return newWriterOn(t, store), store
}

// newWriterOn returns a Writer over store, holding testSchema.
func newWriterOn(t *testing.T, store tuples.Store) *Writer {
	t.Helper()
	w := New(Config{Store: store})
	_, err := w.WriteSchema(context.Background(), "schema.zed", []byte(testSchema))
	require.NoError(t, err)
	return w
}

// stores are the stores the import tests run on: Pebble, and PostgreSQL (a
// tuples.ImportPreparer, whose imports go through the pipeline's prepare stage) when
// RELATA_TEST_POSTGRES names a server.
var stores = []struct {
	name string
	open func(t *testing.T) tuples.Store
}{
	{"pebble", func(t *testing.T) tuples.Store {
		_, store := newWriter(t)
		return store
	}},
	{"postgres", func(t *testing.T) tuples.Store {
		url := pgtest.NewDatabase(t)
		_, _, err := pgstore.Migrate(context.Background(), url, nil)
		require.NoError(t, err)
		store, err := pgstore.Open(context.Background(), url, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = store.Close() })
		return store
	}},
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
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			w := newWriterOn(t, st.open(t))
			n, rev, err := w.Import(ctx, batches(-1))
			require.NoError(t, err)
			require.Equal(t, uint64(30), n)
			require.NotZero(t, rev)

			w = newWriterOn(t, st.open(t))
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
		})
	}
}

// TestImportManyCalls imports more tuples than one store call takes, with
// duplicates across calls and within one, and a bad tuple in the last batch: every
// call before it lands at its own revision, in stream order, and the store holds
// exactly the distinct tuples of those calls.
func TestImportManyCalls(t *testing.T) {
	ctx := context.Background()
	const call = 5000 // tuples a store call
	const batch, bad = 500, 3*call + 200
	const total = (bad/batch + 1) * batch // the bad tuple's batch is the last one
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			w := newWriterOn(t, store)
			w.importCall = call
			start, err := store.HeadRevision(ctx)
			require.NoError(t, err)
			sent := 0
			n, rev, err := w.Import(ctx, func() ([]tuples.Tuple, error) {
				if sent == total {
					return nil, io.EOF
				}
				ts := make([]tuples.Tuple, 0, batch)
				for range batch {
					rel := "granted"
					if sent == bad {
						rel = "nope"
					}
					// Every 7th tuple repeats one sent 3,000 earlier (another call's,
					// or the same call's); every 5th repeats its predecessor.
					id := sent
					if sent%7 == 0 && sent >= 3000 {
						id = sent - 3000
					} else if sent%5 == 0 && sent > 0 {
						id = sent - 1
					}
					ts = append(ts, tuple(t, fmt.Sprintf("flow:f%d#%s@user:u%d", id, rel, id%13)))
					sent++
				}
				return ts, nil
			})
			var ie *ImportError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, int64(bad), ie.Index)
			require.ErrorContains(t, err, fmt.Sprintf("tuples[%d]", bad))
			require.Equal(t, n, ie.Imported)
			require.GreaterOrEqual(t, n, uint64(3*call), "the calls before the bad batch's are committed")
			require.LessOrEqual(t, n, uint64(bad-bad%batch), "nothing of the bad batch is committed")
			require.GreaterOrEqual(t, int(rev-start), 3, "at least three store calls")

			want := map[string]bool{}
			for i := range int(n) {
				id := i
				if i%7 == 0 && i >= 3000 {
					id = i - 3000
				} else if i%5 == 0 && i > 0 {
					id = i - 1
				}
				want[fmt.Sprintf("flow:f%d#granted@user:u%d", id, id%13)] = true
			}
			r, err := store.ReaderAt(ctx, rev)
			require.NoError(t, err)
			got := map[string]bool{}
			for tp, err := range r.Read(ctx, tuples.Filter{ObjectType: "flow"}, nil) {
				require.NoError(t, err)
				got[tp.String()] = true
			}
			require.Equal(t, len(want), len(got))
			require.Equal(t, want, got)

			// The change log holds each call's tuples at its revision, revisions in order.
			var changes int
			last := start
			for c, err := range store.Changes(ctx, start) {
				require.NoError(t, err)
				require.GreaterOrEqual(t, c.Revision, last)
				last = c.Revision
				changes++
			}
			require.Equal(t, len(want), changes)
			require.Equal(t, rev, last)
		})
	}
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
