package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// benchConcurrency is the number of concurrent callers of the check benchmarks.
const benchConcurrency = 64

// runConcurrent calls fn b.N times from benchConcurrency goroutines and reports the
// throughput (checks/s) and the latency percentiles (p50-ms, p99-ms), client included.
func runConcurrent(b *testing.B, fn func(i int) error) {
	var next atomic.Int64
	lat := make([][]time.Duration, benchConcurrency)
	errs := make([]error, benchConcurrency)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := fn(int(i)); err != nil {
					errs[g] = err
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for _, err := range errs {
		require.NoError(b, err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checks/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// benchChecks are the questions the benchmarks ask in turn: allowed through a role,
// through the tenant tree, denied by an exclusion, and denied outright.
var benchChecks = [][3]string{
	{"flow:f1", "execute", "user:anne"},
	{"flow:f1", "execute", "user:bob"},
	{"flow:f1", "execute", "user:carl"},
	{"flow:f1", "execute", "user:dave"},
}

func newBenchEnv(b *testing.B) *testEnv {
	env := newTestEnv(b, func(c *Config) { c.Quantization = DefaultQuantization })
	env.seed(b)
	return env
}

// BenchmarkGRPCCheck measures Check over gRPC on loopback at concurrency 64.
func BenchmarkGRPCCheck(b *testing.B) {
	env := newBenchEnv(b)
	reqs := make([]*relatav1.CheckRequest, len(benchChecks))
	for i, c := range benchChecks {
		reqs[i] = checkReq(c[0], c[1], c[2])
	}
	ctx := context.Background()
	runConcurrent(b, func(i int) error {
		_, err := env.perms.Check(ctx, reqs[i%len(reqs)])
		return err
	})
}

// BenchmarkGRPCCheckFullyConsistent measures Check over gRPC on loopback at
// concurrency 64 and fully_consistent, the path of relata bench's check-full phases
// (the head revision read per call), with the server's log off as bench --local has
// it (slog.DiscardHandler: the access line is not even formatted), so that what
// remains is the per-call cost of the server itself; allocs/op counts client and
// server together.
func BenchmarkGRPCCheckFullyConsistent(b *testing.B) {
	env := newTestEnv(b, func(c *Config) {
		c.Quantization = DefaultQuantization
		c.Logger = slog.New(slog.DiscardHandler)
	})
	env.seed(b)
	full := &relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}}
	reqs := make([]*relatav1.CheckRequest, len(benchChecks))
	for i, c := range benchChecks {
		reqs[i] = checkReq(c[0], c[1], c[2])
		reqs[i].Consistency = full
	}
	ctx := context.Background()
	runConcurrent(b, func(i int) error {
		_, err := env.perms.Check(ctx, reqs[i%len(reqs)])
		return err
	})
}

// BenchmarkRESTCheck measures POST /v1/check on loopback at concurrency 64.
func BenchmarkRESTCheck(b *testing.B) {
	env := newBenchEnv(b)
	bodies := make([]string, len(benchChecks))
	for i, c := range benchChecks {
		bodies[i] = checkJSON(c[0], c[1], c[2], "")
	}
	tr := &http.Transport{MaxIdleConns: benchConcurrency, MaxIdleConnsPerHost: benchConcurrency}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := env.baseURL + "/v1/check"
	runConcurrent(b, func(i int) error {
		resp, err := hc.Post(url, "application/json", strings.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &httpStatusError{resp.StatusCode}
		}
		return err
	})
}

type httpStatusError struct{ code int }

func (e *httpStatusError) Error() string { return http.StatusText(e.code) }
