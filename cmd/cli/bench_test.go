package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/bench"
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
		"--pool", "300", "--lookup-pool", "5", "--bulk-size", "10", "--mixed-concurrency", "8", "--write-share", "0.1"}
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
		"check-bulk-10", "lookup-resources", "lookup-subjects", "mixed-writes"}, names)
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
