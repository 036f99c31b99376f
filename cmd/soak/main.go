// Command soak is the load generator of scripts/soak.sh: against a running server it
// loads a small data set, then runs a mixed load for a duration — 95% checks, 4%
// writes and 1% lookups from --concurrency workers, and --watchers Watch consumers —
// and prints, every --interval, the operations, errors, p99 latency (all operations
// and per kind), the server's RSS with the parts of it /metrics names, and what the
// server did in the interval (work.go: CPU time per operation, cache hit ratios,
// Pebble reads, GC cycles, resources per lookup).
//
// A write is one Write call. It creates a tuple doc:PREFIXN#viewer@user:uX (a new
// document each time); with --churn (the default), once the worker's own last
// --churn-window created tuples are all live, the same Write also deletes the oldest
// of them, so that the data set stays bounded (as on a platform where grants are
// created and revoked) and the run measures the server at a steady state rather than
// the data set's growth. --churn=false: writes only add.
//
// At the end it verifies, with a fully consistent CheckBulk (at a revision at least as
// fresh as every acknowledged write), that every tuple an acknowledged write created
// and no acknowledged write deleted is present and that every tuple an acknowledged
// write deleted is absent, and that every watcher saw every acknowledged change (each
// create and each delete). It exits 1 when any operation failed, a tuple is missing
// or a deleted one is still present, or a watcher missed a change.
//
//	soak --endpoint 127.0.0.1:50051 --insecure --duration 10m --server-pid PID
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// schema is the soak's model: groups of users, documents in folders.
const schema = `definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation viewer: user | group#member
}

definition doc {
    relation folder: folder
    relation viewer: user | group#member
    relation editor: user | group#member
    relation banned: user
    permission edit = editor
    permission view = (viewer + edit + folder->viewer) - banned
}
`

// config is the command line.
type config struct {
	endpoint, token      string
	insecure             bool
	duration, interval   time.Duration
	concurrency          int
	watchers             int
	serverPID            int
	conns                int
	users, groups, docs  int
	folders              int
	checkShare, lookupSh float64
	metricsURL           string
	memoryLimit          int64
	load                 bool
	writePrefix          string
	churn                bool
	churnWindow          int
}

