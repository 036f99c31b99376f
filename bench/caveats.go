package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/tuples"
)

// The caveated phase (check-caveated-cN): per-flow user grants that hold only from a
// network, as the flow-overrides model writes them
// (flow:F#user_granted@user:U[from_network:{"network":"CIDR"}]), and checks that give
// the caller's address as context. The default model has no caveat, so the phase
// writes the default model with flow-overrides' from_network caveat allowed on
// flow#user_granted (nothing else changes), adds the caveated grants as tuples of
// their own beside the default data set, runs a warm-up and the timed phase, then
// deletes the grants and writes back the schema the server had: the phases before it
// and later runs see the default data set and model unchanged.
//
// Sizes: the caveated grants are CaveatShare of all per-flow grants that confer
// execute (owners, user grants, role grants, caveated grants included): with the
// default 10%, one caveated grant for every nine plain ones (11,772 on the default
// data set). Each goes to a (flow, user) pair that a flow#execute check of the pool
// asks about (not the owner, no plain user grant), so that the phase exercises them;
// its network is the office network of the flow's tenant (10.H.L.0/24, tenant
// H*256+L). The phase's checks are the pool's, each with a fixed context: a tenth give
// none, the others an address in the flow's tenant network (half of them) or in
// another tenant's (half).

// caveatName is the flow-overrides model's IP allow-list caveat.
const caveatName = "from_network"

// fromNetworkCaveat is the from_network caveat exactly as schema/models/flow-overrides.zed
// declares it (a test keeps them equal).
const fromNetworkCaveat = `caveat from_network(ip ipaddress, network string) {
	ip.in_cidr(network)
}
`

// userGrantedPlain and userGrantedCaveated are flow#user_granted in the default model
// and with flow-overrides' caveated forms.
const (
	userGrantedPlain    = "\trelation user_granted: user | service_account\n"
	userGrantedCaveated = "\trelation user_granted: user | service_account | user with expiration | user with from_network | service_account with from_network\n"
)

// caveatedSchema returns the default model with flow-overrides' from_network caveat
// allowed on flow#user_granted, as flow-overrides allows it.
func caveatedSchema() (string, error) {
	text, err := models.Schema(models.Default)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	s := string(text)
	if strings.Count(s, userGrantedPlain) != 1 {
		return "", fmt.Errorf("bench: the %s model no longer declares %q once; the caveated phase cannot extend it", models.Default, strings.TrimSpace(userGrantedPlain))
	}
	s = strings.Replace(s, userGrantedPlain, userGrantedCaveated, 1)
	return s + "\n/** from_network holds when the caller's address (request context) is in the grant's network (as in flow-overrides). */\n" + fromNetworkCaveat, nil
}

// tenantNetwork is the office network of tenant tn: 10.H.L.0/24 with tn = H*256+L
// (tenants past 65,535 share networks, which the ground truth follows).
func tenantNetwork(tn int32) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(tn >> 8), byte(tn), 0}), 24)
}

// addrIn returns host h (1..254) of a /24 network.
func addrIn(p netip.Prefix, h int) netip.Addr {
	a := p.Addr().As4()
	a[3] = byte(1 + h%254)
	return netip.AddrFrom4(a)
}

// pairKey is a (flow, user) pair.
type pairKey struct{ flow, user int32 }

// caveatSet is the caveated grants of a run: flow:F#user_granted@user:U under
// from_network with the network.
type caveatSet struct {
	grants map[pairKey]netip.Prefix
	order  []pairKey // the order they are written in
}

// flowGrants counts the per-flow grants of the data set that confer execute: owners,
// user grants and role grants.
func (d *Dataset) flowGrants() int {
	n := d.cfg.Flows
	for _, o := range d.flowOverride {
		n += len(o.userGranted) + len(o.roleGranted)
	}
	return n
}

