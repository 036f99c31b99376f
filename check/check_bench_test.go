package check

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// The benchmark data set is workflow-platform-like: 100 tenants in a 2-level tree (10
// roots of 9 children each), 20 roles per tenant with nesting, flows spread evenly over
// the tenants and 5% of them with per-flow grant/deny overrides. The defaults keep a
// run short; `-bench.flows=100000 -bench.users=200000` makes the ≥1M-tuple set.
var (
	benchFlows       = flag.Int("bench.flows", 20000, "flows in the benchmark data set")
	benchUsers       = flag.Int("bench.users", 5000, "users in the benchmark data set")
	benchMemberships = flag.Int("bench.memberships", 4, "role memberships per user")
	benchDir         = flag.String("bench.dir", "", "keep the benchmark store in this directory and reuse it when it exists (same flags); default: a new temporary directory")
)

const (
	benchRoots       = 10
	benchChildren    = 9 // per root: 100 tenants in all
	benchRolesPerTen = 20
)

// benchData is a loaded benchmark store.
type benchData struct {
	r       tuples.Reader
	tuples  int
	flows   int
	tenants []string
	// viewer is a user that views exactly one leaf tenant (through a nested role).
	viewer tuples.SubjectRef
	users  int
}

func benchTenant(i int) string {
	if i < benchRoots {
		return fmt.Sprintf("root%d", i)
	}
	return fmt.Sprintf("leaf%d", i)
}

func benchRole(tenant string, i int) string { return fmt.Sprintf("%s-r%d", tenant, i) }

// loadBenchData generates the data set into a Pebble store in a temporary directory.
func loadBenchData(b *testing.B) *benchData {
	b.Helper()
	ctx := context.Background()
	dir := *benchDir
	if dir == "" {
		dir = b.TempDir()
	}
	st, err := pebblestore.Open(dir, &pebblestore.Options{GCInterval: -1, CacheSize: 256 << 20})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, st.Close()) })
	head, err := st.HeadRevision(ctx)
	require.NoError(b, err)
	write := head == 0 // a kept store is reused as it is
	srev := head
	if write {
		srev, err = st.WriteSchema(ctx, designSchema().Text(), nil)
		require.NoError(b, err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	d := &benchData{flows: *benchFlows, users: *benchUsers}
	var batch []tuples.Tuple
	rev := srev
	emit := func(line string) {
		d.tuples++
		if !write {
			return
		}
		t, err := tuples.ParseTuple(line)
		require.NoError(b, err)
		batch = append(batch, t)
		if len(batch) == 10000 {
			rev, err = st.Import(ctx, batch, srev)
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
	nTenants := benchRoots + benchRoots*benchChildren
	for i := 0; i < nTenants; i++ {
		t := benchTenant(i)
		d.tenants = append(d.tenants, t)
		if i >= benchRoots {
			emit(fmt.Sprintf("tenant:%s#parent@tenant:%s", t, benchTenant((i-benchRoots)/benchChildren)))
		}
		// r0 admins, r1..r9 viewers; r10..r19 nested into r0..r9.
		emit(fmt.Sprintf("tenant:%s#admin@role:%s#member", t, benchRole(t, 0)))
		for k := 1; k < 10; k++ {
			emit(fmt.Sprintf("tenant:%s#viewer@role:%s#member", t, benchRole(t, k)))
		}
		for k := 10; k < benchRolesPerTen; k++ {
			emit(fmt.Sprintf("role:%s#member@role:%s#member", benchRole(t, k-10), benchRole(t, k)))
		}
	}
	for u := 0; u < d.users; u++ {
		for m := 0; m < *benchMemberships; m++ {
			t := d.tenants[rng.IntN(nTenants)]
			emit(fmt.Sprintf("role:%s#member@user:u%d", benchRole(t, 1+rng.IntN(benchRolesPerTen-1)), u))
		}
	}
	// The viewer: a member of a nested viewer role of one leaf tenant.
	emit(fmt.Sprintf("role:%s#member@user:viewer", benchRole(benchTenant(benchRoots), 13)))
	d.viewer = tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "viewer"}}
	for f := 0; f < d.flows; f++ {
		t := d.tenants[f%nTenants]
		emit(fmt.Sprintf("flow:f%d#tenant@tenant:%s", f, t))
		if rng.IntN(100) < 5 { // per-flow overrides
			emit(fmt.Sprintf("flow:f%d#granted@user:u%d", f, rng.IntN(d.users)))
			emit(fmt.Sprintf("flow:f%d#denied@user:u%d", f, rng.IntN(d.users)))
			emit(fmt.Sprintf("flow:f%d#granted@role:%s#member", f, benchRole(d.tenants[rng.IntN(nTenants)], 5)))
			emit(fmt.Sprintf("flow:f%d#denied@role:%s#member", f, benchRole(t, 6)))
		}
	}
	if len(batch) > 0 {
		rev, err = st.Import(ctx, batch, srev)
		require.NoError(b, err)
	}
	d.r, err = st.ReaderAt(ctx, rev)
	require.NoError(b, err)
	return d
}

// benchChecks returns n random flow#execute checks.
func (d *benchData) benchChecks(n int, seed uint64) []CheckRequest {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]CheckRequest, n)
	for i := range out {
		out[i] = CheckRequest{
			Object:     tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("f%d", rng.IntN(d.flows))},
			Permission: "execute",
			Subject:    tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(d.users))}},
		}
	}
	return out
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkCheckUncached measures Check without the cache, one goroutine per request
// (Concurrency 1: checks/s per core).
func BenchmarkCheckUncached(b *testing.B) {
	d := loadBenchData(b)
	b.Logf("data set: %d tuples, %d flows, %d users", d.tuples, d.flows, d.users)
	e := New(Options{CacheBytes: -1, Concurrency: 1})
	ctx := context.Background()
	reqs := d.benchChecks(100000, 3)
	lat := make([]time.Duration, 0, b.N)
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		res, err := e.Check(ctx, d.r, reqs[i%len(reqs)])
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if res.Allowed {
			allowed++
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed-ratio")
}

// BenchmarkCheckCached measures Check answered from the shared cache (a warm working
// set of 10,000 checks).
func BenchmarkCheckCached(b *testing.B) {
	d := loadBenchData(b)
	e := New(Options{Concurrency: 1})
	ctx := context.Background()
	reqs := d.benchChecks(10000, 4)
	for _, req := range reqs {
		_, err := e.Check(ctx, d.r, req)
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Check(ctx, d.r, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// BenchmarkLookupResources looks up the flows a viewer of one tenant may execute
// (1/100 of all flows), without the cache.
func BenchmarkLookupResources(b *testing.B) {
	d := loadBenchData(b)
	e := New(Options{CacheBytes: -1})
	ctx := context.Background()
	req := LookupResourcesRequest{ResourceType: "flow", Permission: "execute", Subject: d.viewer}
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n = 0
		err := e.LookupResources(ctx, d.r, req, func(LookupResourcesResult) error { n++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "results")
	if want := d.flows / len(d.tenants); n < want*9/10 {
		b.Fatalf("found %d flows, want about %d", n, want)
	}
}

// BenchmarkCheckParallel measures Check as a loaded server runs it: default options
// (fan-out up to 8, shared cache), 32 requests in flight per CPU, over a pool of
// 100,000 random checks. One op is one check.
func BenchmarkCheckParallel(b *testing.B) {
	d := loadBenchData(b)
	e := New(Options{})
	ctx := context.Background()
	reqs := d.benchChecks(100000, 5)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if _, err := e.Check(ctx, d.r, reqs[i%int64(len(reqs))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
