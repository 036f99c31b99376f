package bench

import (
	"math/rand/v2"
	"runtime"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// query is one check of a workload with its expected answer and its request parts,
// built once so that the timed loop only sends.
type query struct {
	perm         Perm
	object, user int32
	want         bool
	obj          *relatav1.ObjectRef
	subj         *relatav1.SubjectRef
	// ctx is the check's context (the caveated phase); wantCond says the answer is
	// conditional on the missing address (want is then false).
	ctx      *structpb.Struct
	wantCond bool
}

// String prints the check as a tuple, with its context if any:
// flow:f1#execute@user:u2 with {"ip":"10.0.1.7"}.
func (q *query) String() string {
	s := q.obj.GetType() + ":" + q.obj.GetId() + "#" + q.perm.String() + "@user:" + q.subj.GetObject().GetId()
	if q.ctx != nil {
		if b, err := protojson.Marshal(q.ctx); err == nil {
			s += " with " + string(b)
		}
	}
	return s
}

func objectProto(o tuples.ObjectRef) *relatav1.ObjectRef {
	return &relatav1.ObjectRef{Type: o.Type, Id: o.ID}
}

func userSubject(u int32) *relatav1.SubjectRef {
	return &relatav1.SubjectRef{Object: objectProto(userRef(u))}
}

// newQuery builds the check p(object, user) and asks t for its answer.
func (t *Truth) newQuery(p Perm, object, user int32) query {
	o := flowRef(object)
	if p == PermManageUsers {
		o = tenantRef(object)
	}
	return query{perm: p, object: object, user: user, want: t.Check(p, object, user, Latest), obj: objectProto(o), subj: userSubject(user)}
}

// checkPool returns n checks: 80% flow#execute, 15% flow#view and 5%
// tenant#manage_users. The user is mostly one of the object's tenant (70%), a user
// named in a per-flow override (10%, when the flow has one) or any user (20%), so that
// answers are a mix of true and false along every branch of the rules.
func (t *Truth) checkPool(seed uint64, n int) []query {
	d := t.d
	rng := rand.New(rand.NewPCG(seed, 1))
	T := int32(d.cfg.Tenants)
	specs := make([][3]int32, n)
	for i := range specs {
		var p Perm
		switch x := rng.IntN(100); {
		case x < 80:
			p = PermExecute
		case x < 95:
			p = PermView
		default:
			p = PermManageUsers
		}
		var object, user int32
		if p == PermManageUsers {
			object = int32(rng.IntN(int(T)))
			tn := object
			if rng.IntN(2) == 0 && d.tenantParent[tn] >= 0 {
				tn = d.tenantParent[tn]
			}
			user = pick(rng, d.usersOfTenant[tn])
			if rng.IntN(5) == 0 {
				user = int32(rng.IntN(d.cfg.Users))
			}
		} else {
			if rng.IntN(10) == 0 && len(d.overriddenFlows) > 0 {
				object = pick(rng, d.overriddenFlows)
			} else {
				object = int32(rng.IntN(d.cfg.Flows))
			}
			user = pick(rng, d.usersOfTenant[object%T])
			switch x := rng.IntN(100); {
			case x < 10:
				if o := d.flowOverride[object]; o != nil && len(o.userGranted)+len(o.userDenied) > 0 {
					named := append(append([]int32(nil), o.userGranted...), o.userDenied...)
					user = pick(rng, named)
				}
			case x < 30:
				user = int32(rng.IntN(d.cfg.Users))
			}
		}
		specs[i] = [3]int32{int32(p), object, user}
	}
	out := make([]query, n)
	parallel(n, func(i int) {
		s := specs[i]
		out[i] = t.newQuery(Perm(s[0]), s[1], s[2])
	})
	return out
}

// lookupResourcesCase is one LookupResources(flow, execute, user) with its answer.
type lookupResourcesCase struct {
	user int32
	want []int32 // ascending flow indexes
	subj *relatav1.SubjectRef
}

// lookupSubjectsCase is one LookupSubjects(flow, execute, user) with its answer.
type lookupSubjectsCase struct {
	flow int32
	want []bool // by user index
	obj  *relatav1.ObjectRef
}

// lookupPools returns n LookupResources cases (random users) and n LookupSubjects
// cases (flows, half of them with overrides).
func (t *Truth) lookupPools(seed uint64, n int) ([]lookupResourcesCase, []lookupSubjectsCase) {
	d := t.d
	rng := rand.New(rand.NewPCG(seed, 2))
	res := make([]lookupResourcesCase, n)
	sub := make([]lookupSubjectsCase, n)
	for i := range n {
		res[i].user = int32(rng.IntN(d.cfg.Users))
		if i%2 == 0 && len(d.overriddenFlows) > 0 {
			sub[i].flow = pick(rng, d.overriddenFlows)
		} else {
			sub[i].flow = int32(rng.IntN(d.cfg.Flows))
		}
	}
	parallel(2*n, func(i int) {
		if i < n {
			c := &res[i]
			c.want = t.FlowsExecutable(c.user, Latest)
			c.subj = userSubject(c.user)
			return
		}
		c := &sub[i-n]
		c.want = t.UsersExecuting(c.flow, Latest)
		c.obj = objectProto(flowRef(c.flow))
	})
	return res, sub
}

func pick(rng *rand.Rand, s []int32) int32 { return s[rng.IntN(len(s))] }

// parallel calls fn(0..n-1) on every CPU and waits.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				fn(i)
			}
		})
	}
	wg.Wait()
}
