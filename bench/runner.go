package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// Config configures Run. Zero fields take the values of DefaultConfig.
type Config struct {
	// Data sizes the data set.
	Data DataConfig
	// PhaseDuration bounds each phase's time (default 10 s).
	PhaseDuration time.Duration
	// PhaseMaxOps bounds each phase's operations (default 2,000,000).
	PhaseMaxOps int64
	// Concurrencies are the concurrencies of the Check phases (default 1, 8, 64, 256).
	Concurrencies []int
	// BulkSize is the number of items of one CheckBulk (default 100).
	BulkSize int
	// BulkConcurrency is the concurrency of the CheckBulk phase (default 8).
	BulkConcurrency int
	// LookupConcurrency is the concurrency of the lookup phases (default 4).
	LookupConcurrency int
	// MixedConcurrency is the concurrency of the mixed phase (default 64).
	MixedConcurrency int
	// WriteShare is the share of writes in the mixed phase (default 0.01).
	WriteShare float64
	// CheckPool is the number of distinct checks the Check phases cycle through
	// (default 100,000).
	CheckPool int
	// LookupPool is the number of distinct lookups of each lookup phase (default 100).
	LookupPool int
	// SkipWarmup skips the warm-up: one untimed-for-targets pass over the check pool
	// with CheckBulk before the Check phases, so that they measure a warm cache
	// rather than the first evaluation of each check (the warm-up's own figures show
	// that cost).
	SkipWarmup bool
	// CaveatShare is the share of per-flow grants the caveated phase adds under the
	// from_network caveat (default 0.1; negative skips the phase). See caveats.go.
	CaveatShare float64
	// CaveatConcurrency is the concurrency of the caveated phase (default 64).
	CaveatConcurrency int
	// FullWritesPerSec is the rate of background writes during the fully_consistent
	// phases (default 10; negative disables them). Real fully_consistent reads follow a
	// head that writes keep moving, so they cannot reuse cached answers of an older
	// revision; without writes they would read one revision and measure the cache.
	FullWritesPerSec float64
	// LoadBatch is the number of tuples per Import message or Write (default 1,000).
	LoadBatch int
	// SkipLoad skips the schema write and the load: the server already holds the data
	// set of the same DataConfig (and nothing else).
	SkipLoad bool
	// Phases, when not empty, runs only the phases whose name starts with one of
	// these prefixes ("check-min", "check-full", "check-bulk", "lookup", "mixed").
	Phases []string
	// Settle bounds the wait, after the load, until minimize_latency reads see the
	// loaded data (default 30 s; the server's quantization is 5 s by default).
	Settle time.Duration
	// ServerStats, when not nil, reads the server process's RSS and CPU time.
	ServerStats func() (ProcStats, error)
	// Reporter receives progress; nil reports nothing.
	Reporter Reporter
}

