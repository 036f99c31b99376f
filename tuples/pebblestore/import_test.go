package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestImportIngest imports through SSTables over existing histories (a live tuple,
// a deleted one, one live with a caveat), then checks every revision's view, the
// change log, the read cache, GC and a reopen: the same as the batch path gives.
func TestImportIngest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ingest int
	}{{"ingest", 1}, {"batch", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fs := vfs.NewMem()
			open := func() *Store {
				s, err := Open("db", &Options{FS: fs, GCInterval: -1, IngestMinTuples: tc.ingest})
				require.NoError(t, err)
				return s
			}
			s := open()
			r1 := tuplestest.Write(t, s, tuples.OpTouch, "doc:0#viewer@user:u0", "doc:1#viewer@user:u1", "doc:2#viewer@user:u2[cav]")
			r2 := tuplestest.Write(t, s, tuples.OpDelete, "doc:1#viewer@user:u1")
			// Warm the read cache at r2 on a scope the import changes.
			before := tuplestest.Strings(t, tuplestest.Reader(t, s, r2).Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "1"}, "viewer", ""))
			require.Empty(t, before)

			var ts []tuples.Tuple
			for i := range 3000 {
				ts = append(ts, tuplestest.T(t, fmt.Sprintf("doc:%d#viewer@user:u%d", i%1000, i%1000)))
			}
			ts = append(ts, tuplestest.T(t, "doc:2#viewer@user:u2")) // the caveat goes
			r3, err := s.Import(ctx, ts, 0)
			require.NoError(t, err)
			require.Equal(t, r2+1, r3)
			if tc.ingest > 0 {
				require.EqualValues(t, 1, s.db.Metrics().Ingest.Count, "the import was not ingested")
			} else {
				require.Zero(t, s.db.Metrics().Ingest.Count)
			}

			check := func(s *Store) {
				t.Helper()
				require.Equal(t, []string{"doc:0#viewer@user:u0", "doc:1#viewer@user:u1", "doc:2#viewer@user:u2[cav]"},
					tuplestest.Strings(t, tuplestest.Reader(t, s, r1).Read(ctx, tuples.Filter{}, nil)))
				require.Equal(t, []string{"doc:0#viewer@user:u0", "doc:2#viewer@user:u2[cav]"},
					tuplestest.Strings(t, tuplestest.Reader(t, s, r2).Read(ctx, tuples.Filter{}, nil)))
				all := tuplestest.Strings(t, tuplestest.Reader(t, s, r3).Read(ctx, tuples.Filter{}, nil))
				require.Len(t, all, 1000)
				require.Contains(t, all, "doc:2#viewer@user:u2")
				// Both indexes agree.
				require.Equal(t, []string{"doc:1#viewer@user:u1"},
					tuplestest.Strings(t, tuplestest.Reader(t, s, r3).Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "1"}, "viewer", "")))
				require.Equal(t, []string{"doc:999#viewer@user:u999"},
					tuplestest.Strings(t, tuplestest.Reader(t, s, r3).Objects(ctx, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "u999"}}, "doc", "viewer")))
				// The change log has one TOUCH per tuple written: all but doc:0@u0, live already.
				n := 0
				for c, err := range s.Changes(ctx, r2) {
					require.NoError(t, err)
					require.Equal(t, r3, c.Revision)
					require.Equal(t, tuples.OpTouch, c.Op)
					require.NotEqual(t, "doc:0#viewer@user:u0", c.Tuple.String())
					n++
				}
				require.Equal(t, 999, n)
				h, err := s.HeadRevision(ctx)
				require.NoError(t, err)
				require.Equal(t, r3, h)
			}
			check(s)
			require.NoError(t, s.Close())
			s = open()
			check(s)

			// A write after the import extends the ingested history; GC then drops the
			// versions deleted before the horizon.
			r4 := tuplestest.Write(t, s, tuples.OpDelete, "doc:5#viewer@user:u5")
			_, err = s.CollectGarbage(ctx, r4)
			require.NoError(t, err)
			ok, err := tuplestest.Reader(t, s, r4).Contains(ctx, tuplestest.T(t, "doc:5#viewer@user:u5"))
			require.NoError(t, err)
			require.False(t, ok)
			require.Len(t, tuplestest.Strings(t, tuplestest.Reader(t, s, r4).Read(ctx, tuples.Filter{}, nil)), 999)
			require.NoError(t, s.Close())
		})
	}
}

// TestKeyOrder: keyOrder sorts like bytes.Compare, with keys shorter than, equal to
// and longer than its 16-byte integer prefix, zero bytes and long shared prefixes.
func TestKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0, 1, 'a', 'b', 0xff}
	for range 200 {
		keys := make([][]byte, 1+rng.IntN(60))
		for i := range keys {
			const prefix = "rtenant\x00t1\x00\x00flow\x00owner" // longer than 16 bytes
			k := []byte(prefix[:rng.IntN(len(prefix)+1)])
			for range rng.IntN(24) {
				k = append(k, alphabet[rng.IntN(len(alphabet))])
			}
			keys[i] = k
		}
		want := slices.Clone(keys)
		slices.SortStableFunc(want, bytes.Compare)
		got := [][]byte{}
		for _, i := range keyOrder(len(keys), func(i int) []byte { return keys[i] }) {
			got = append(got, keys[i])
		}
		require.Equal(t, want, got)
	}
}
