package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/relata/relata/bench"
	"github.com/relata/relata/check"
	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples/pebblestore"
)

// benchFlags are the flags of `relata bench`.
type benchFlags struct {
	client    *clientFlags
	local     bool
	serverPID int
	conns     int
	more      []string
	progress  string
	phases    []string
	cpuProf   string
	warmup    bool
	cfg       bench.Config
}

// addBenchCommand registers `relata bench`.
func addBenchCommand(root *cobra.Command, s *streams) {
	cmd, cf := clientCommand("bench", "Load a workflow-platform data set and measure Check, lookups and writes", cobra.NoArgs)
	f := &benchFlags{client: cf, cfg: bench.DefaultConfig()}
	cmd.Long = `Generate a deterministic workflow-platform data set on the default model
(1,002,569 tuples by default), load it into a server (the Import RPC, or
Write batches), then run the phases: a warm-up pass over the check pool
(CheckBulk), Check at each --concurrency with minimize_latency and with
fully_consistent (with --full-writes background writes moving the head), CheckBulk,
LookupResources,
LookupSubjects, a mixed phase with --write-share writes, and last a caveated phase
(check-caveated-c64): the default model with the from_network IP allow-list caveat
of the flow-overrides model on flow#user_granted, --caveat-share of the per-flow
grants added under it (removed again afterwards), and checks that give the caller's
address as context (a tenth give none: conditional answers). Every answer is
verified against ground truth computed from the generator's own structures; a
mismatch is printed and makes the command exit 1.

--local starts an in-process server on a temporary directory (real gRPC on
loopback); otherwise --endpoint names a server, which should be empty (or hold
exactly this data set, with --skip-load). Server RSS and CPU time are printed for
--local (this process: server and bench client together) and for --server-pid.

--more-endpoints names further servers that share --endpoint's datastore (a fleet
over one PostgreSQL): --conns connections go to each server, and the workers take
them in turn, so every phase spreads its calls evenly over the nodes. The data set is
loaded through --endpoint. Answers are judged as for one server (each at the
revision its response names), so a node that served a stale cached answer shows up
as a mismatch.`
	fl := cmd.Flags()
	c, d := &f.cfg, &f.cfg.Data
	fl.BoolVar(&f.local, "local", false, "run an in-process server on a temporary directory")
	fl.IntVar(&f.serverPID, "server-pid", 0, "pid of the server (on this machine) whose RSS and CPU time to report")
	fl.IntVar(&f.conns, "conns", 4, "gRPC connections the workers share")
	fl.StringSliceVar(&f.more, "more-endpoints", nil, "gRPC addresses of further servers over the same datastore; the workers spread their calls over all of them (--conns connections each)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output on stderr: auto (a bar on a terminal, else lines), bar, lines or none")
	fl.StringVar(&f.cpuProf, "cpu-profile", "", "write a CPU profile of this process (the bench client, and the server with --local) to FILE")
	fl.StringSliceVar(&f.phases, "phases", nil, "run only phases whose names start with these (check-min, check-full, check-bulk, lookup, mixed, check-caveated)")
	fl.Uint64Var(&d.Seed, "seed", d.Seed, "seed of the data set and the workloads")
	fl.IntVar(&d.Tenants, "tenants", d.Tenants, "tenants")
	fl.IntVar(&d.TenantDepth, "tenant-depth", d.TenantDepth, "levels of the tenant tree")
	fl.IntVar(&d.Users, "users", d.Users, "users")
	fl.IntVar(&d.RolesPerTenant, "roles", d.RolesPerTenant, "custom roles per tenant")
	fl.IntVar(&d.RoleNesting, "role-nesting", d.RoleNesting, "length of the chains of nested roles")
	fl.IntVar(&d.WorkspacesPerTenant, "workspaces", d.WorkspacesPerTenant, "workspaces per tenant")
	fl.IntVar(&d.Flows, "flows", d.Flows, "flows")
	fl.Float64Var(&d.OverrideShare, "override-share", d.OverrideShare, "share of flows with per-flow grant/deny overrides")
	fl.IntVar(&d.VersionsPerFlow, "versions", d.VersionsPerFlow, "versions per flow")
	fl.IntVar(&d.SharesPerFlow, "shares", d.SharesPerFlow, "users each flow is shared with")
	fl.DurationVar(&c.PhaseDuration, "duration", c.PhaseDuration, "time limit of each phase")
	fl.Int64Var(&c.PhaseMaxOps, "max-ops", c.PhaseMaxOps, "operation limit of each phase")
	fl.IntSliceVar(&c.Concurrencies, "concurrency", c.Concurrencies, "concurrencies of the Check phases")
	fl.IntVar(&c.BulkSize, "bulk-size", c.BulkSize, "items per CheckBulk")
	fl.IntVar(&c.BulkConcurrency, "bulk-concurrency", c.BulkConcurrency, "concurrency of the CheckBulk phase")
	fl.IntVar(&c.LookupConcurrency, "lookup-concurrency", c.LookupConcurrency, "concurrency of the lookup phases")
	fl.IntVar(&c.MixedConcurrency, "mixed-concurrency", c.MixedConcurrency, "concurrency of the mixed phase")
	fl.Float64Var(&c.WriteShare, "write-share", c.WriteShare, "share of writes in the mixed phase")
	fl.IntVar(&c.CheckPool, "pool", c.CheckPool, "distinct checks the Check phases cycle through")
	fl.IntVar(&c.LookupPool, "lookup-pool", c.LookupPool, "distinct lookups of each lookup phase")
	fl.BoolVar(&c.SkipLoad, "skip-load", false, "do not write the schema and the data set (the server already holds them)")
	fl.BoolVar(&f.warmup, "warmup", true, "answer the check pool once with CheckBulk before the Check phases (--warmup=false measures them from a cold cache)")
	fl.Float64Var(&c.CaveatShare, "caveat-share", c.CaveatShare, "share of per-flow grants the caveated phase adds under the from_network caveat (0: no caveated phase)")
	fl.IntVar(&c.CaveatConcurrency, "caveat-concurrency", c.CaveatConcurrency, "concurrency of the caveated phase")
	fl.Float64Var(&c.FullWritesPerSec, "full-writes", c.FullWritesPerSec, "background writes per second during the fully_consistent phases, so that the head moves (0: none)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runBench(cmd.Context(), s, f, cmd.Flags().Changed("endpoint"))
	}
	root.AddCommand(cmd)
}

