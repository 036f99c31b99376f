package tuples

// Metric is one value a store reports about itself for monitoring, e.g. Pebble's
// compaction count. Name is a Prometheus metric name without the "relata_" prefix
// ("pebble_compactions_total"); Counter says whether the value only grows (else it is
// a gauge). Labels, when set, tell apart the values of one metric name (e.g. the
// kind of a query); every value of a name has the same label names.
type Metric struct {
	Name    string
	Help    string
	Counter bool
	Value   float64
	Labels  map[string]string
}

// MetricsReporter is implemented by stores that report internal metrics. Metrics is
// called at every scrape and must be cheap; it returns the same names every time.
type MetricsReporter interface {
	Metrics() []Metric
}

// HorizonReporter is implemented by stores with a GC window: Horizon is the oldest
// revision still readable.
type HorizonReporter interface {
	Horizon() Revision
}

// CommitInfo describes one durable group commit, for metrics.
type CommitInfo struct {
	// Requests is the number of write requests the group acknowledged together.
	Requests int
	// Updates is the number of tuples they changed.
	Updates int
	// Sync is how long the durable commit (WAL sync included) took, in seconds.
	Sync float64
}