// caveatGrants picks the caveated grants: share of all per-flow grants once they are
// added, on pairs of the pool's flow#execute checks whose user is not the flow's owner
// and holds no plain user grant on it.
func (t *Truth) caveatGrants(pool []query, share float64, seed uint64) *caveatSet {
	d := t.d
	cs := &caveatSet{grants: map[pairKey]netip.Prefix{}}
	if share <= 0 {
		return cs
	}
	want := int(float64(d.flowGrants())*share/(1-share) + 0.5)
	var cands []pairKey
	seen := map[pairKey]bool{}
	for i := range pool {
		q := &pool[i]
		k := pairKey{q.object, q.user}
		if q.perm != PermExecute || seen[k] || d.flowOwner[q.object] == q.user ||
			t.basePresent(toggleKey{flow: q.object, user: q.user}) {
			continue
		}
		seen[k] = true
		cands = append(cands, k)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	cands = cands[:min(want, len(cands))]
	T := int32(d.cfg.Tenants)
	for _, k := range cands {
		cs.grants[k] = tenantNetwork(k.flow % T)
	}
	cs.order = cands
	return cs
}

// tuple is the caveated grant of pair k.
func (cs *caveatSet) tuple(k pairKey) *relatav1.Tuple {
	t := toggleTuple(toggleKey{flow: k.flow, user: k.user})
	t.Caveat = &relatav1.ContextualizedCaveat{Name: caveatName, Context: &structpb.Struct{Fields: map[string]*structpb.Value{
		"network": structpb.NewStringValue(cs.grants[k].String()),
	}}}
	return t
}

// clientIP is the address a check of the caveated phase gives as context, if any.
type clientIP struct {
	addr  netip.Addr
	given bool
}

// caveatPool returns the pool's checks with the caveated phase's contexts and their
// answers with the grants of cs: a tenth without context, the others with an address
// in the tenant network of the check's flow (or tenant) or, half of the time, in
// another tenant's.
func (t *Truth) caveatPool(pool []query, cs *caveatSet, seed uint64) []query {
	d := t.d
	T := int32(d.cfg.Tenants)
	rng := rand.New(rand.NewPCG(seed, 4))
	ips := make([]clientIP, len(pool))
	for i := range pool {
		q := &pool[i]
		tn := q.object % T
		if q.perm == PermManageUsers {
			tn = q.object
		}
		switch x := rng.IntN(20); {
		case x < 2: // no context
		case x < 11 || T == 1:
			ips[i] = clientIP{addr: addrIn(tenantNetwork(tn), rng.IntN(254)), given: true}
		default:
			other := (tn + 1 + int32(rng.IntN(int(T-1)))) % T
			ips[i] = clientIP{addr: addrIn(tenantNetwork(other), rng.IntN(254)), given: true}
		}
	}
	out := make([]query, len(pool))
	parallel(len(pool), func(i int) {
		q := pool[i]
		ip := ips[i]
		if ip.given {
			q.ctx = &structpb.Struct{Fields: map[string]*structpb.Value{"ip": structpb.NewStringValue(ip.addr.String())}}
		}
		q.want, q.wantCond = t.CheckCaveated(q.perm, q.object, q.user, cs, ip)
		out[i] = q
	})
	return out
}

// CheckCaveated answers like Check at the newest revision with the caveated grants of
// cs present, for a check whose context gives ip (or nothing): allowed, or
// conditional when the answer depends on the missing address. Only flow#execute reads
// flow#user_granted; view and manage_users answer as Check does.
func (t *Truth) CheckCaveated(p Perm, object, user int32, cs *caveatSet, ip clientIP) (allowed, conditional bool) {
	if p != PermExecute {
		return t.Check(p, object, user, Latest), false
	}
	return t.executeCaveated(object, user, Latest, cs, ip)
}

// phaseConditional is the missing context a conditional answer of the caveated phase
// lists: the caveat's one parameter that the tuples do not store.
var phaseConditional = []string{"ip"}

// caveatSetup writes the caveated schema and grants and waits until minimize_latency
// reads see them. It returns the schema the server had, for caveatCleanup.
func (r *runner) caveatSetup(ctx context.Context) (previous string, err error) {
	text, err := caveatedSchema()
	if err != nil {
		return "", err
	}
	sc := relatav1.NewSchemaServiceClient(r.conns[0])
	cur, err := sc.ReadSchema(ctx, &relatav1.ReadSchemaRequest{Consistency: r.consFull})
	if err != nil {
		return "", fmt.Errorf("bench: reading the schema: %w", err)
	}
	previous = cur.GetSchema()
	if _, err := sc.WriteSchema(ctx, &relatav1.WriteSchemaRequest{Schema: text}); err != nil {
		return previous, fmt.Errorf("bench: writing the %s schema with the %s caveat: %w", models.Default, caveatName, err)
	}
	rev, err := r.writeCaveated(ctx, relatav1.Operation_OPERATION_TOUCH)
	if err != nil {
		return previous, err
	}
	return previous, r.waitMinimizeLatency(ctx, rev)
}

// caveatCleanup deletes the caveated grants and writes back the schema the server had
// before caveatSetup.
func (r *runner) caveatCleanup(ctx context.Context, previous string) error {
	var errs []error
	if _, err := r.writeCaveated(ctx, relatav1.Operation_OPERATION_DELETE); err != nil {
		errs = append(errs, err)
	} else if previous != "" {
		sc := relatav1.NewSchemaServiceClient(r.conns[0])
		if _, err := sc.WriteSchema(ctx, &relatav1.WriteSchemaRequest{Schema: previous}); err != nil {
			errs = append(errs, fmt.Errorf("bench: writing back the schema after the caveated phase: %w", err))
		}
	}
	return errors.Join(errs...)
}

// writeCaveated touches or deletes every caveated grant, in batches of LoadBatch, and
// returns the newest revision written.
func (r *runner) writeCaveated(ctx context.Context, op relatav1.Operation) (tuples.Revision, error) {
	rels := relatav1.NewRelationshipServiceClient(r.conns[0])
	keys := r.caveats.order
	var rev tuples.Revision
	for len(keys) > 0 {
		n := min(len(keys), r.cfg.LoadBatch)
		req := &relatav1.WriteRequest{Updates: make([]*relatav1.TupleUpdate, n)}
		for i, k := range keys[:n] {
			req.Updates[i] = &relatav1.TupleUpdate{Operation: op, Tuple: r.caveats.tuple(k)}
		}
		resp, err := rels.Write(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("bench: %s of the caveated grants: %w", strings.ToLower(strings.TrimPrefix(op.String(), "OPERATION_")), err)
		}
		if rev, err = tuples.ParseZookie(resp.GetWrittenAt()); err != nil {
			return 0, fmt.Errorf("bench: write: written_at: %w", err)
		}
		keys = keys[n:]
	}
	return rev, nil
}

// runCaveated runs the caveated phase (with its warm-up unless SkipWarmup) between
// caveatSetup and caveatCleanup. A setup failure (e.g. a server without caveats) is
// the phase's error and skips it.
func (r *runner) runCaveated(ctx context.Context) []PhaseResult {
	name := caveatPhaseName(r.cfg.CaveatConcurrency)
	r.caveats = r.truth.caveatGrants(r.pool, r.cfg.CaveatShare, r.cfg.Data.Seed)
	r.report(func(rep Reporter) {
		rep.Logf("%s: %d caveated grants (%s on flow#user_granted, %.0f%% of the %d per-flow grants)",
			name, len(r.caveats.order), caveatName, 100*float64(len(r.caveats.order))/float64(r.truth.d.flowGrants()+len(r.caveats.order)), r.truth.d.flowGrants()+len(r.caveats.order))
	})
	r.cavPool = r.truth.caveatPool(r.pool, r.caveats, r.cfg.Data.Seed)
	previous, err := r.caveatSetup(ctx)
	var out []PhaseResult
	if err == nil {
		if !r.cfg.SkipWarmup {
			out = append(out, r.runPhase(ctx, r.caveatWarmupPhase()))
		}
		out = append(out, r.runPhase(ctx, phase{name: name, consistency: "minimize_latency",
			concurrency: r.cfg.CaveatConcurrency, op: r.caveatCheckOp}))
	} else {
		res := PhaseResult{Name: name, Consistency: "minimize_latency", Concurrency: r.cfg.CaveatConcurrency,
			Errors: 1, ErrorSamples: []string{err.Error()}, Skipped: "setup failed: " + err.Error()}
		r.report(func(rep Reporter) {
			rep.Phase(name, 0, 0)
			rep.PhaseDone(res)
		})
		out = append(out, res)
	}
	// The cleanup runs even when the run was interrupted, for a minute at most.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if cerr := r.caveatCleanup(cctx, previous); cerr != nil {
		last := &out[len(out)-1]
		last.Errors++
		last.ErrorSamples = append(last.ErrorSamples, cerr.Error())
	}
	return out
}

