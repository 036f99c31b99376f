package pebblestore

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// metric returns the value of the named store metric.
func metric(t *testing.T, s *Store, name string) float64 {
	t.Helper()
	for _, m := range s.Metrics() {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestBlockCacheHoldsBlocks: a block cache of CacheSize holds blocks once the
// memtables have grown (Pebble reserves each memtable's size in the cache it is
// given: without room for them a cache the memtables' size held nothing, and every
// read of an sstable missed), and /metrics reports the bytes it holds.
func TestBlockCacheHoldsBlocks(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, &Options{CacheSize: 1 << 20, ReadCacheSize: -1, GCInterval: -1, IngestMinTuples: -1})
	// Pebble starts with a small memtable and doubles the next one each time one
	// fills, up to memTableSize: 20,000 tuples through the batch path (an ingested
	// import would bypass the memtables) take them past the cache's size.
	ts := make([]tuples.Tuple, 0, 20_000)
	for i := range cap(ts) {
		ts = append(ts, tuplestest.T(t, fmt.Sprintf("doc:d%d#viewer@user:u%d", i, i)))
	}
	_, err := s.Import(ctx, ts, 0)
	require.NoError(t, err)
	require.NoError(t, s.db.Flush())
	r := tuplestest.Reader(t, s, tuplestest.Write(t, s, tuples.OpTouch, "doc:last#viewer@user:u0"))
	readAll := func() {
		for i := 0; i < len(ts); i += 10 {
			obj := tuples.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%d", i)}
			n := 0
			for _, err := range r.Subjects(ctx, obj, "viewer", "") {
				require.NoError(t, err)
				n++
			}
			require.Equal(t, 1, n, obj.ID)
		}
	}
	readAll()
	misses := metric(t, s, "pebble_block_cache_misses_total")
	hits := metric(t, s, "pebble_block_cache_hits_total")
	readAll()
	require.Equal(t, misses, metric(t, s, "pebble_block_cache_misses_total"), "the second pass over a small data set misses nothing")
	require.Greater(t, metric(t, s, "pebble_block_cache_hits_total"), hits)
	require.Greater(t, metric(t, s, "pebble_block_cache_bytes"), 0.0)
}

// TestZombieMemtableMetrics: a flushed memtable that an open iterator still pins is
// reported (it stays allocated, off the Go heap, outside pebble_memtable_bytes).
func TestZombieMemtableMetrics(t *testing.T) {
	s := openMem(t, nil)
	ctx := context.Background()
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuples.Tuple{
		Object: tuples.ObjectRef{Type: "flow", ID: "f1"}, Relation: "granted", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "u1"}},
	}}}})
	require.NoError(t, err)
	require.Equal(t, 0.0, metric(t, s, "pebble_zombie_memtables"))
	pinned, err := s.iters.get(s, tuples.Revision(s.head.Load()))
	require.NoError(t, err)
	require.NoError(t, s.db.Flush())
	require.GreaterOrEqual(t, metric(t, s, "pebble_zombie_memtables"), 1.0, "the flushed memtable the iterator pins")
	require.Greater(t, metric(t, s, "pebble_zombie_memtable_bytes"), 0.0)
	require.GreaterOrEqual(t, metric(t, s, "pebble_zombie_sstables"), 0.0)
	require.NoError(t, pinned.it.Close())
}
