package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

func tinyConfig() DataConfig {
	c := DefaultDataConfig()
	c.Tenants, c.Users, c.Flows, c.RolesPerTenant, c.WorkspacesPerTenant = 5, 100, 200, 8, 2
	c.OverrideShare = 0.3
	return c
}

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(tinyConfig())
	require.NoError(t, err)
	b, err := Generate(tinyConfig())
	require.NoError(t, err)
	var ta, tb []tuples.Tuple
	for x := range a.Tuples() {
		ta = append(ta, x)
	}
	for x := range b.Tuples() {
		tb = append(tb, x)
	}
	require.Equal(t, ta, tb)
	require.Equal(t, len(ta), a.Count())
	for _, x := range ta {
		require.NoError(t, x.Validate(), x.String())
	}
	other := tinyConfig()
	other.Seed = 2
	c, err := Generate(other)
	require.NoError(t, err)
	var tc []tuples.Tuple
	for x := range c.Tuples() {
		tc = append(tc, x)
	}
	require.NotEqual(t, ta, tc)
}

func TestDataConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*DataConfig)
		msg  string
	}{
		{"tenants", func(c *DataConfig) { c.Tenants = 0 }, "tenants must be at least 1"},
		{"users", func(c *DataConfig) { c.Users = 1 }, "users (1) must be at least"},
		{"share", func(c *DataConfig) { c.OverrideShare = 2 }, "override share must be in [0, 1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig()
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.msg)
		})
	}
}

// TestTruthHistory checks that recorded toggles answer by revision.
func TestTruthHistory(t *testing.T) {
	d, err := Generate(tinyConfig())
	require.NoError(t, err)
	tr := NewTruth(d)
	// A flow without overrides and a user of its tenant who is not its owner.
	f := int32(0)
	for d.flowOverride[f] != nil {
		f++
	}
	u := d.usersOfTenant[f%int32(d.cfg.Tenants)][0]
	if d.flowOwner[f] == u {
		u = d.usersOfTenant[f%int32(d.cfg.Tenants)][1]
	}
	before := tr.Check(PermExecute, f, u, Latest)
	k := toggleKey{flow: f, user: u, denied: true}
	require.Equal(t, tr.basePresent(k), tr.present(k, Latest))
	tr.record(k, true, 10)
	require.Equal(t, before, tr.Check(PermExecute, f, u, 9), "before the deny")
	require.False(t, tr.Check(PermExecute, f, u, 10), "denied at 10")
	tr.record(k, false, 12)
	require.False(t, tr.Check(PermExecute, f, u, 11))
	require.Equal(t, before, tr.Check(PermExecute, f, u, Latest), "deny removed at 12")
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, Latencies{P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}, summarize(ds))
	require.Equal(t, Latencies{}, summarize(nil))
}

func TestDiff(t *testing.T) {
	missing, extra := diff([]int32{1, 2, 4, 7}, []int32{2, 3, 4, 8})
	require.Equal(t, []int32{1, 7}, missing)
	require.Equal(t, []int32{3, 8}, extra)
	require.Equal(t, "flow:f1 flow:f7", sample("flow:f", missing))
	require.Equal(t, "none", sample("flow:f", nil))
}