// caveatPhaseName is the caveated phase's name at concurrency c.
func caveatPhaseName(c int) string { return "check-caveated-c" + strconv.Itoa(c) }

// caveatWarmupPhase answers the caveated pool once with CheckBulk.
func (r *runner) caveatWarmupPhase() phase {
	chunks := int64((len(r.cavPool) + r.cfg.BulkSize - 1) / r.cfg.BulkSize)
	return phase{name: "warmup-caveated-bulk-" + strconv.Itoa(r.cfg.BulkSize), consistency: "minimize_latency",
		concurrency: r.cfg.BulkConcurrency, maxOps: chunks, duration: 10 * r.cfg.PhaseDuration,
		op: func(ctx context.Context, w *worker) (int, error) {
			n := r.cfg.BulkSize
			start := int(r.cavWarm.Add(int64(n))) - n
			if start >= len(r.cavPool) {
				return 0, nil
			}
			return r.bulkCheck(ctx, w, r.cavPool[start:min(start+n, len(r.cavPool))])
		}}
}

// caveatCheckOp is one Check of the caveated pool, with its context.
func (r *runner) caveatCheckOp(ctx context.Context, w *worker) (int, error) {
	q := &r.cavPool[w.next(len(r.cavPool))]
	resp, err := w.perm.Check(ctx, &relatav1.CheckRequest{Object: q.obj, Permission: q.perm.String(), Subject: q.subj, Consistency: r.consMin, Context: q.ctx})
	if err != nil {
		return 0, err
	}
	w.judge(q, resp.GetAllowed(), resp.GetConditional(), resp.GetMissingContext(), resp.GetCheckedAt())
	return 1, nil
}

// judge compares an answer with the query's: allowed, or conditional on exactly the
// missing address. Conditional answers are counted.
func (w *worker) judge(q *query, allowed, conditional bool, missing []string, at string) {
	if conditional {
		w.conds.Add(1)
	}
	switch {
	case q.wantCond && (allowed || !conditional || !slices.Equal(missing, phaseConditional)):
		w.mismatch("check %s (at %s): got allowed %t, conditional %t, missing %v; want conditional, missing %v",
			q, at, allowed, conditional, missing, phaseConditional)
	case !q.wantCond && (allowed != q.want || conditional):
		w.mismatch("check %s (at %s): got allowed %t, conditional %t (missing %v); want %t", q, at, allowed, conditional, missing, q.want)
	}
}