func main() {
	var c config
	flag.StringVar(&c.endpoint, "endpoint", "127.0.0.1:50051", "gRPC address of the server")
	flag.StringVar(&c.token, "token", "", "bearer token (a key with read and write scopes, and schema to load the model)")
	flag.BoolVar(&c.insecure, "insecure", false, "plaintext gRPC")
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the mixed load runs")
	flag.DurationVar(&c.interval, "interval", time.Minute, "how often to report")
	flag.IntVar(&c.concurrency, "concurrency", 256, "workers sending checks, writes and lookups")
	flag.IntVar(&c.watchers, "watchers", 20, "Watch consumers")
	flag.IntVar(&c.serverPID, "server-pid", 0, "pid of the server whose RSS to report (0: not reported)")
	flag.IntVar(&c.conns, "conns", 4, "gRPC connections the workers share")
	flag.IntVar(&c.users, "users", 2000, "users in the data set")
	flag.IntVar(&c.groups, "groups", 200, "groups")
	flag.IntVar(&c.docs, "docs", 20000, "documents")
	flag.IntVar(&c.folders, "folders", 500, "folders")
	flag.Float64Var(&c.checkShare, "check-share", 0.95, "share of checks")
	flag.Float64Var(&c.lookupSh, "lookup-share", 0.01, "share of lookups (the rest are writes)")
	flag.StringVar(&c.metricsURL, "metrics-url", "", "the server's /metrics without authentication (serve --metrics-addr), for the memory breakdown of each report")
	flag.BoolVar(&c.load, "load", true, "write the schema and the data set first (false: an earlier run against the same server loaded them)")
	flag.StringVar(&c.writePrefix, "write-prefix", "w", "id prefix of the documents the writes create (doc:PREFIX1, doc:PREFIX2, ...); a second run against the same server takes another, so that its writes add tuples")
	flag.BoolVar(&c.churn, "churn", true, "each write also deletes the worker's oldest own tuple once --churn-window of them are live, so that the data set stays bounded (false: writes only add)")
	flag.IntVar(&c.churnWindow, "churn-window", 32, "with --churn, how many of its own created tuples each worker keeps live")
	limit := flag.String("memory-limit", "512MiB", "the server's --memory-limit, that RSS is reported against (0: none)")
	flag.Parse()
	var err error
	if c.memoryLimit, err = parseSize(*limit); err != nil {
		fmt.Fprintln(os.Stderr, "soak: --memory-limit:", err)
		os.Exit(2)
	}
	if c.churn && c.churnWindow < 1 {
		fmt.Fprintf(os.Stderr, "soak: --churn-window: %d: want at least 1 (or --churn=false for writes that only add)\n", c.churnWindow)
		os.Exit(2)
	}
	if !c.churn {
		c.churnWindow = 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// op kinds.
const (
	opCheck = iota
	opWrite
	opLookup
	nOps
)

var opNames = [nOps]string{"check", "write", "lookup"}

// stats collects one interval's latencies and errors.
type stats struct {
	mu      sync.Mutex
	lat     [nOps][]time.Duration
	errs    [nOps]int
	results int            // resources the lookups returned
	sample  map[string]int // error text → count, for the report
}

// record records one operation of kind that took d and failed with err (nil: it
// succeeded); results is what a lookup returned.
func (s *stats) record(kind int, d time.Duration, err error, results int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat[kind] = append(s.lat[kind], d)
	s.results += results
	if err != nil {
		s.errs[kind]++
		if s.sample == nil {
			s.sample = map[string]int{}
		}
		msg := err.Error()
		if len(msg) > 160 {
			msg = msg[:160]
		}
		s.sample[msg]++
	}
}

// take returns the interval's data and starts a new one.
func (s *stats) take() (lat [nOps][]time.Duration, errs [nOps]int, results int, sample map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat, errs, results, sample = s.lat, s.errs, s.results, s.sample
	s.lat, s.errs, s.results, s.sample = [nOps][]time.Duration{}, [nOps]int{}, 0, nil
	return lat, errs, results, sample
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)*99)/100]
}

