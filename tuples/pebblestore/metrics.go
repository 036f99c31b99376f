package pebblestore

import (
	"github.com/VictoriaMetrics/fastcache"

	"github.com/relata/relata/tuples"
)

var (
	_ tuples.MetricsReporter = (*Store)(nil)
	_ tuples.HorizonReporter = (*Store)(nil)
)

// Metrics reports the read cache's and Pebble's own metrics (tuples.MetricsReporter).
func (s *Store) Metrics() []tuples.Metric {
	var out []tuples.Metric
	add := func(name, help string, counter bool, v float64) {
		out = append(out, tuples.Metric{Name: name, Help: help, Counter: counter, Value: v})
	}
	hits, misses, bytes := s.cache.stats()
	add("read_cache_hits_total", "Store reads answered by the cross-revision read cache.", true, float64(hits))
	add("read_cache_misses_total", "Store reads the read cache could not answer (absent or stale).", true, float64(misses))
	add("read_cache_bytes", "Bytes held by the read cache.", false, float64(bytes))

	if err := s.acquire(); err != nil {
		return out // closed: the read cache's counters only
	}
	m := s.db.Metrics()
	s.release()
	add("pebble_block_cache_bytes", "Bytes in Pebble's block cache.", false, float64(m.BlockCache.Size))
	add("pebble_block_cache_hits_total", "Pebble block cache hits.", true, float64(m.BlockCache.Hits))
	add("pebble_block_cache_misses_total", "Pebble block cache misses.", true, float64(m.BlockCache.Misses))
	add("pebble_memtable_bytes", "Bytes allocated to Pebble memtables.", false, float64(m.MemTable.Size))
	add("pebble_memtables", "Pebble memtables (the mutable one and those waiting to flush).", false, float64(m.MemTable.Count))
	add("pebble_zombie_memtable_bytes", "Bytes of flushed Pebble memtables still allocated: pinned by open iterators, or one kept for reuse.", false, float64(m.MemTable.ZombieSize))
	add("pebble_zombie_memtables", "Flushed Pebble memtables still allocated (pinned by open iterators, or one kept for reuse).", false, float64(m.MemTable.ZombieCount))
	add("pebble_zombie_sstables", "Obsolete Pebble sstables open iterators still pin.", false, float64(m.Table.ZombieCount))
	add("pebble_compactions_total", "Pebble compactions completed.", true, float64(m.Compact.Count))
	add("pebble_compaction_debt_bytes", "Estimated bytes Pebble must compact to reach a stable LSM shape.", false, float64(m.Compact.EstimatedDebt))
	add("pebble_compactions_in_progress", "Pebble compactions running.", false, float64(m.Compact.NumInProgress))
	add("pebble_flushes_total", "Pebble memtable flushes completed.", true, float64(m.Flush.Count))
	add("pebble_read_amplification", "Pebble read amplification: sublevels of L0 plus non-empty levels.", false, float64(m.ReadAmp()))
	add("pebble_l0_sublevels", "Pebble L0 sublevels (high values mean compactions fall behind writes).", false, float64(m.Levels[0].Sublevels))
	add("pebble_l0_files", "Pebble L0 sstables.", false, float64(m.Levels[0].TablesCount))
	add("pebble_disk_usage_bytes", "Bytes Pebble uses on disk (sstables, WAL, manifests).", false, float64(m.DiskSpaceUsage()))
	add("pebble_sstables", "Live Pebble sstables across levels.", false, float64(m.Total().TablesCount))
	add("pebble_wal_bytes", "Bytes of live WAL files.", false, float64(m.WAL.Size))
	add("pebble_wal_written_bytes_total", "Bytes written to the WAL.", true, float64(m.WAL.BytesWritten))
	add("pebble_snapshots", "Open Pebble snapshots.", false, float64(m.Snapshots.Count))
	return out
}

// stats returns the read cache's hits, misses and bytes; zeros when disabled.
func (c *readCache) stats() (hits, misses, bytes uint64) {
	if c == nil {
		return 0, 0, 0
	}
	var st fastcache.Stats
	c.values.UpdateStats(&st)
	stale := c.stale.Load()
	misses = st.Misses + stale
	if st.GetCalls > misses {
		hits = st.GetCalls - misses
	}
	return hits, misses, st.BytesSize
}
