package bench

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/schema/models"
)

// TestCaveatedSchema checks that the caveated phase's schema is the default model with
// flow-overrides' from_network caveat, verbatim, allowed on flow#user_granted as
// flow-overrides allows it, and nothing else: a compatible change (no removal).
func TestCaveatedSchema(t *testing.T) {
	text, err := caveatedSchema()
	require.NoError(t, err)
	caveated, err := schema.Compile("caveated", []byte(text))
	require.NoError(t, err)

	fo, err := models.Schema("flow-overrides")
	require.NoError(t, err)
	require.Contains(t, string(fo), fromNetworkCaveat, "the caveat must be flow-overrides' own")
	require.Contains(t, string(fo), strings.TrimSpace(userGrantedCaveated), "user_granted's forms must be flow-overrides' own")

	def, err := models.Schema(models.Default)
	require.NoError(t, err)
	plain, err := schema.Compile("default", def)
	require.NoError(t, err)
	require.Empty(t, schema.Diff(plain, caveated), "adding the caveat removes nothing")
	changes := schema.Compare(plain, caveated)
	require.Len(t, changes, 3, "%v", changes) // the caveat, definition flow and its relation
	for _, c := range changes {
		require.Truef(t, c.Name == caveatName || c.Definition == "" && c.Name == "flow" || c.Definition == "flow" && c.Name == "user_granted",
			"unexpected change %v", c)
	}
}

// TestCaveatTruth checks the ground truth's three-valued flow#execute against cases
// worked out from the model's rules.
func TestCaveatTruth(t *testing.T) {
	d, err := Generate(tinyConfig())
	require.NoError(t, err)
	tr := NewTruth(d)
	T := int32(d.cfg.Tenants)
	none := &caveatSet{grants: map[pairKey]netip.Prefix{}}

	// A pair whose answer without grants is false and whose user is not denied: the
	// caveat decides.
	var f, u int32 = -1, -1
	for fl := range int32(d.cfg.Flows) {
		for _, usr := range d.usersOfTenant[fl%T] {
			if a, _ := tr.executeCaveated(fl, usr, Latest, none, clientIP{}); !a && d.flowOverride[fl] == nil {
				f, u = fl, usr
				break
			}
		}
		if f >= 0 {
			break
		}
	}
	require.GreaterOrEqual(t, f, int32(0), "no flow and user without execute")
	network := tenantNetwork(f % T)
	cs := &caveatSet{grants: map[pairKey]netip.Prefix{{f, u}: network}}
	inside := clientIP{addr: addrIn(network, 7), given: true}
	outside := clientIP{addr: addrIn(tenantNetwork(f%T+1), 7), given: true}
	for _, tc := range []struct {
		name              string
		ip                clientIP
		allowed, wantCond bool
	}{
		{"inside the network", inside, true, false},
		{"outside the network", outside, false, false},
		{"no address", clientIP{}, false, true},
	} {
		allowed, cond := tr.CheckCaveated(PermExecute, f, u, cs, tc.ip)
		require.Equal(t, tc.allowed, allowed, tc.name)
		require.Equal(t, tc.wantCond, cond, tc.name)
	}
	// flow#view does not read user_granted.
	view, cond := tr.CheckCaveated(PermView, f, u, cs, clientIP{})
	require.Equal(t, tr.Check(PermView, f, u, Latest), view)
	require.False(t, cond)

	// The owner is allowed whatever the caveat; a user-level deny beats it, with or
	// without the address.
	owner := d.flowOwner[f]
	cs.grants[pairKey{f, owner}] = network
	allowed, cond := tr.CheckCaveated(PermExecute, f, owner, cs, clientIP{})
	require.True(t, allowed)
	require.False(t, cond)
	tr.record(toggleKey{flow: f, user: u, denied: true}, true, 5)
	for _, ip := range []clientIP{inside, {}} {
		allowed, cond := tr.CheckCaveated(PermExecute, f, u, cs, ip)
		require.False(t, allowed)
		require.False(t, cond)
	}

	// A user allowed through a role: the caveated grant changes nothing, even without
	// the address.
	for fl := range int32(d.cfg.Flows) {
		for _, usr := range d.usersOfTenant[fl%T] {
			if a, _ := tr.executeCaveated(fl, usr, Latest, none, clientIP{}); a && d.flowOwner[fl] != usr {
				cs := &caveatSet{grants: map[pairKey]netip.Prefix{{fl, usr}: tenantNetwork(fl % T)}}
				allowed, cond := tr.CheckCaveated(PermExecute, fl, usr, cs, clientIP{})
				require.True(t, allowed)
				require.False(t, cond)
				return
			}
		}
	}
	t.Fatal("no user allowed through a role")
}

// TestCaveatPool checks the caveated phase's data: the grants are the configured share
// of the per-flow grants, on pairs the pool checks, none on an owner or a plain grant,
// and the pool's answers are a mix of allowed, denied and conditional, with the caveat
// deciding some of each.
func TestCaveatPool(t *testing.T) {
	d, err := Generate(tinyConfig())
	require.NoError(t, err)
	tr := NewTruth(d)
	pool := tr.checkPool(1, 2000)
	cs := tr.caveatGrants(pool, 0.3, 1)
	total := d.flowGrants() + len(cs.order)
	require.InDelta(t, 0.3, float64(len(cs.order))/float64(total), 0.005)
	require.Len(t, cs.grants, len(cs.order))
	for k := range cs.grants {
		require.NotEqual(t, d.flowOwner[k.flow], k.user)
		require.False(t, tr.basePresent(toggleKey{flow: k.flow, user: k.user}))
	}
	require.Equal(t, cs, tr.caveatGrants(pool, 0.3, 1), "deterministic")

	cp := tr.caveatPool(pool, cs, 1)
	require.Len(t, cp, len(pool))
	var noCtx, cond, decided int
	for i, q := range cp {
		require.Equal(t, pool[i].obj, q.obj)
		if q.ctx == nil {
			noCtx++
		}
		if q.wantCond {
			cond++
			require.False(t, q.want)
			require.Nil(t, q.ctx)
		}
		if _, ok := cs.grants[pairKey{q.object, q.user}]; ok && q.perm == PermExecute && q.ctx != nil && q.want != pool[i].want {
			decided++
		}
	}
	require.InDelta(t, 0.1, float64(noCtx)/float64(len(cp)), 0.03)
	require.Positive(t, cond)
	require.Positive(t, decided, "some addresses inside a grant's network allow")
}