func runBench(ctx context.Context, s *streams, f *benchFlags, endpointSet bool) error {
	switch {
	case f.local && endpointSet:
		return usageError("bench: --local and --endpoint exclude each other")
	case f.local && len(f.more) > 0:
		return usageError("bench: --local and --more-endpoints exclude each other")
	case f.local && f.cfg.SkipLoad:
		return usageError("bench: --skip-load needs a server that holds the data set, not --local")
	case f.conns < 1:
		return usageError("bench: --conns must be at least 1")
	case f.progress != "auto" && f.progress != "bar" && f.progress != "lines" && f.progress != "none":
		return usageError("bench: --progress %q: want auto, bar, lines or none", f.progress)
	}
	f.cfg.Phases = f.phases
	f.cfg.SkipWarmup = !f.warmup
	if f.cfg.FullWritesPerSec == 0 {
		f.cfg.FullWritesPerSec = -1 // bench.Config: negative disables
	}
	if f.cfg.CaveatShare == 0 {
		f.cfg.CaveatShare = -1 // bench.Config: negative disables
	}
	if err := f.cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	endpoint, token := f.client.endpoint, f.client.token
	serverNote := ""
	if f.local {
		addr, stop, err := startLocalServer(ctx, s)
		if err != nil {
			return err
		}
		defer stop()
		endpoint, token = addr, ""
		f.cfg.ServerStats = func() (bench.ProcStats, error) { return bench.ReadProcStats(os.Getpid()) }
		serverNote = "--local: this process, server and bench client together"
	}
	if f.serverPID > 0 {
		pid := f.serverPID
		if _, err := bench.ReadProcStats(pid); err != nil {
			return usageError("bench: --server-pid %d: %v", pid, err)
		}
		f.cfg.ServerStats = func() (bench.ProcStats, error) { return bench.ReadProcStats(pid) }
		serverNote = fmt.Sprintf("pid %d", pid)
	}
	// Connection i goes to endpoint i mod n: workers take connections in turn.
	endpoints := append([]string{endpoint}, f.more...)
	conns := make([]grpc.ClientConnInterface, f.conns*len(endpoints))
	for i := range conns {
		ep := endpoints[i%len(endpoints)]
		creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
		if f.local || f.client.insecure || isLoopback(ep) {
			creds = insecure.NewCredentials()
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(benchToken{token: token, secure: !f.client.insecure && !isLoopback(ep)}))
		}
		// One connection each: a single HTTP/2 connection serializes its frames.
		conn, err := grpc.NewClient(ep, opts...)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", ep, err)
		}
		defer conn.Close()
		conns[i] = conn
	}
	if f.cpuProf != "" {
		pf, err := os.Create(f.cpuProf)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep := newBenchReporter(s.err, f.progress)
	f.cfg.Reporter = rep
	report, err := bench.Run(ctx, conns, f.cfg)
	rep.close()
	if err != nil && report == nil {
		return err
	}
	// An interrupted run (err is the context's) still prints the phases it finished.
	if f.client.json {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := report.WriteTable(s.out, serverNote); err != nil {
		return err
	}
	if report.Failed() {
		return &exitError{code: ExitError, err: fmt.Errorf("bench: %d answers disagreed with the ground truth", report.Mismatches)}
	}
	if err != nil {
		return fmt.Errorf("bench: interrupted: %w", err)
	}
	return nil
}

// benchToken sends the --token as a bearer token.
type benchToken struct {
	token  string
	secure bool
}

func (t benchToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

func (t benchToken) RequireTransportSecurity() bool { return t.secure }

// startLocalServer runs a server on a temporary directory with gRPC on a loopback
// port, and returns its address and the function that stops it and removes the
// directory.
func startLocalServer(ctx context.Context, s *streams) (string, func(), error) {
	dir, err := os.MkdirTemp("", "relata-bench-")
	if err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	// Nobody reads the in-process server's log: a handler that is never enabled, so
	// that the access line of each call is not even formatted (a TextHandler on
	// io.Discard formats and drops one per Check).
	log := slog.New(slog.DiscardHandler)
	store, err := pebblestore.Open(dir, &pebblestore.Options{Logger: log})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("bench: opening a store in %s: %w", dir, err)
	}
	srv, err := server.New(server.Config{
		Store:    store,
		Engine:   check.New(check.Options{}),
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   log,
	})
	if err != nil {
		store.Close()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(s.err, "relata: bench: local server:", err)
		}
		if err := store.Close(); err != nil {
			fmt.Fprintln(s.err, "relata: bench: closing the local store:", err)
		}
		os.RemoveAll(dir)
	}
	return srv.GRPCAddr().String(), stop, nil
}

