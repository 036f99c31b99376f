package server

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples/pebblestore"
)

// scrape GETs url with token (if any) and returns the status and body.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, b := doHTTP(t, req)
	return resp.StatusCode, string(b)
}

// sample returns the value of the first sample line of body that starts with
// prefix (a metric name with its labels, or a prefix of them), or -1.
func sample(body, prefix string) float64 {
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	fs := vfs.NewMem()
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: fs, OnCommit: m.ObserveCommit})
	require.NoError(t, err)
	env := startEnv(t, fs, store, func(c *Config) {
		c.Metrics = m
		c.PresharedKey = "sekret"
		c.MetricsAddr = "127.0.0.1:0"
	})
	env.seed(t)
	for range 3 {
		_, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
		require.NoError(t, err)
	}
	_, err = env.perms.Check(context.Background(), checkReq("flow:f1", "execute", "user:anne"))
	require.Error(t, err) // unauthenticated: counted with its code
	// Two lookups: the second gets its scans from the lookup scan cache.
	for range 2 {
		stream, err := env.perms.LookupResources(env.ctx(), &relatav1.LookupResourcesRequest{ResourceType: "flow", Permission: "execute",
			Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}, BatchResults: true})
		require.NoError(t, err)
		for {
			if _, err := stream.Recv(); err != nil {
				require.ErrorIs(t, err, io.EOF)
				break
			}
		}
	}

	// On the API port /metrics follows the API's auth rule.
	code, _ := scrape(t, env.baseURL+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := scrape(t, env.baseURL+"/metrics", "sekret")
	require.Equal(t, http.StatusOK, code)
	// On its own listener it needs no token, and serves the same registry.
	code, own := scrape(t, "http://"+env.srv.MetricsAddr().String()+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, own, "relata_grpc_requests_total")

	checkMethod := `method="/relata.v1.PermissionService/Check"`
	require.Equal(t, 3.0, sample(body, `relata_grpc_requests_total{code="OK",`+checkMethod+`}`), body)
	require.Equal(t, 1.0, sample(body, `relata_grpc_requests_total{code="Unauthenticated",`+checkMethod+`}`))
	require.Equal(t, 3.0, sample(body, `relata_grpc_request_duration_seconds_count{code="OK",`+checkMethod+`}`))
	require.Equal(t, 3.0, sample(body, "relata_check_dispatches_count"))
	require.Greater(t, sample(body, "relata_check_dispatches_sum"), 3.0, "execute needs more than one sub-problem")
	require.Equal(t, 3.0, sample(body, "relata_check_store_reads_count"))
	// Two commits: the schema and the tuples.
	require.Equal(t, 2.0, sample(body, "relata_committer_batch_requests_count"))
	require.Equal(t, 2.0, sample(body, "relata_committer_sync_seconds_count"))
	require.Equal(t, float64(len(testTuples)), sample(body, "relata_committer_batch_tuples_sum"))
	require.Equal(t, 2.0, sample(body, "relata_head_revision "))
	require.GreaterOrEqual(t, sample(body, "relata_gc_horizon_revision "), 0.0)
	require.Greater(t, sample(body, "relata_check_cache_misses_total "), 0.0)
	require.Greater(t, sample(body, "relata_check_cache_hits_total "), 0.0, "the second check hits the cache")
	require.GreaterOrEqual(t, sample(body, "relata_read_cache_misses_total "), 0.0)
	require.Greater(t, sample(body, "relata_lookup_scan_cache_hits_total "), 0.0, "the second lookup's scans come from the cache")
	require.Greater(t, sample(body, "relata_lookup_scan_cache_misses_total "), 0.0)
	require.Greater(t, sample(body, "relata_lookup_scan_cache_entries "), 0.0)
	require.Greater(t, sample(body, "relata_lookup_scan_cache_bytes "), 0.0)
	require.GreaterOrEqual(t, sample(body, "relata_pebble_compactions_total "), 0.0)
	require.Greater(t, sample(body, "relata_pebble_memtables "), 0.0)
	require.Greater(t, sample(body, "go_goroutines "), 0.0)
	require.Greater(t, sample(body, "process_resident_memory_bytes "), 0.0)

	// An open Watch stream is counted while it is open.
	ctx, cancel := context.WithCancel(env.ctx())
	defer cancel()
	w, err := env.rels.Watch(ctx, &relatav1.WatchRequest{})
	require.NoError(t, err)
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "tenant:acme#viewer@user:dan")
	_, err = w.Recv()
	require.NoError(t, err)
	_, body = scrape(t, env.baseURL+"/metrics", "sekret")
	require.Equal(t, 1.0, sample(body, "relata_watch_streams "))
	// Every family is named relata_* except the Go and process collectors.
	for _, name := range regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllStringSubmatch(body, -1) {
		require.Regexp(t, `^(relata_|go_|process_)`, name[1])
	}
}

// TestNestedSetIndexFollowsWrites: the server keeps the engine's nested-set index
// current from the change log, and checks at revisions it covers use it (with the same
// answers: a role nested into ops gives its members ops' grants, and a delete takes
// them away again).
func TestNestedSetIndexFollowsWrites(t *testing.T) {
	m := NewMetrics()
	fs := vfs.NewMem()
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: fs})
	require.NoError(t, err)
	env := startEnv(t, fs, store, func(c *Config) { c.Metrics = m })
	env.seed(t)
	full := &relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}}
	caughtUp := func(rev float64) func() bool {
		return func() bool {
			_, body := scrape(t, env.baseURL+"/metrics", "")
			return sample(body, "relata_closure_applied_revision ") >= rev
		}
	}
	for step, want := range []bool{true, false} {
		op := relatav1.Operation_OPERATION_TOUCH
		if step == 1 {
			op = relatav1.Operation_OPERATION_DELETE
		}
		env.write(t, op, "role:ops#member@role:devs#member")
		if step == 0 {
			env.write(t, relatav1.Operation_OPERATION_TOUCH, "role:devs#member@user:erin")
		}
		_, body := scrape(t, env.baseURL+"/metrics", "")
		require.Eventually(t, caughtUp(sample(body, "relata_head_revision ")), time.Minute, 5*time.Millisecond)
		req := checkReq("flow:f1", "execute", "user:erin")
		req.Consistency = full
		resp, err := env.perms.Check(env.ctx(), req)
		require.NoError(t, err)
		require.Equal(t, want, resp.GetAllowed(), "step %d", step)
	}
	_, body := scrape(t, env.baseURL+"/metrics", "")
	require.Greater(t, sample(body, "relata_closure_walks_total "), 0.0, body)
	require.Equal(t, 0.0, sample(body, "relata_closure_live_entries "), "the nesting was deleted")
	// devs→ops went (and appeared, unless the index was built after that write).
	require.GreaterOrEqual(t, sample(body, "relata_closure_entry_changes_total "), 1.0)
}
