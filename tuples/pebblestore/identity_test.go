package pebblestore

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestIdentityPersists: a store keeps its id across reopening, read-only too.
func TestIdentityPersists(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, &Options{FS: fs, GCInterval: -1})
	id := s.Identity()
	rev := tuplestest.Write(t, s, tuples.OpTouch, "flow:f1#granted@user:anne")
	z := tuples.NewZookies(id).Encode(rev)
	require.NoError(t, s.Close())

	for _, readOnly := range []bool{false, true} {
		s := openMem(t, &Options{FS: fs, GCInterval: -1, ReadOnly: readOnly})
		require.Equal(t, id, s.Identity(), "read-only %v", readOnly)
		got, err := tuples.NewZookies(s.Identity()).Decode(z)
		require.NoError(t, err)
		require.Equal(t, rev, got)
		require.NoError(t, s.Close())
	}
}

// TestIdentityOfOlderStore: a data dir written before stores had ids gets one when it
// is opened, and the zookies it issued until then (which name no store) keep working;
// zookies naming no store and a later revision do not.
func TestIdentityOfOlderStore(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	s := openMem(t, &Options{FS: fs, GCInterval: -1})
	tuplestest.Write(t, s, tuples.OpTouch, "flow:f1#granted@user:anne")
	old := tuplestest.Write(t, s, tuples.OpTouch, "flow:f1#granted@user:beth")
	require.NoError(t, s.Close())

	// Make it an older store: no id.
	db, err := pebble.Open("data", &pebble.Options{FS: fs})
	require.NoError(t, err)
	require.NoError(t, db.Delete(keyStoreID, pebble.Sync))
	require.NoError(t, db.Delete(keyUnnamed, pebble.Sync))
	require.NoError(t, db.Close())

	// Read-only, it cannot record an id: it names none and takes the old zookies.
	ro := openMem(t, &Options{FS: fs, GCInterval: -1, ReadOnly: true})
	require.Equal(t, tuples.Identity{UnnamedThrough: old}, ro.Identity())
	require.NoError(t, ro.Close())

	s = openMem(t, &Options{FS: fs, GCInterval: -1})
	id := s.Identity()
	require.NotEmpty(t, id.ID)
	require.Equal(t, old, id.UnnamedThrough)
	z := tuples.NewZookies(id)
	for rev := tuples.Revision(0); rev <= old; rev++ {
		got, err := z.Decode(tuples.Zookies{}.Encode(rev))
		require.NoError(t, err, "the older store's zookie of revision %d", rev)
		require.Equal(t, rev, got)
	}
	next := tuplestest.Write(t, s, tuples.OpTouch, "flow:f1#granted@user:cleo")
	_, err = z.Decode(tuples.Zookies{}.Encode(next))
	require.ErrorIs(t, err, tuples.ErrInvalidZookie)
	got, err := z.Decode(z.Encode(next))
	require.NoError(t, err)
	require.Equal(t, next, got)
	_, err = s.ReaderAt(ctx, got)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// The id it got is kept.
	s = openMem(t, &Options{FS: fs, GCInterval: -1})
	require.Equal(t, id, s.Identity())
}