// benchReporter shows the run's progress on stderr: a bar per phase on a terminal,
// else a line per phase.
type benchReporter struct {
	w    io.Writer
	mode string
	p    *mpb.Progress
	bar  *mpb.Bar
	// final is the running bar's summary, set when its phase ends.
	final *atomic.Pointer[string]

	// mu guards the current phase's figures, which the bar's decorator reads.
	mu struct {
		sync.Mutex
		name    string
		limit   time.Duration
		maxOps  int64
		done    int64
		elapsed time.Duration
	}
}

func newBenchReporter(w io.Writer, mode string) *benchReporter {
	if mode == "auto" {
		mode = "lines"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	r := &benchReporter{w: w, mode: mode}
	if mode == "bar" {
		// Auto refresh even when w is not a terminal (--progress bar forced):
		// without it the bars never render, and a completed bar never ends.
		r.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	}
	return r
}

// status describes the current phase in one line.
func (r *benchReporter) status() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	unit := "ops"
	if r.mu.name == "load" {
		unit = "tuples"
	}
	return fmt.Sprintf("%d %s, %.0f/s", r.mu.done, unit, float64(r.mu.done)/max(r.mu.elapsed.Seconds(), 1e-9))
}

// Phase starts a bar (or says so in a line).
func (r *benchReporter) Phase(name string, limit time.Duration, maxOps int64) {
	r.mu.Lock()
	r.mu.name, r.mu.limit, r.mu.maxOps, r.mu.done, r.mu.elapsed = name, limit, maxOps, 0, 0
	r.mu.Unlock()
	switch r.mode {
	case "bar":
		// A finished bar keeps its phase's summary; the running one shows live figures.
		final := new(atomic.Pointer[string])
		r.final = final
		r.bar = r.p.AddBar(1000,
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-18s", name))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				if f := final.Load(); f != nil {
					return *f
				}
				return r.status()
			})))
	case "lines":
		fmt.Fprintf(r.w, "bench: %s ...\n", name)
	}
}

// Progress moves the bar by the larger of the time and operation fractions.
func (r *benchReporter) Progress(done int64, elapsed time.Duration) {
	r.mu.Lock()
	r.mu.done, r.mu.elapsed = done, elapsed
	frac := 0.0
	if r.mu.limit > 0 {
		frac = float64(elapsed) / float64(r.mu.limit)
	}
	if r.mu.maxOps > 0 {
		frac = max(frac, float64(done)/float64(r.mu.maxOps))
	}
	r.mu.Unlock()
	if r.bar != nil {
		r.bar.SetCurrent(int64(min(frac, 0.999) * 1000))
	}
}

// PhaseDone completes the bar (or prints the phase's line).
func (r *benchReporter) PhaseDone(p bench.PhaseResult) {
	summary := fmt.Sprintf("%d ops, %.0f ops/s, p99 %.2fms, %d errors, %d mismatches",
		p.Ops, p.OpsPerSec, float64(p.Latency.P99)/float64(time.Millisecond), p.Errors, p.Mismatches)
	switch {
	case p.Skipped != "":
		summary = "skipped, " + p.Skipped
	case p.Name == "load":
		summary = fmt.Sprintf("%d tuples, %.0f tuples/s (%s)", p.Ops, p.OpsPerSec, p.Consistency)
	}
	line := "bench: " + p.Name + ": " + summary
	switch r.mode {
	case "bar":
		r.final.Store(&summary)
		r.bar.SetCurrent(1000) // reaching the total completes the bar
		r.bar.Wait()
		r.bar = nil
	case "lines":
		fmt.Fprintln(r.w, line)
	}
}

// Logf prints a note above the bars.
func (r *benchReporter) Logf(format string, args ...any) {
	msg := "bench: " + strings.TrimSuffix(fmt.Sprintf(format, args...), "\n") + "\n"
	if r.mode == "bar" {
		if _, err := r.p.Write([]byte(msg)); err == nil {
			return
		}
	}
	if r.mode != "none" || strings.Contains(msg, "MISMATCH") {
		io.WriteString(r.w, msg)
	}
}

func (r *benchReporter) close() {
	if r.p != nil {
		if r.bar != nil {
			r.bar.Abort(false)
		}
		r.p.Wait()
	}
}
