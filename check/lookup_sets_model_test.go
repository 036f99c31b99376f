package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/tuples"
)

// TestSetLookupsDefaultModel checks the lookups of Relata's default model
// (workflow-platform) on data of relata bench's shape, at a small scale: nested
// tenants, nested roles with role:default#member@user:*, tenant-wide role grants and
// denials (role:default among them), workspace levels, per-flow user and role grants
// and denials. flow#execute reaches its exclusions through workspace->execute_default
// -> tenant->execute_workflow, and flow_version#activate through flow->execute besides:
// every lookup is answered by set algebra through those arrows, with no candidate
// verified by Check, and gives exactly the objects Check allows, page by page.
func TestSetLookupsDefaultModel(t *testing.T) {
	ctx := context.Background()
	text, err := models.Schema(models.Default)
	require.NoError(t, err)
	s, err := schema.Compile("workflow-platform", text)
	require.NoError(t, err)
	ts, users, flows, versions := defaultModelTuples(rand.New(rand.NewPCG(3, 9)))
	st := openStore(t)
	r := st.load(t, s, ts)
	e := New(Options{CacheBytes: -1})
	cached := New(Options{}) // with the lookup scan cache
	subjects := []tuples.SubjectRef{{Object: tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}},
		{Object: tuples.ObjectRef{Type: "role", ID: "t1r2"}, Relation: "member"},
		{Object: tuples.ObjectRef{Type: "role", ID: "default"}, Relation: "member"},
		{Object: tuples.ObjectRef{Type: "tenant", ID: "t2"}, Relation: "execute_workflow"},
		{Object: tuples.ObjectRef{Type: "workspace", ID: "t3w0"}, Relation: "execute_default"},
		{Object: tuples.ObjectRef{Type: "service_account", ID: "s1"}}}
	for _, u := range users {
		subjects = append(subjects, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: u}})
	}
	total, viaArrows := 0, int64(0)
	for _, q := range []struct {
		typ, perm string
		ids       []string
	}{{"flow", "execute", flows}, {"flow_version", "activate", versions}} {
		for _, subj := range subjects {
			m := fmt.Sprintf("LookupResources(%s, %s, %s)", q.typ, q.perm, subj)
			before, arrows := e.setLookups.Load(), e.setArrows.Load()
			checks := e.setVerified.Load()
			got, errText := lookupIDs(ctx, e, r, q.typ, q.perm, subj)
			require.Empty(t, errText, m)
			require.Equal(t, before+1, e.setLookups.Load(), "%s: not answered by set algebra", m)
			require.Equal(t, checks, e.setVerified.Load(), "%s: candidates were verified with Check", m)
			viaArrows += e.setArrows.Load() - arrows
			var want []string
			for _, id := range q.ids {
				res, err := e.Check(ctx, r, CheckRequest{Object: tuples.ObjectRef{Type: q.typ, ID: id}, Permission: q.perm, Subject: subj})
				require.NoError(t, err, m)
				if res.Allowed {
					want = append(want, id)
				}
			}
			require.Equal(t, want, got, m)
			total += len(got)
			for range 2 { // the second time from the scan cache
				again, errText := lookupIDs(ctx, cached, r, q.typ, q.perm, subj)
				require.Empty(t, errText, m)
				require.Equal(t, want, again, "%s, scan cache", m)
			}
			for _, limit := range []int{3} {
				require.Equal(t, want, pageResources(t, e, r, LookupResourcesRequest{ResourceType: q.typ, Permission: q.perm, Subject: subj}, limit), "%s paged by %d", m, limit)
			}
		}
	}
	require.Greater(t, total, 60, "too few results to tell anything")
	require.Greater(t, viaArrows, int64(2*len(subjects)), "the arrows were not mapped back")
	require.Positive(t, e.setDrops.Load(), "no denial removed anything")
}

