package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/bench"
	"github.com/relata/relata/schema/models"
)

// TestBenchSmoke runs `relata bench --local` on a tiny data set for a fraction of a
// second per phase and requires every phase to run with every answer matching the
// ground truth.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs every bench phase")
	}
	args := []string{"bench", "--local", "--json", "--progress", "none",
		"--tenants", "3", "--users", "60", "--flows", "150", "--roles", "6", "--workspaces", "2",
		"--override-share", "0.2", "--duration", "150ms", "--concurrency", "1,4",
		"--pool", "300", "--lookup-pool", "5", "--bulk-size", "10", "--mixed-concurrency", "8", "--write-share", "0.1",
		"--caveat-share", "0.5", "--caveat-concurrency", "8"}
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	require.Equal(t, ExitOK, code, "stderr: %s", errOut.String())

	var rep bench.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.Zero(t, rep.Mismatches, errOut.String())
	require.NotNil(t, rep.Load)
	require.Equal(t, int64(rep.Tuples), rep.Load.Ops)
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		require.Empty(t, p.Skipped, p.Name)
		require.Positive(t, p.Ops, p.Name)
	}
	require.Equal(t, []string{"warmup-bulk-10", "check-min-c1", "check-min-c4", "check-full-c1", "check-full-c4",
		"check-bulk-10", "lookup-resources", "lookup-subjects", "mixed-writes",
		"warmup-caveated-bulk-10", "check-caveated-c8"}, names)
}

// TestBenchCaveated runs the caveated phase alone against a server on a small data
// set: every answer (allowed, denied, conditional on the missing address) matches the
// plain-Go ground truth, and afterwards the server holds the default model and data
// set again, so that the other phases still pass on it.
func TestBenchCaveated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs bench phases")
	}
	startServer(t, "", 0)
	data := []string{"--progress", "none", "--json", "--tenants", "4", "--users", "200", "--flows", "400", "--roles", "6",
		"--workspaces", "2", "--override-share", "0.2", "--pool", "1000", "--bulk-size", "50",
		// Phases end after --max-ops operations (the warm-ups after the whole pool),
		// not after a time, so that what they cover does not depend on the machine.
		"--duration", "10m", "--max-ops", "2000"}
	run := func(args ...string) bench.Report {
		t.Helper()
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append(append([]string{"bench"}, args...), data...), strings.NewReader(""), &out, &errOut)
		require.Equal(t, ExitOK, code, "stderr: %s", errOut.String())
		var rep bench.Report
		require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
		require.Zero(t, rep.Mismatches, errOut.String())
		require.Zero(t, rep.Errors, out.String())
		return rep
	}

	rep := run("--phases", "check-caveated", "--caveat-concurrency", "16", "--caveat-share", "0.3")
	require.NotNil(t, rep.Load)
	require.Len(t, rep.Phases, 2)
	require.Equal(t, "warmup-caveated-bulk-50", rep.Phases[0].Name)
	p := rep.Phases[1]
	require.Equal(t, "check-caveated-c16", p.Name)
	require.Equal(t, 16, p.Concurrency)
	require.Equal(t, int64(2000), p.Ops)
	require.Equal(t, int64(1000/50), rep.Phases[0].Ops, "the warm-up covers the pool")
	require.Positive(t, rep.Phases[0].Conditional, "the pool's checks without the address on a caveated grant are conditional")

	// The schema and the tuples are back as the load left them.
	want, err := models.Schema(models.Default)
	require.NoError(t, err)
	got := runCLI("schema read --consistency full", "")
	require.True(t, strings.HasPrefix(got, string(want)), got)
	require.True(t, strings.HasSuffix(got, "exit 0\n"), got)
	require.NotContains(t, got, "from_network")
	grants := runCLI("read flow#user_granted --consistency full", "")
	require.Contains(t, grants, "flow:f", "the data set's own user grants stay")
	require.NotContains(t, grants, "[from_network", "the caveated grants are gone")
	require.True(t, strings.HasSuffix(grants, "exit 0\n"), grants)

	// The other check phases still pass on the same server, and the caveated phase
	// runs again.
	rep = run("--skip-load", "--phases", "check-min,check-caveated", "--concurrency", "8", "--caveat-concurrency", "8", "--caveat-share", "0.3")
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"warmup-bulk-50", "check-min-c8", "warmup-caveated-bulk-50", "check-caveated-c8"}, names)
}

// TestBenchFlags covers the command line errors.
func TestBenchFlags(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"local and endpoint", []string{"bench", "--local", "--endpoint", "localhost:1"}, "--local and --endpoint exclude each other"},
		{"local skip load", []string{"bench", "--local", "--skip-load"}, "--skip-load needs a server"},
		{"local and more endpoints", []string{"bench", "--local", "--more-endpoints", "localhost:1"}, "--local and --more-endpoints exclude each other"},
		{"bad progress", []string{"bench", "--progress", "fancy"}, `--progress "fancy"`},
		{"bad data", []string{"bench", "--tenants", "0"}, "tenants must be at least 1"},
		{"bad concurrency", []string{"bench", "--concurrency", "0"}, "concurrency must be at least 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
			require.Equal(t, ExitUsage, code, "stderr: %s", errOut.String())
			require.Contains(t, errOut.String(), tc.stderr)
		})
	}
}
