package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/check"
	"github.com/relata/relata/tuples"
)

// Metrics holds a server's Prometheus registry and the metrics the server and its
// store record (names in docs/operations.md). Each Server has its own; nothing is
// registered globally. Create one with NewMetrics when the store must report into it
// before the server exists (the committer hook, tuples.CommitInfo), and pass it as
// Config.Metrics.
type Metrics struct {
	reg *prometheus.Registry

	rpcs        *prometheus.CounterVec
	rpcDuration *prometheus.HistogramVec
	dispatches  prometheus.Histogram
	reads       prometheus.Histogram
	batchReqs   prometheus.Histogram
	batchTuples prometheus.Histogram
	syncSeconds prometheus.Histogram
	watch       prometheus.Gauge

	// okRPCs holds, per full method, the children of rpcs and rpcDuration for code
	// OK (*rpcChildren), so that a successful call does not look its two label
	// values up twice in the vectors (hashing and a lock each).
	okRPCs sync.Map
}

// rpcChildren are the metrics of one method and code.
type rpcChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics returns a registry with the process, Go runtime and server metrics; the
// store and engine metrics are added by New.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.rpcs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relata_grpc_requests_total",
		Help: "gRPC calls finished, by full method and status code (REST calls included: the gateway calls gRPC).",
	}, []string{"method", "code"})
	m.rpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "relata_grpc_request_duration_seconds",
		Help:    "Latency of gRPC calls (whole stream for streaming methods), by full method and status code.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "code"})
	m.dispatches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "relata_check_dispatches",
		Help:    "Sub-problems (object#relation for the subject) one check evaluated or found cached.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.reads = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "relata_check_store_reads",
		Help:    "Store reads (point lookups and scans) one check made.",
		Buckets: append([]float64{0}, prometheus.ExponentialBuckets(1, 2, 12)...),
	})
	m.batchReqs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "relata_committer_batch_requests",
		Help:    "Write requests acknowledged together by one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.batchTuples = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "relata_committer_batch_tuples",
		Help:    "Tuples changed by one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	})
	m.syncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "relata_committer_sync_seconds",
		Help:    "Duration of one durable group commit, WAL sync included.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.watch = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "relata_watch_streams",
		Help: "Open Watch streams.",
	})
	m.reg.MustRegister(m.rpcs, m.rpcDuration, m.dispatches, m.reads, m.batchReqs, m.batchTuples, m.syncSeconds, m.watch,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the Prometheus registry the server's /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCommit records one group commit; pass it as the store's commit hook
// (pebblestore.Options.OnCommit).
func (m *Metrics) ObserveCommit(c tuples.CommitInfo) {
	m.batchReqs.Observe(float64(c.Requests))
	m.batchTuples.Observe(float64(c.Updates))
	m.syncSeconds.Observe(c.Sync)
}

// observeCheck records the work of one check.
func (m *Metrics) observeCheck(st check.CheckStats) {
	m.dispatches.Observe(float64(st.Dispatches))
	m.reads.Observe(float64(st.Reads))
}

// observeRPC records one finished call.
func (m *Metrics) observeRPC(method string, err error, took time.Duration) {
	if err == nil {
		c, ok := m.okRPCs.Load(method)
		if !ok {
			ok := codes.OK.String()
			c, _ = m.okRPCs.LoadOrStore(method, &rpcChildren{
				count:    m.rpcs.WithLabelValues(method, ok),
				duration: m.rpcDuration.WithLabelValues(method, ok),
			})
		}
		rc := c.(*rpcChildren)
		rc.count.Inc()
		rc.duration.Observe(took.Seconds())
		return
	}
	code := status.Code(err).String()
	m.rpcs.WithLabelValues(method, code).Inc()
	m.rpcDuration.WithLabelValues(method, code).Observe(took.Seconds())
}

// register adds the engine's and the store's metrics (read at scrape time).
func (m *Metrics) register(e *check.Engine, store tuples.Store) {
	m.reg.MustRegister(&stateCollector{engine: e, store: store})
}

// stateCollector reads the check cache, the store's revisions and the store's own
// metrics at each scrape. It is an unchecked collector (Describe sends nothing)
// because the store decides its metrics.
type stateCollector struct {
	engine *check.Engine
	store  tuples.Store
}

func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	emit := func(name, help string, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, nil), t, v)
	}
	emitLabeled := func(name, help string, labels map[string]string, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, labels), t, v)
	}
	st := c.engine.CacheStats()
	emit("relata_check_cache_hits_total", "Check sub-problems answered from the check cache.", prometheus.CounterValue, float64(st.Hits))
	emit("relata_check_cache_misses_total", "Check sub-problems looked up in the check cache and not found (or stale).", prometheus.CounterValue, float64(st.Misses))
	emit("relata_check_cache_evictions_total", "Check cache entries evicted to stay within its budget.", prometheus.CounterValue, float64(st.Evictions))
	emit("relata_check_cache_entries", "Answers held by the check cache.", prometheus.GaugeValue, float64(st.Entries))
	emit("relata_check_cache_bytes", "Bytes held by the check cache (entries times their accounted size).", prometheus.GaugeValue, float64(st.Bytes))
	ss := c.engine.StreamCacheStats()
	emit("relata_lookup_scan_cache_hits_total", "Index scans of lookups served whole from the lookup scan cache.", prometheus.CounterValue, float64(ss.Hits))
	emit("relata_lookup_scan_cache_misses_total", "Index scans of lookups the lookup scan cache did not hold, or held but a write may have changed since.", prometheus.CounterValue, float64(ss.Misses+ss.Stale))
	emit("relata_lookup_scan_cache_entries", "Index scans held by the lookup scan cache.", prometheus.GaugeValue, float64(ss.Entries))
	emit("relata_lookup_scan_cache_bytes", "Bytes accounted to the lookup scan cache.", prometheus.GaugeValue, float64(ss.Bytes))
	cl := c.engine.ClosureStats()
	emit("relata_closure_entries", "Entries of the nested-set index (transitive closure of nested usersets), history included.", prometheus.GaugeValue, float64(cl.Entries))
	emit("relata_closure_live_entries", "Entries of the nested-set index live at its newest revision.", prometheus.GaugeValue, float64(cl.Live))
	emit("relata_closure_bytes", "Estimated bytes of the nested-set index.", prometheus.GaugeValue, float64(cl.Bytes))
	emit("relata_closure_applied_revision", "Newest revision the nested-set index has applied.", prometheus.GaugeValue, float64(cl.Applied))
	emit("relata_closure_edge_changes_total", "Nested-userset edges added or removed since the nested-set index was built.", prometheus.CounterValue, float64(cl.EdgeChanges))
	emit("relata_closure_entry_changes_total", "Nested-set index entries written or ended by those edge changes (write amplification).", prometheus.CounterValue, float64(cl.EntryChanges))
	emit("relata_closure_walks_total", "Lookup walks (memberships of checks, lookups) the nested-set index answered.", prometheus.CounterValue, float64(cl.Walks))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if head, err := c.store.HeadRevision(ctx); err == nil {
		emit("relata_head_revision", "Newest committed revision.", prometheus.GaugeValue, float64(head))
	}
	if h, ok := c.store.(tuples.HorizonReporter); ok {
		emit("relata_gc_horizon_revision", "Oldest revision still readable (older zookies are expired).", prometheus.GaugeValue, float64(h.Horizon()))
	}
	if r, ok := c.store.(tuples.MetricsReporter); ok {
		for _, sm := range r.Metrics() {
			t := prometheus.GaugeValue
			if sm.Counter {
				t = prometheus.CounterValue
			}
			emitLabeled("relata_"+sm.Name, sm.Help, sm.Labels, t, sm.Value)
		}
	}
}

// metricsHandler serves the registry in the Prometheus text format.
func (m *Metrics) handler(log interface {
	Println(...any)
}) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: log, ErrorHandling: promhttp.ContinueOnError})
}

func (s *Server) metricsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	if strings.HasSuffix(info.FullMethod, "/Watch") {
		s.metrics.watch.Inc()
		defer s.metrics.watch.Dec()
	}
	err := handler(srv, ss)
	s.metrics.observeRPC(info.FullMethod, err, time.Since(start))
	return err
}