// defaultModelTuples generates data of the default model, relata bench's shape at a
// small scale, and returns the tuples, the users, flows and flow versions.
func defaultModelTuples(rng *rand.Rand) (out []tuples.Tuple, users, flows, versions []string) {
	add := func(format string, args ...any) {
		tp, err := tuples.ParseTuple(fmt.Sprintf(format, args...))
		if err != nil {
			panic(err)
		}
		out = append(out, tp)
	}
	add("role:default#member@user:*")
	add("role:authenticated#member@user:*")
	add("role:anonymous#member@anonymous:*")
	const nt, roles, ws = 5, 5, 2
	tenantRels := []string{"admin", "developer", "contributor", "creator", "viewer"}
	for t := 0; t < nt; t++ {
		if t > 0 {
			add("tenant:t%d#parent@tenant:t%d", t, (t-1)/2)
		}
		for j := 0; j < roles; j++ {
			add("role:t%dr%d#tenant@tenant:t%d", t, j, t)
			if j > 0 && rng.IntN(2) == 0 {
				add("role:t%dr%d#member@role:t%dr%d#member", t, j, t, rng.IntN(j))
			}
			if rng.IntN(2) == 0 {
				add("tenant:t%d#%s@role:t%dr%d#member", t, tenantRels[rng.IntN(len(tenantRels))], t, j)
			}
		}
		switch rng.IntN(3) {
		case 0:
			add("tenant:t%d#role_granted@role:default#member", t)
		case 1:
			add("tenant:t%d#role_granted@role:t%dr%d#member", t, t, rng.IntN(roles))
		}
		if rng.IntN(2) == 0 {
			add("tenant:t%d#role_denied@role:t%dr%d#member", t, t, rng.IntN(roles))
		}
		for k := 0; k < ws; k++ {
			add("workspace:t%dw%d#tenant@tenant:t%d", t, k, t)
			if rng.IntN(3) == 0 {
				add("workspace:t%dw%d#%s@role:t%dr%d#member", t, k, []string{"flows_viewer", "flows_editor", "flows_author"}[rng.IntN(3)], t, rng.IntN(roles))
			}
		}
	}
	for u := 0; u < 12; u++ {
		id := fmt.Sprintf("u%d", u)
		users = append(users, id)
		t := u % nt
		if rng.IntN(3) == 0 {
			add("tenant:t%d#%s@user:%s", t, tenantRels[rng.IntN(len(tenantRels))], id)
		}
		if rng.IntN(5) == 0 {
			add("tenant:t%d#flow_author@user:%s", t, id)
		}
		for n := rng.IntN(3); n > 0; n-- {
			add("role:t%dr%d#member@user:%s", t, rng.IntN(roles), id)
		}
		add("workspace:t%dw%d#member@user:%s", t, rng.IntN(ws), id)
	}
	users = append(users, "nobody")
	add("role:t0r1#member@service_account:s1")
	for f := 0; f < 50; f++ {
		id := fmt.Sprintf("f%03d", f)
		flows = append(flows, id)
		t, w := rng.IntN(nt), rng.IntN(ws)
		add("flow:%s#workspace@workspace:t%dw%d", id, t, w)
		add("flow:%s#owner@user:u%d", id, rng.IntN(12))
		if rng.IntN(3) == 0 {
			switch rng.IntN(5) {
			case 0:
				add("flow:%s#user_granted@user:u%d", id, rng.IntN(12))
			case 1:
				add("flow:%s#user_denied@user:u%d", id, rng.IntN(12))
			case 2:
				add("flow:%s#role_granted@role:t%dr%d#member", id, t, rng.IntN(roles))
			case 3:
				add("flow:%s#role_denied@role:t%dr%d#member", id, t, rng.IntN(roles))
			default:
				add("flow:%s#user_granted@service_account:s1", id)
			}
		}
		for k := 0; k < 2; k++ {
			v := fmt.Sprintf("%s-v%d", id, k)
			versions = append(versions, v)
			add("flow_version:%s#flow@flow:%s", v, id)
			if k == 1 {
				add("flow_version:%s#live@user:*", v)
				add("flow_version:%s#live@service_account:*", v)
			}
		}
	}
	slices.Sort(flows)
	slices.Sort(versions)
	return out, users, flows, versions
}
