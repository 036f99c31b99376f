package pgstore

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/fastcache"

	"github.com/relata/relata/tuples"
)

// queryKinds are the kinds of database round trips a node counts
// (relata_store_queries_total{kind}): the reads of the engine (contains, subjects,
// objects), other reads, and writes.
var queryKinds = []string{"head", "contains", "subjects", "objects", "read", "count", "schema", "changes", "write", "import", "gc"}

// queryCounts counts round trips by kind; the map is built once and only read.
type queryCounts map[string]*atomic.Uint64

func newQueryCounts() queryCounts {
	q := make(queryCounts, len(queryKinds))
	for _, k := range queryKinds {
		q[k] = new(atomic.Uint64)
	}
	return q
}

// add counts one round trip of kind (an unknown kind counts as "read").
func (q queryCounts) add(kind string) {
	c, ok := q[kind]
	if !ok {
		c = q["read"]
	}
	c.Add(1)
}

var _ tuples.MetricsReporter = (*Store)(nil)

// Metrics reports the node's database round trips by kind and its read cache's
// hits, misses and size (tuples.MetricsReporter).
func (s *Store) Metrics() []tuples.Metric {
	out := make([]tuples.Metric, 0, len(queryKinds)+3)
	for _, k := range queryKinds {
		out = append(out, tuples.Metric{Name: "store_queries_total", Help: "Round trips to the database, by kind.",
			Counter: true, Value: float64(s.queries[k].Load()), Labels: map[string]string{"kind": k}})
	}
	var hits, misses, bytes uint64
	if c := s.cache; c != nil {
		hits, misses = c.hits.Load(), c.misses.Load()
		var st fastcache.Stats
		c.values.UpdateStats(&st)
		bytes = st.BytesSize
	}
	return append(out,
		tuples.Metric{Name: "read_cache_hits_total", Help: "Store reads answered from the read cache.", Counter: true, Value: float64(hits)},
		tuples.Metric{Name: "read_cache_misses_total", Help: "Store reads the read cache could not answer (absent or changed since).", Counter: true, Value: float64(misses)},
		tuples.Metric{Name: "read_cache_bytes", Help: "Bytes held by the store read cache.", Value: float64(bytes)})
}
