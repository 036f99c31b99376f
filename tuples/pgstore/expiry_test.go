package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestGCExpiredTuples: GC removes a version once it has lapsed for every readable
// revision, also when it lapses long after the horizon passed its write; a version
// expiring later stays.
func TestGCExpiredTuples(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, nil)
	expires := time.Now().Add(200 * time.Millisecond).UTC()
	rev := tuplestest.Write(t, s, tuples.OpTouch,
		"doc:1#viewer@user:a[expiration:"+expires.Format(time.RFC3339Nano)+"]",
		"doc:2#viewer@user:b[on_net][expiration:"+expires.Add(time.Hour).Format(time.RFC3339Nano)+"]",
		"doc:3#viewer@user:c")
	rows := func() []string {
		r, err := s.pool.Query(ctx, "SELECT object_id FROM relata_tuple ORDER BY object_id")
		require.NoError(t, err)
		var ids []string
		for r.Next() {
			var id string
			require.NoError(t, r.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, r.Err())
		return ids
	}
	_, err := s.collect(ctx, rev, true)
	require.NoError(t, err)
	if time.Now().Before(expires) {
		require.Equal(t, []string{"1", "2", "3"}, rows(), "not lapsed at the horizon's commit time")
	}
	require.Eventually(t, func() bool { return time.Now().After(expires) }, 10*time.Second, time.Millisecond)
	last := tuplestest.Write(t, s, tuples.OpTouch, "doc:4#viewer@user:d")
	_, err = s.collect(ctx, last, true)
	require.NoError(t, err)
	require.Equal(t, []string{"2", "3", "4"}, rows())
	// The expiration reads back exactly, nanoseconds included.
	require.Equal(t, []string{"doc:2#viewer@user:b[on_net][expiration:" + expires.Add(time.Hour).Format(time.RFC3339Nano) + "]"},
		tuplestest.Strings(t, tuplestest.Reader(t, s, last).Read(ctx, tuples.Filter{ObjectID: "2"}, nil)))
}