func run(ctx context.Context, c config) error {
	opts := []client.Option{client.WithToken(c.token)}
	if c.insecure {
		opts = append(opts, client.WithInsecure())
	}
	var clients []*client.Client
	for range max(1, c.conns) {
		cl, err := client.New(c.endpoint, opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	cl := clients[0]
	if c.load {
		if err := load(ctx, cl, c); err != nil {
			return fmt.Errorf("loading the data set: %w", err)
		}
	}
	fmt.Printf("soak: %d users, %d groups, %d folders, %d docs loaded; %s of load at concurrency %d with %d watchers (%.0f%% checks, %.0f%% writes, %.0f%% lookups)\n",
		c.users, c.groups, c.folders, c.docs, c.duration, c.concurrency, c.watchers,
		100*c.checkShare, 100*(1-c.checkShare-c.lookupSh), 100*c.lookupSh)
	if c.churnWindow > 0 {
		fmt.Printf("soak: a write is one Write call creating doc:%sN#viewer@user:uX and, once the worker's last %d created tuples are live, deleting its oldest (at most %d written tuples live)\n",
			c.writePrefix, c.churnWindow, c.churnWindow*c.concurrency)
	} else {
		fmt.Printf("soak: a write is one Write call creating doc:%sN#viewer@user:uX; nothing is deleted (--churn=false), so the data set grows\n", c.writePrefix)
	}

	// Watchers start at the head and count the writes they see.
	_, head, err := cl.ReadSchema(ctx, client.FullyConsistent())
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var (
		wg        sync.WaitGroup
		st        stats
		watchErrs atomic.Int64
		seen      = make([]map[string]bool, c.watchers)
		seenMu    = make([]sync.Mutex, c.watchers)
	)
	for i := range c.watchers {
		seen[i] = map[string]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch(watchCtx, clients[i%len(clients)], head, c.writePrefix, &watchErrs, func(key string) {
				seenMu[i].Lock()
				seen[i][key] = true
				seenMu[i].Unlock()
			})
		}()
	}

	var (
		acked ledger
		seq   atomic.Int64
		ops   atomic.Int64
	)
	// The load stops after the duration; calls in flight then finish normally (a
	// deadline on them would fail the last ones for the generator's own reasons).
	var stopping atomic.Bool
	stopTimer := time.AfterFunc(c.duration, func() { stopping.Store(true) })
	defer stopTimer.Stop()
	loadCtx := ctx
	var workers sync.WaitGroup
	for w := range c.concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			cl := clients[w%len(clients)]
			ch := churner{window: c.churnWindow}
			for !stopping.Load() && loadCtx.Err() == nil {
				x := rng.Float64()
				kind := opWrite
				switch {
				case x < c.checkShare:
					kind = opCheck
				case x < c.checkShare+c.lookupSh:
					kind = opLookup
				}
				start := time.Now()
				var (
					err     error
					results int
				)
				switch kind {
				case opCheck:
					_, err = cl.Check(loadCtx, fmt.Sprintf("doc:d%d", rng.IntN(c.docs)), "view", fmt.Sprintf("user:u%d", rng.IntN(c.users)), client.MinimizeLatency())
				case opLookup:
					var ids []string
					ids, _, err = cl.LookupResources(loadCtx, "doc", "view", fmt.Sprintf("user:u%d", rng.IntN(c.users)), client.MinimizeLatency())
					results = len(ids)
				case opWrite:
					t := written{object: fmt.Sprintf("doc:%s%d", c.writePrefix, seq.Add(1)), subject: fmt.Sprintf("user:u%d", rng.IntN(c.users))}
					ups, del, perr := ch.next(t)
					err = perr
					if err == nil {
						_, err = cl.Write(loadCtx, ups)
						ch.done(t, del, err, &acked)
					}
				}
				if loadCtx.Err() != nil {
					break // interrupted
				}
				st.record(kind, time.Since(start), err, results)
				ops.Add(1)
			}
		}()
	}

	// Report every interval until the load ends.
	began := time.Now()
	totalErrs := 0
	var memory []memorySample // one per interval
	prev := sampleMemory(ctx, c.serverPID, c.metricsURL)
	report := func(final bool) {
		lat, errs, results, sample := st.take()
		var all []time.Duration
		n, e := 0, 0
		var parts []string
		for k := range nOps {
			all = append(all, lat[k]...)
			n += len(lat[k])
			e += errs[k]
			parts = append(parts, fmt.Sprintf("%s %d p99 %s", opNames[k], len(lat[k]), p99(lat[k]).Round(10*time.Microsecond)))
		}
		totalErrs += e
		if final && n == 0 {
			return
		}
		label := fmt.Sprintf("%5.1f min", time.Since(began).Minutes())
		if final {
			label = "  (tail)"
		}
		mem := sampleMemory(ctx, c.serverPID, c.metricsURL)
		if !final {
			memory = append(memory, mem)
		}
		fmt.Printf("%s: %d ops, %d errors, p99 %s (%s), server RSS %s, watch errors %d\n",
			label, n, e, p99(all).Round(10*time.Microsecond), strings.Join(parts, ", "), rss(c.serverPID), watchErrs.Load())
		if c.serverPID > 0 {
			fmt.Printf("    %s\n", mem.line(c.memoryLimit))
		}
		if w := work(prev, mem, n, len(lat[opLookup]), results); w != "" {
			fmt.Printf("    %s\n", w)
		}
		prev = mem
		for msg, k := range sample {
			fmt.Printf("    %d× %s\n", k, msg)
		}
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
loop:
	for {
		select {
		case <-tick.C:
			report(false)
		case <-done:
			break loop
		}
	}
	report(true)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.serverPID > 0 {
		fmt.Println(growth(memory, c.interval, c.memoryLimit))
	}

	// Every acknowledged create not deleted since is present, every acknowledged
	// delete's tuple is absent, and every watcher saw every acknowledged change.
	present, absent := acked.expect()
	v, err := verify(ctx, cl, present, absent)
	if err != nil {
		return fmt.Errorf("verifying the writes: %w", err)
	}
	fmt.Printf("verify: %s", v)
	if n := len(acked.unknown); n > 0 {
		fmt.Printf("; %d tuples of failed writes not verified", n)
	}
	fmt.Println()
	changes := acked.changes()
	lagging := waitWatchers(ctx, changes, seen, seenMu)
	stopWatch()
	wg.Wait()
	fmt.Printf("watch: %d watchers, %d saw every one of the %d acknowledged changes (creates and deletes), %d stream errors\n", c.watchers, c.watchers-lagging, len(changes), watchErrs.Load())
	if totalErrs > 0 || !v.ok() || lagging > 0 || watchErrs.Load() > 0 {
		return fmt.Errorf("%d errors, %d missing tuples, %d deleted tuples still present, %d watchers missing changes, %d watch errors", totalErrs, v.missing, v.lingered, lagging, watchErrs.Load())
	}
	fmt.Println("soak: ok")
	return nil
}