// DefaultConfig is the configuration of `relata bench` without flags.
func DefaultConfig() Config {
	return Config{
		Data:              DefaultDataConfig(),
		PhaseDuration:     10 * time.Second,
		PhaseMaxOps:       2_000_000,
		Concurrencies:     []int{1, 8, 64, 256},
		BulkSize:          100,
		BulkConcurrency:   8,
		LookupConcurrency: 4,
		MixedConcurrency:  64,
		WriteShare:        0.01,
		CheckPool:         100_000,
		LookupPool:        100,
		LoadBatch:         1000,
		Settle:            30 * time.Second,
		FullWritesPerSec:  10,
		CaveatShare:       0.1,
		CaveatConcurrency: 64,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Data == (DataConfig{}) {
		c.Data = d.Data
	}
	if c.PhaseDuration <= 0 {
		c.PhaseDuration = d.PhaseDuration
	}
	if c.PhaseMaxOps <= 0 {
		c.PhaseMaxOps = d.PhaseMaxOps
	}
	if len(c.Concurrencies) == 0 {
		c.Concurrencies = d.Concurrencies
	}
	if c.BulkSize <= 0 {
		c.BulkSize = d.BulkSize
	}
	if c.BulkConcurrency <= 0 {
		c.BulkConcurrency = d.BulkConcurrency
	}
	if c.LookupConcurrency <= 0 {
		c.LookupConcurrency = d.LookupConcurrency
	}
	if c.MixedConcurrency <= 0 {
		c.MixedConcurrency = d.MixedConcurrency
	}
	if c.WriteShare <= 0 {
		c.WriteShare = d.WriteShare
	}
	if c.CheckPool <= 0 {
		c.CheckPool = d.CheckPool
	}
	if c.LookupPool <= 0 {
		c.LookupPool = d.LookupPool
	}
	if c.LoadBatch <= 0 {
		c.LoadBatch = d.LoadBatch
	}
	if c.Settle <= 0 {
		c.Settle = d.Settle
	}
	if c.FullWritesPerSec == 0 {
		c.FullWritesPerSec = d.FullWritesPerSec
	}
	if c.CaveatShare == 0 {
		c.CaveatShare = d.CaveatShare
	}
	if c.CaveatConcurrency <= 0 {
		c.CaveatConcurrency = d.CaveatConcurrency
	}
	if c.Reporter == nil {
		c.Reporter = nopReporter{}
	}
	return c
}

// Validate reports a configuration Run cannot use.
func (c Config) Validate() error {
	var errs []error
	if err := c.Data.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, n := range c.Concurrencies {
		if n < 1 {
			errs = append(errs, fmt.Errorf("bench: concurrency must be at least 1, not %d", n))
		}
	}
	if c.WriteShare < 0 || c.WriteShare > 1 {
		errs = append(errs, fmt.Errorf("bench: write share must be in [0, 1], not %g", c.WriteShare))
	}
	if c.CaveatShare >= 1 {
		errs = append(errs, fmt.Errorf("bench: caveat share must be below 1, not %g", c.CaveatShare))
	}
	if c.BulkSize > 1000 {
		errs = append(errs, fmt.Errorf("bench: bulk size must be at most 1000, not %d", c.BulkSize))
	}
	if c.LoadBatch > 1000 {
		errs = append(errs, fmt.Errorf("bench: load batch must be at most 1000, not %d", c.LoadBatch))
	}
	return errors.Join(errs...)
}

// Reporter receives a run's progress. Its methods are called from one goroutine at a
// time.
type Reporter interface {
	// Phase says a phase starts ("load", "check-min-c64", ...); it ends after limit or
	// after maxOps operations (the load's maxOps is its number of tuples).
	Phase(name string, limit time.Duration, maxOps int64)
	// Progress reports the operations (tuples for the load) done so far.
	Progress(done int64, elapsed time.Duration)
	// PhaseDone reports the phase's result.
	PhaseDone(r PhaseResult)
	// Logf reports a note or a mismatch.
	Logf(format string, args ...any)
}

type nopReporter struct{}

func (nopReporter) Phase(string, time.Duration, int64) {}
func (nopReporter) Progress(int64, time.Duration)      {}
func (nopReporter) PhaseDone(PhaseResult)              {}
func (nopReporter) Logf(string, ...any)                {}

// PhaseResult is the outcome of one phase.
type PhaseResult struct {
	Name string `json:"name"`
	// Consistency is the phase's read consistency; for the load, the method
	// ("import" or "write").
	Consistency string `json:"consistency,omitempty"`
	Concurrency int    `json:"concurrency"`
	// Ops are the requests completed; Items the checks they answered (CheckBulk) or
	// the results they streamed (lookups).
	Ops   int64 `json:"ops"`
	Items int64 `json:"items"`
	// Conditional are the answers that were conditional on missing context (caveated
	// phase), each one expected.
	Conditional int64 `json:"conditional,omitempty"`
	// Writes are the writes among Ops (mixed phase).
	Writes int64 `json:"writes,omitempty"`
	// BackgroundWrites are the writes made beside the phase's operations to move the
	// head (fully_consistent phases).
	BackgroundWrites int64         `json:"background_writes,omitempty"`
	Errors           int64         `json:"errors"`
	Mismatches       int64         `json:"mismatches"`
	Elapsed          time.Duration `json:"elapsed_ns"`
	OpsPerSec        float64       `json:"ops_per_sec"`
	ItemsPerSc       float64       `json:"items_per_sec"`
	Latency          Latencies     `json:"latency"`
	// WriteLatency is the latency of the writes alone (mixed phase).
	WriteLatency *Latencies `json:"write_latency,omitempty"`
	// ServerCPU is the CPU time the server used during the phase; ServerRSS its RSS at
	// the end (both 0 when unknown).
	ServerCPU time.Duration `json:"server_cpu_ns,omitempty"`
	ServerRSS int64         `json:"server_rss_bytes,omitempty"`
	// ErrorSamples are the first distinct error messages.
	ErrorSamples []string `json:"error_samples,omitempty"`
	// Skipped says why the phase did not run (e.g. the server does not support it).
	Skipped string `json:"skipped,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Data   DataConfig    `json:"data"`
	Tuples int           `json:"tuples"`
	Load   *PhaseResult  `json:"load,omitempty"`
	Phases []PhaseResult `json:"phases"`
	// Server is the server process's figures at the end (nil when unknown).
	Server     *ProcStats `json:"server,omitempty"`
	Mismatches int64      `json:"mismatches"`
	Errors     int64      `json:"errors"`
}

// Failed reports whether any answer disagreed with the ground truth.
func (r *Report) Failed() bool { return r.Mismatches > 0 }

// maxLoggedMismatches bounds the mismatches printed per phase (all are counted).
const maxLoggedMismatches = 20

// runner is the state of one Run.
type runner struct {
	cfg   Config
	rep   Reporter
	repMu sync.Mutex // serializes calls to rep
	conns []grpc.ClientConnInterface
	truth *Truth
	pool  []query
	// hot are the indexes in pool of flow#execute checks whose user_granted and
	// user_denied the mixed phase toggles.
	hot       []int
	lookupRes []lookupResourcesCase
	lookupSub []lookupSubjectsCase
	loadRev   tuples.Revision
	// consMin and consFull are shared by all requests of their consistency.
	consMin, consFull *relatav1.Consistency
	// mixed is the state of the mixed phase.
	mixed mixedState
	// warm is the next pool index the warm-up answers.
	warm atomic.Int64
	// caveats, cavPool and cavWarm are the caveated phase's grants, checks (the pool
	// with contexts) and warm-up position.
	caveats *caveatSet
	cavPool []query
	cavWarm atomic.Int64
}

// Run generates the data set, loads it through conns (unless cfg.SkipLoad) and runs
// the phases, spreading the workers over conns. It returns the report; the error is
// for a run that could not proceed (no connection, a failed load). Mismatches are in
// the report, not in the error.
func Run(ctx context.Context, conns []grpc.ClientConnInterface, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(conns) == 0 {
		return nil, errors.New("bench: no connection")
	}
	d, err := Generate(cfg.Data)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rep: cfg.Reporter, conns: conns, truth: NewTruth(d), consMin: minimizeLatency(), consFull: fullyConsistent()}
	rep := &Report{Data: cfg.Data, Tuples: d.Count()}
	r.rep.Logf("data set: %d tuples (%d tenants, %d users, %d flows, %d with overrides); computing the ground truth",
		rep.Tuples, cfg.Data.Tenants, cfg.Data.Users, cfg.Data.Flows, len(d.overriddenFlows))
	r.pool = r.truth.checkPool(cfg.Data.Seed, cfg.CheckPool)
	for i, q := range r.pool {
		if q.perm == PermExecute && len(r.hot) < 1000 {
			r.hot = append(r.hot, i)
		}
	}
	if r.wants("lookup") {
		r.lookupRes, r.lookupSub = r.truth.lookupPools(cfg.Data.Seed, cfg.LookupPool)
	}
	if !cfg.SkipLoad {
		load, err := r.load(ctx, rep.Tuples)
		if err != nil {
			return nil, err
		}
		rep.Load = &load
	} else if err := r.settleAtHead(ctx); err != nil {
		return nil, err
	}
	for _, p := range r.phases() {
		if !r.wants(p.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		rep.add(r.runPhase(ctx, p))
	}
	if r.cfg.CaveatShare > 0 && r.wants(caveatPhaseName(cfg.CaveatConcurrency)) && ctx.Err() == nil {
		for _, res := range r.runCaveated(ctx) {
			rep.add(res)
		}
	}
	if cfg.ServerStats != nil {
		if ps, err := cfg.ServerStats(); err == nil {
			rep.Server = &ps
		}
	}
	return rep, ctx.Err()
}

// add appends a phase's result and counts its mismatches and errors.
func (rep *Report) add(res PhaseResult) {
	rep.Phases = append(rep.Phases, res)
	rep.Mismatches += res.Mismatches
	rep.Errors += res.Errors
}

// wants reports whether phase name is selected by cfg.Phases.
func (r *runner) wants(name string) bool {
	if len(r.cfg.Phases) == 0 {
		return true
	}
	if strings.HasPrefix(name, "warmup") {
		// The warm-up precedes any selected check or mixed phase (the caveated phase
		// has its own).
		for _, p := range r.phases() {
			if !strings.HasPrefix(p.name, "warmup") && !strings.HasPrefix(p.name, "lookup") && r.wants(p.name) {
				return true
			}
		}
		for _, p := range r.cfg.Phases {
			if strings.HasPrefix(p, "warmup") {
				return true
			}
		}
		return false
	}
	for _, p := range r.cfg.Phases {
		if strings.HasPrefix(name, p) || strings.HasPrefix(p, name) {
			return true
		}
	}
	return false
}

// phase is one phase: op does one operation and returns the items it answered.
type phase struct {
	name        string
	consistency string
	concurrency int
	op          func(ctx context.Context, w *worker) (items int, err error)
	// finish runs after the workers stop (the mixed phase verifies there).
	finish func(ctx context.Context, res *PhaseResult, workers []*worker)
	// background, when set, runs beside the workers until its context ends, and
	// returns how many writes it made, how many failed and the first failure.
	background func(ctx context.Context) (writes, failed int64, err error)
	// maxOps and duration override the configured bounds when not zero.
	maxOps   int64
	duration time.Duration
}

// worker is one goroutine of a phase.
type worker struct {
	r     *runner
	id    int
	rng   *rand.Rand
	pos   int
	perm  relatav1.PermissionServiceClient
	rels  relatav1.RelationshipServiceClient
	wrote bool // the last op was a write (mixed phase)
	lat   []time.Duration
	wlat  []time.Duration
	recs  []mixedRecord
	mis   *atomic.Int64
	conds *atomic.Int64 // conditional answers
	phase string
}

// next returns the worker's next index into a pool of n entries.
func (w *worker) next(n int) int {
	w.pos++
	return w.pos % n
}

// mismatch counts a mismatch and reports the first ones.
func (w *worker) mismatch(format string, args ...any) {
	if w.mis.Add(1) <= maxLoggedMismatches {
		w.r.report(func(rep Reporter) { rep.Logf("MISMATCH %s: "+format, append([]any{w.phase}, args...)...) })
	}
}

// report calls fn with the Reporter, one goroutine at a time.
func (r *runner) report(fn func(Reporter)) {
	r.repMu.Lock()
	defer r.repMu.Unlock()
	fn(r.rep)
}

// The consistency messages of the phases (read-only, shared by all requests).
func minimizeLatency() *relatav1.Consistency {
	return &relatav1.Consistency{Requirement: &relatav1.Consistency_MinimizeLatency{MinimizeLatency: true}}
}

func fullyConsistent() *relatav1.Consistency {
	return &relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}}
}

func (r *runner) phases() []phase {
	var ps []phase
	if !r.cfg.SkipWarmup {
		chunks := int64((len(r.pool) + r.cfg.BulkSize - 1) / r.cfg.BulkSize)
		ps = append(ps, phase{name: "warmup-bulk-" + strconv.Itoa(r.cfg.BulkSize), consistency: "minimize_latency",
			concurrency: r.cfg.BulkConcurrency, op: r.warmupOp, maxOps: chunks, duration: 10 * r.cfg.PhaseDuration})
	}
	for _, full := range []bool{false, true} {
		for _, c := range r.cfg.Concurrencies {
			name, cons, consName := "check-min-c"+strconv.Itoa(c), r.consMin, "minimize_latency"
			if full {
				name, cons, consName = "check-full-c"+strconv.Itoa(c), r.consFull, "fully_consistent"
			}
			p := phase{name: name, consistency: consName, concurrency: c, op: r.checkOp(cons, consName)}
			if full && r.cfg.FullWritesPerSec > 0 {
				p.background = r.headMover
			}
			ps = append(ps, p)
		}
	}
	ps = append(ps,
		phase{name: "check-bulk-" + strconv.Itoa(r.cfg.BulkSize), consistency: "minimize_latency", concurrency: r.cfg.BulkConcurrency, op: r.bulkOp},
		phase{name: "lookup-resources", consistency: "minimize_latency", concurrency: r.cfg.LookupConcurrency, op: r.lookupResourcesOp},
		phase{name: "lookup-subjects", consistency: "minimize_latency", concurrency: r.cfg.LookupConcurrency, op: r.lookupSubjectsOp},
		phase{name: "mixed-writes", consistency: "minimize_latency", concurrency: r.cfg.MixedConcurrency, op: r.mixedOp, finish: r.mixedFinish},
	)
	return ps
}

// runPhase runs p's workers until the phase's time or operations run out.
func (r *runner) runPhase(ctx context.Context, p phase) PhaseResult {
	res := PhaseResult{Name: p.name, Consistency: p.consistency, Concurrency: p.concurrency}
	maxOps, duration := r.cfg.PhaseMaxOps, r.cfg.PhaseDuration
	if p.maxOps > 0 {
		maxOps = p.maxOps
	}
	if p.duration > 0 {
		duration = p.duration
	}
	r.report(func(rep Reporter) { rep.Phase(p.name, duration, maxOps) })
	var before ProcStats
	if r.cfg.ServerStats != nil {
		before, _ = r.cfg.ServerStats()
	}
	// Operations in flight at the phase's end finish and count: the phase stops
	// claiming new ones at the deadline, and cancels only when the server does not
	// support the phase.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		claimed, done, items, errs atomic.Int64
		mis, conds                 atomic.Int64
		errMu                      sync.Mutex
		unsupported                string
	)
	workers := make([]*worker, p.concurrency)
	for i := range workers {
		conn := r.conns[i%len(r.conns)]
		workers[i] = &worker{
			r: r, id: i, rng: rand.New(rand.NewPCG(r.cfg.Data.Seed, uint64(i)+100)),
			perm: relatav1.NewPermissionServiceClient(conn), rels: relatav1.NewRelationshipServiceClient(conn),
			mis: &mis, conds: &conds, phase: p.name,
		}
		workers[i].pos = workers[i].rng.IntN(1 << 30)
	}
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for pctx.Err() == nil && claimed.Add(1) <= maxOps {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				n, err := p.op(pctx, w)
				el := time.Since(t0)
				if err != nil {
					if pctx.Err() != nil {
						return // the phase was cancelled: not an error of this op
					}
					errs.Add(1)
					errMu.Lock()
					msg := err.Error()
					if status.Code(err) == codes.Unimplemented && unsupported == "" {
						unsupported = msg
						cancel()
					}
					if len(res.ErrorSamples) < 3 && !slices.Contains(res.ErrorSamples, msg) {
						res.ErrorSamples = append(res.ErrorSamples, msg)
					}
					errMu.Unlock()
					continue
				}
				if w.wrote {
					w.wlat = append(w.wlat, el)
				}
				w.lat = append(w.lat, el)
				items.Add(int64(n))
				done.Add(1)
			}
		})
	}
	bctx, stopBackground := context.WithCancel(ctx)
	var bg sync.WaitGroup
	var bgWrites, bgFailed int64
	var bgErr error
	if p.background != nil {
		bg.Go(func() { bgWrites, bgFailed, bgErr = p.background(bctx) })
	}
	stopProgress := r.progressEvery(100*time.Millisecond, &done, start)
	wg.Wait()
	res.Elapsed = time.Since(start)
	stopBackground()
	bg.Wait()
	stopProgress()
	r.report(func(rep Reporter) { rep.Progress(done.Load(), res.Elapsed) })

	var lat, wlat []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
		wlat = append(wlat, w.wlat...)
	}
	res.Ops, res.Items, res.Errors = done.Load(), items.Load(), errs.Load()+bgFailed
	res.BackgroundWrites = bgWrites
	if bgErr != nil {
		res.ErrorSamples = append(res.ErrorSamples, "background write: "+bgErr.Error())
	}
	if unsupported != "" && res.Ops == 0 {
		res.Skipped = "not supported by the server: " + unsupported
		res.Errors = 0
	}
	if s := res.Elapsed.Seconds(); s > 0 {
		res.OpsPerSec = float64(res.Ops) / s
		res.ItemsPerSc = float64(res.Items) / s
	}
	res.Latency = summarize(lat)
	if len(wlat) > 0 {
		l := summarize(wlat)
		res.WriteLatency = &l
		res.Writes = int64(len(wlat))
	}
	if r.cfg.ServerStats != nil {
		if after, err := r.cfg.ServerStats(); err == nil {
			res.ServerCPU = after.CPU - before.CPU
			res.ServerRSS = after.RSS
		}
	}
	if p.finish != nil && res.Skipped == "" {
		p.finish(ctx, &res, workers)
	}
	res.Mismatches = mis.Load()
	res.Conditional = conds.Load()
	r.report(func(rep Reporter) { rep.PhaseDone(res) })
	return res
}

// checkOp is one Check of the pool at consistency cons.
func (r *runner) checkOp(cons *relatav1.Consistency, consName string) func(ctx context.Context, w *worker) (int, error) {
	return func(ctx context.Context, w *worker) (int, error) {
		q := &r.pool[w.next(len(r.pool))]
		resp, err := w.perm.Check(ctx, &relatav1.CheckRequest{Object: q.obj, Permission: q.perm.String(), Subject: q.subj, Consistency: cons})
		if err != nil {
			return 0, err
		}
		if resp.GetAllowed() != q.want {
			w.mismatch("check %s (%s, at %s): got %t, want %t", q, consName, resp.GetCheckedAt(), resp.GetAllowed(), q.want)
		}
		return 1, nil
	}
}

// bulkOp is one CheckBulk of BulkSize consecutive checks of the pool.
func (r *runner) bulkOp(ctx context.Context, w *worker) (int, error) {
	n := r.cfg.BulkSize
	qs := make([]*query, n)
	req := &relatav1.CheckBulkRequest{Items: make([]*relatav1.CheckBulkRequestItem, n), Consistency: r.consMin}
	for i := range qs {
		q := &r.pool[w.next(len(r.pool))]
		qs[i] = q
		req.Items[i] = &relatav1.CheckBulkRequestItem{Object: q.obj, Permission: q.perm.String(), Subject: q.subj}
	}
	resp, err := w.perm.CheckBulk(ctx, req)
	if err != nil {
		return 0, err
	}
	results := resp.GetResults()
	if len(results) != n {
		w.mismatch("check-bulk of %d items: got %d results", n, len(results))
		return 0, nil
	}
	for i, res := range results {
		if e := res.GetError(); e != nil {
			w.mismatch("check-bulk item %s: error %s %s", qs[i], e.GetCode(), e.GetMessage())
			continue
		}
		if res.GetAllowed() != qs[i].want {
			w.mismatch("check-bulk item %s (at %s): got %t, want %t", qs[i], resp.GetCheckedAt(), res.GetAllowed(), qs[i].want)
		}
	}
	return n, nil
}

// lookupResourcesOp is one LookupResources(flow, execute, user), compared in full.
func (r *runner) lookupResourcesOp(ctx context.Context, w *worker) (int, error) {
	c := &r.lookupRes[w.next(len(r.lookupRes))]
	stream, err := w.perm.LookupResources(ctx, &relatav1.LookupResourcesRequest{ResourceType: "flow", Permission: "execute", Subject: c.subj, Consistency: r.consMin})
	if err != nil {
		return 0, err
	}
	var got []int32
	var bad []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		id := resp.GetObject().GetId()
		n, err := strconv.ParseInt(strings.TrimPrefix(id, "f"), 10, 32)
		if resp.GetObject().GetType() != "flow" || !strings.HasPrefix(id, "f") || err != nil {
			bad = append(bad, resp.GetObject().GetType()+":"+id)
			continue
		}
		got = append(got, int32(n))
	}
	slices.Sort(got)
	if len(bad) > 0 || !slices.Equal(got, c.want) {
		missing, extra := diff(c.want, got)
		w.mismatch("lookup-resources flow execute user:u%d: got %d flows, want %d; missing %s; unexpected %s%s",
			c.user, len(got), len(c.want), sample("flow:f", missing), sample("flow:f", extra), strings.Join(bad, " "))
	}
	return len(got), nil
}

// lookupSubjectsOp is one LookupSubjects(flow, execute, user), compared for every
// user of the data set (a wildcard counts for every user it does not exclude).
func (r *runner) lookupSubjectsOp(ctx context.Context, w *worker) (int, error) {
	c := &r.lookupSub[w.next(len(r.lookupSub))]
	stream, err := w.perm.LookupSubjects(ctx, &relatav1.LookupSubjectsRequest{Object: c.obj, Permission: "execute", SubjectType: "user", Consistency: r.consMin})
	if err != nil {
		return 0, err
	}
	users := len(c.want)
	got := make([]bool, users)
	var wildcard bool
	var excluded []int32
	var bad []string
	n := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		n++
		s := resp.GetSubject()
		if s.GetObject().GetId() == tuples.Wildcard && s.GetObject().GetType() == "user" {
			wildcard = true
			for _, e := range resp.GetExcluded() {
				if u, ok := parseUser(e.GetObject(), users); ok {
					excluded = append(excluded, u)
				}
			}
			continue
		}
		if s.GetObject().GetType() == "user" && s.GetObject().GetId() == headMoverUser {
			continue // a fully_consistent phase's background write, seen at a recent revision
		}
		u, ok := parseUser(s.GetObject(), users)
		if !ok || s.GetRelation() != "" {
			bad = append(bad, s.String())
			continue
		}
		got[u] = true
	}
	if wildcard {
		for u := range got {
			got[u] = true
		}
		for _, u := range excluded {
			got[u] = false
		}
	}
	var missing, extra []int32
	for u := range users {
		switch {
		case c.want[u] && !got[u]:
			missing = append(missing, int32(u))
		case !c.want[u] && got[u]:
			extra = append(extra, int32(u))
		}
	}
	if len(missing)+len(extra)+len(bad) > 0 {
		w.mismatch("lookup-subjects flow:f%d execute user: missing %s; unexpected %s %s",
			c.flow, sample("user:u", missing), sample("user:u", extra), strings.Join(bad, " "))
	}
	return n, nil
}

func parseUser(o *relatav1.ObjectRef, users int) (int32, bool) {
	if o.GetType() != "user" || !strings.HasPrefix(o.GetId(), "u") {
		return 0, false
	}
	n, err := strconv.Atoi(o.GetId()[1:])
	if err != nil || n < 0 || n >= users {
		return 0, false
	}
	return int32(n), true
}

// diff returns the elements of want missing from got and those of got not in want;
// both are ascending.
func diff(want, got []int32) (missing, extra []int32) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i] < got[j]):
			missing = append(missing, want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra
}

// sample prints up to five ids with a prefix, and how many more there are.
func sample(prefix string, ids []int32) string {
	if len(ids) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, id := range ids {
		if i == 5 {
			fmt.Fprintf(&b, " and %d more", len(ids)-5)
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(prefix + strconv.Itoa(int(id)))
	}
	return b.String()
}

// progressEvery reports done's progress since start every interval until the returned
// function is called; that call waits for the reporting goroutine to end.
func (r *runner) progressEvery(interval time.Duration, done *atomic.Int64, start time.Time) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				r.report(func(rep Reporter) { rep.Progress(done.Load(), time.Since(start)) })
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}
