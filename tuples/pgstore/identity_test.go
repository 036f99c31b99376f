package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestIdentity: every node of one database has the database's id; a database last
// opened by a Relata whose zookies named no store keeps accepting the zookies issued
// until then, and only those.
func TestIdentity(t *testing.T) {
	ctx := context.Background()
	a, url := openTest(t, nil)
	b := openURL(t, url, nil)
	require.Equal(t, a.Identity(), b.Identity())
	require.NotEmpty(t, a.Identity().ID)
	require.Zero(t, a.Identity().UnnamedThrough)

	tuplestest.Write(t, a, tuples.OpTouch, "flow:f1#granted@user:anne")
	old := tuplestest.Write(t, a, tuples.OpTouch, "flow:f1#granted@user:beth")
	// Make it an older database: its id was there, but zookies did not name it.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "DELETE FROM relata_meta WHERE key = 'zookie_unnamed_through'")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	c := openURL(t, url, nil)
	require.Equal(t, tuples.Identity{ID: a.Identity().ID, UnnamedThrough: old}, c.Identity())
	d := openURL(t, url, nil)
	require.Equal(t, c.Identity(), d.Identity())
	z := tuples.NewZookies(c.Identity())
	got, err := z.Decode(tuples.Zookies{}.Encode(old))
	require.NoError(t, err)
	require.Equal(t, old, got)
	_, err = z.Decode(tuples.Zookies{}.Encode(old + 1))
	require.ErrorIs(t, err, tuples.ErrInvalidZookie)
}
