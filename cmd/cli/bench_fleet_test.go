package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/bench"
	"github.com/relata/relata/tuples/pgstore/pgtest"
)

// TestBenchTwoNodesOnPostgres drives two `relata serve --datastore` processes on one
// database with one bench (--more-endpoints): checks at minimize_latency and a mixed
// phase whose writes go through both nodes; every answer matches the ground truth
// at the revision it names, and both nodes served checks.
func TestBenchTwoNodesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and runs bench phases")
	}
	url := pgtest.NewDatabase(t)
	a, _ := startServeProcess(t, "--datastore", url)
	b, _ := startServeProcess(t, "--datastore", url)
	args := []string{"bench", "--endpoint", a.grpcAddr, "--more-endpoints", b.grpcAddr, "--conns", "2",
		"--progress", "none", "--json", "--tenants", "3", "--users", "100", "--flows", "200", "--roles", "6",
		"--workspaces", "2", "--override-share", "0.2", "--pool", "400", "--bulk-size", "50",
		"--phases", "check-min,mixed", "--concurrency", "8", "--mixed-concurrency", "8", "--write-share", "0.1",
		"--caveat-share", "0", "--duration", "10m", "--max-ops", "1500"}
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	require.Equal(t, ExitOK, code, "stderr: %s", errOut.String())
	var rep bench.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.Zero(t, rep.Mismatches, errOut.String())
	require.Zero(t, rep.Errors, out.String())
	var writes int64
	for _, p := range rep.Phases {
		writes += p.Writes
	}
	require.Positive(t, writes, "the mixed phase wrote")
	for name, p := range map[string]*serveProc{"A": a, "B": b} {
		require.Greater(t, servedChecks(t, p.httpAddr), 100, "node %s served checks", name)
	}
}

var checkCount = regexp.MustCompile(`(?m)^relata_grpc_requests_total\{code="OK",method="/relata\.v1\.PermissionService/Check"\} (\d+)$`)

// servedChecks reads how many Check calls the node at httpAddr answered from its
// /metrics.
func servedChecks(t *testing.T, httpAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := checkCount.FindSubmatch(body)
	require.NotNil(t, m, "no Check count in /metrics")
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}