// load writes the schema and the data set.
func load(ctx context.Context, cl *client.Client, c config) error {
	if _, err := cl.WriteSchema(ctx, schema); err != nil {
		return err
	}
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ups, err := client.Touch(batch...)
		if err != nil {
			return err
		}
		batch = batch[:0]
		_, err = cl.Write(ctx, ups)
		return err
	}
	add := func(t string) error {
		batch = append(batch, t)
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for u := range c.users {
		if err := add(fmt.Sprintf("group:g%d#member@user:u%d", u%c.groups, u)); err != nil {
			return err
		}
	}
	for f := range c.folders {
		if err := add(fmt.Sprintf("folder:f%d#viewer@group:g%d#member", f, rng.IntN(c.groups))); err != nil {
			return err
		}
	}
	for d := range c.docs {
		ts := []string{
			fmt.Sprintf("doc:d%d#folder@folder:f%d", d, rng.IntN(c.folders)),
			fmt.Sprintf("doc:d%d#editor@user:u%d", d, rng.IntN(c.users)),
			fmt.Sprintf("doc:d%d#viewer@group:g%d#member", d, rng.IntN(c.groups)),
		}
		if d%50 == 0 {
			ts = append(ts, fmt.Sprintf("doc:d%d#banned@user:u%d", d, rng.IntN(c.users)))
		}
		for _, t := range ts {
			if err := add(t); err != nil {
				return err
			}
		}
	}
	return flush()
}

// watch follows the change log from `from`, reporting the changes (changeKey's form)
// to documents whose id starts with prefix, reconnecting after an error (counted)
// from the last revision it completed, until ctx ends.
func watch(ctx context.Context, cl *client.Client, from, prefix string, errs *atomic.Int64, saw func(key string)) {
	for ctx.Err() == nil {
		stream, err := cl.Relationships().Watch(ctx, &relatav1.WatchRequest{From: from})
		if err != nil {
			if ctx.Err() == nil {
				errs.Add(1)
			}
			continue
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					errs.Add(1)
				}
				break
			}
			for _, ch := range resp.GetChanges() {
				t := client.TupleFromProto(ch.GetTuple())
				if strings.HasPrefix(t.Object.ID, prefix) {
					saw(changeKey(ch.GetOperation() == relatav1.Operation_DELETE, t.String()))
				}
			}
			if z := resp.GetChangesThrough(); z != "" {
				from = z
			}
		}
	}
}

// waitWatchers waits (up to a minute) until every watcher saw every one of changes,
// and returns how many did not.
func waitWatchers(ctx context.Context, changes []string, seen []map[string]bool, mu []sync.Mutex) int {
	deadline := time.Now().Add(time.Minute)
	for {
		lagging := 0
		for i := range seen {
			mu[i].Lock()
			for _, k := range changes {
				if !seen[i][k] {
					lagging++
					break
				}
			}
			mu[i].Unlock()
		}
		if lagging == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return lagging
		}
		time.Sleep(200 * time.Millisecond) // polling a condition, with a deadline
	}
}

// rss returns the resident set size of pid, from /proc.
func rss(pid int) string {
	if m := rssMiB(pid); m > 0 {
		return fmt.Sprintf("%.0f MiB", m)
	}
	return "n/a"
}
