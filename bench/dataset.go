package bench

import (
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"

	"github.com/relata/relata/tuples"
)

// DataConfig sizes the generated data set. The zero value is not usable; start from
// DefaultDataConfig. The same DataConfig always generates the same data set.
type DataConfig struct {
	// Seed seeds every random choice of the generator and of the workloads.
	Seed uint64 `json:"seed"`
	// Tenants is the number of tenants.
	Tenants int `json:"tenants"`
	// TenantDepth is the number of levels of the tenant tree (1: no sub-tenants).
	TenantDepth int `json:"tenant_depth"`
	// Users is the number of users; each belongs to one home tenant.
	Users int `json:"users"`
	// RolesPerTenant is the number of custom roles of each tenant.
	RolesPerTenant int `json:"roles_per_tenant"`
	// RoleNesting is the length of the chains of nested roles (1: no nesting): role
	// r0 holds role r1's members, r1 holds r2's, and so on.
	RoleNesting int `json:"role_nesting"`
	// WorkspacesPerTenant is the number of workspaces of each tenant.
	WorkspacesPerTenant int `json:"workspaces_per_tenant"`
	// Flows is the number of flows, spread evenly over the tenants.
	Flows int `json:"flows"`
	// OverrideShare is the share of flows (0..1) with per-flow grant/deny overrides.
	OverrideShare float64 `json:"override_share"`
	// VersionsPerFlow is the number of flow versions of each flow (the newest is LIVE).
	VersionsPerFlow int `json:"versions_per_flow"`
	// SharesPerFlow is the number of users each flow is shared with.
	SharesPerFlow int `json:"shares_per_flow"`
	// CatalogShare is the share of flows (0..1) published to their tenant's catalog.
	CatalogShare float64
}

// DefaultDataConfig is the default data set: 100 tenants in a 2-level tree, 75,000
// users, 20 roles per tenant in chains of 3, 10 workspaces per tenant, 100,000 flows
// with 5% overrides: 1,002,569 tuples.
func DefaultDataConfig() DataConfig {
	return DataConfig{
		Seed:                1,
		Tenants:             100,
		TenantDepth:         2,
		Users:               75_000,
		RolesPerTenant:      20,
		RoleNesting:         3,
		WorkspacesPerTenant: 10,
		Flows:               100_000,
		OverrideShare:       0.05,
		VersionsPerFlow:     2,
		SharesPerFlow:       2,
		CatalogShare:        0.1,
	}
}

// Validate reports a configuration the generator cannot use.
func (c DataConfig) Validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("bench: %s must be at least 1, not %d", name, v))
		}
	}
	positive("tenants", c.Tenants)
	positive("tenant depth", c.TenantDepth)
	positive("roles per tenant", c.RolesPerTenant)
	positive("role nesting", c.RoleNesting)
	positive("workspaces per tenant", c.WorkspacesPerTenant)
	positive("versions per flow", c.VersionsPerFlow)
	if c.Users < c.Tenants {
		errs = append(errs, fmt.Errorf("bench: users (%d) must be at least the number of tenants (%d)", c.Users, c.Tenants))
	}
	if c.Flows < c.Tenants {
		errs = append(errs, fmt.Errorf("bench: flows (%d) must be at least the number of tenants (%d)", c.Flows, c.Tenants))
	}
	if c.SharesPerFlow < 0 {
		errs = append(errs, fmt.Errorf("bench: shares per flow must not be negative, not %d", c.SharesPerFlow))
	}
	if c.OverrideShare < 0 || c.OverrideShare > 1 {
		errs = append(errs, fmt.Errorf("bench: override share must be in [0, 1], not %g", c.OverrideShare))
	}
	if c.CatalogShare < 0 || c.CatalogShare > 1 {
		errs = append(errs, fmt.Errorf("bench: catalog share must be in [0, 1], not %g", c.CatalogShare))
	}
	return errors.Join(errs...)
}

// The five tenant roles, as indexes into tenantRels.
const (
	relAdmin = iota
	relDeveloper
	relContributor
	relCreator
	relViewer
	noRel = -1
)

var tenantRels = [...]string{"admin", "developer", "contributor", "creator", "viewer"}

// override is the per-flow grant/deny setting of one flow.
type override struct {
	userGranted, userDenied []int32 // users
	roleGranted, roleDenied []int32 // roles (their members)
}

// Dataset is a generated data set: the structures the generator chose, from which it
// yields tuples (Tuples) and from which Truth answers. It is read-only after
// Generate and safe for concurrent use.
//
// Ids: tenant:tN, user:uN, role:tN-rJ (custom role J of tenant N), workspace:tN-wK,
// flow:fN, flow_version:fN-vK, catalog_entry:fN. Roles and workspaces have global
// indexes tenant*per+J.
type Dataset struct {
	cfg DataConfig

	tenantParent []int32 // -1 for a root

	roleNested    [][]int32 // role → roles whose members it holds (role:a#member@role:b#member)
	roleParents   [][]int32 // role → roles that hold its members
	roleTenantRel []int8    // the tenant role a custom role holds on its tenant, or noRel
	tenantGranted [][]int32 // tenant → roles granted execute tenant-wide
	tenantDenied  [][]int32 // tenant → roles denied execute tenant-wide

	userRel         []int8    // the tenant role a user holds directly on its home tenant, or noRel
	userRoles       [][]int32 // direct role memberships
	userEffRoles    [][]int32 // every role the user is a member of, nesting included
	userFlowAuthor  []bool    // holds the flow_author add-on on its home tenant
	userWorkspace   []int32   // the workspace the user is a member of
	usersOfTenant   [][]int32 // home users of each tenant
	wsViewer        []int32   // workspace → role holding flows_viewer, or -1
	wsEditor        []int32   // workspace → role holding flows_editor, or -1
	wsAuthor        []int32   // workspace → role holding flows_author, or -1
	flowWorkspace   []int32
	flowOwner       []int32
	flowShared      [][]int32
	flowOverride    map[int32]*override
	flowsOfTenant   [][]int32
	overriddenFlows []int32 // flows with an override, ascending
}

// Generate builds the data set cfg describes. The same cfg always gives the same data.
func Generate(cfg DataConfig) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	d := &Dataset{cfg: cfg}
	T, R, W := cfg.Tenants, cfg.RolesPerTenant, cfg.WorkspacesPerTenant

	// Tenant tree: 10% of the tenants (at least one) are roots; the others are spread
	// evenly over the deeper levels, each under a random tenant of the level above.
	d.tenantParent = make([]int32, T)
	levels := make([][]int32, cfg.TenantDepth)
	roots := max(1, T/10)
	if cfg.TenantDepth == 1 {
		roots = T
	}
	for t := range T {
		lvl := 0
		if t >= roots {
			lvl = 1 + (t-roots)%(cfg.TenantDepth-1)
		}
		levels[lvl] = append(levels[lvl], int32(t))
		d.tenantParent[t] = -1
		if lvl > 0 {
			above := levels[lvl-1]
			d.tenantParent[t] = above[rng.IntN(len(above))]
		}
	}

	// Roles: chains of RoleNesting within each tenant; every fourth role holds one of
	// the five tenant roles; the last role is denied execute tenant-wide and the one
	// before it granted (when the tenant has enough roles).
	d.roleNested = make([][]int32, T*R)
	d.roleParents = make([][]int32, T*R)
	d.roleTenantRel = make([]int8, T*R)
	d.tenantGranted = make([][]int32, T)
	d.tenantDenied = make([][]int32, T)
	for t := range T {
		for j := range R {
			r := int32(t*R + j)
			d.roleTenantRel[r] = noRel
			if j%4 == 0 { // viewer, creator, contributor, developer, admin
				d.roleTenantRel[r] = int8(len(tenantRels) - 1 - (j/4)%len(tenantRels))
			}
			if (j+1)%cfg.RoleNesting != 0 && j+1 < R {
				d.roleNested[r] = append(d.roleNested[r], r+1)
				d.roleParents[r+1] = append(d.roleParents[r+1], r)
			}
		}
		if R >= 3 {
			d.tenantDenied[t] = []int32{int32(t*R + R - 1)}
			d.tenantGranted[t] = []int32{int32(t*R + R - 2)}
		}
	}

	// Workspaces: each level held by a random role of the tenant (half of them).
	d.wsViewer = make([]int32, T*W)
	d.wsEditor = make([]int32, T*W)
	d.wsAuthor = make([]int32, T*W)
	for t := range T {
		for k := range W {
			w := t*W + k
			for _, lv := range []*[]int32{&d.wsViewer, &d.wsEditor, &d.wsAuthor} {
				(*lv)[w] = -1
				if rng.IntN(2) == 0 {
					(*lv)[w] = int32(t*R + rng.IntN(R))
				}
			}
		}
	}

	// Users: home tenant u%T; half hold a tenant role directly (weighted towards
	// viewer), every user is in two custom roles of the home tenant, one workspace,
	// and 10% hold the flow_author add-on.
	U := cfg.Users
	d.userRel = make([]int8, U)
	d.userRoles = make([][]int32, U)
	d.userEffRoles = make([][]int32, U)
	d.userFlowAuthor = make([]bool, U)
	d.userWorkspace = make([]int32, U)
	d.usersOfTenant = make([][]int32, T)
	for u := range U {
		t := u % T
		d.usersOfTenant[t] = append(d.usersOfTenant[t], int32(u))
		d.userRel[u] = noRel
		if rng.IntN(2) == 0 {
			switch p := rng.IntN(100); {
			case p < 8:
				d.userRel[u] = relAdmin
			case p < 20:
				d.userRel[u] = relDeveloper
			case p < 35:
				d.userRel[u] = relContributor
			case p < 60:
				d.userRel[u] = relCreator
			default:
				d.userRel[u] = relViewer
			}
		}
		a := rng.IntN(R)
		d.userRoles[u] = []int32{int32(t*R + a)}
		if b := rng.IntN(R); b != a {
			d.userRoles[u] = append(d.userRoles[u], int32(t*R+b))
		}
		d.userFlowAuthor[u] = rng.IntN(10) == 0
		d.userWorkspace[u] = int32(t*W + rng.IntN(W))
		d.userEffRoles[u] = d.closure(d.userRoles[u])
	}

	// Flows: tenant n%T, a random workspace of it, an owner and shares from its users;
	// OverrideShare of them get one to three overrides.
	F := cfg.Flows
	d.flowWorkspace = make([]int32, F)
	d.flowOwner = make([]int32, F)
	d.flowShared = make([][]int32, F)
	d.flowOverride = make(map[int32]*override)
	d.flowsOfTenant = make([][]int32, T)
	for n := range F {
		t := n % T
		users := d.usersOfTenant[t]
		d.flowsOfTenant[t] = append(d.flowsOfTenant[t], int32(n))
		d.flowWorkspace[n] = int32(t*W + rng.IntN(W))
		d.flowOwner[n] = users[rng.IntN(len(users))]
		for range cfg.SharesPerFlow {
			d.flowShared[n] = appendUnique(d.flowShared[n], users[rng.IntN(len(users))])
		}
		if rng.Float64() >= cfg.OverrideShare {
			continue
		}
		o := &override{}
		for range 1 + rng.IntN(3) {
			switch rng.IntN(4) {
			case 0: // a user of any tenant granted on this flow
				o.userGranted = appendUnique(o.userGranted, int32(rng.IntN(U)))
			case 1:
				o.userDenied = appendUnique(o.userDenied, users[rng.IntN(len(users))])
			case 2:
				o.roleGranted = appendUnique(o.roleGranted, int32(t*R+rng.IntN(R)))
			case 3:
				o.roleDenied = appendUnique(o.roleDenied, int32(t*R+rng.IntN(R)))
			}
		}
		d.flowOverride[int32(n)] = o
		d.overriddenFlows = append(d.overriddenFlows, int32(n))
	}
	return d, nil
}

// Config returns the configuration the data set was generated with.
func (d *Dataset) Config() DataConfig { return d.cfg }

// closure returns the roles whose members include a member of roles: roles and,
// transitively, every role that nests one of them.
func (d *Dataset) closure(roles []int32) []int32 {
	var out []int32
	var visit func(r int32)
	visit = func(r int32) {
		for _, x := range out {
			if x == r {
				return
			}
		}
		out = append(out, r)
		for _, p := range d.roleParents[r] {
			visit(p)
		}
	}
	for _, r := range roles {
		visit(r)
	}
	return out
}

func appendUnique(s []int32, v int32) []int32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Id spellings.
func tenantRef(t int32) tuples.ObjectRef { return obj("tenant", "t"+itoa(t)) }
func userRef(u int32) tuples.ObjectRef   { return obj("user", "u"+itoa(u)) }
func flowRef(f int32) tuples.ObjectRef   { return obj("flow", "f"+itoa(f)) }
func (d *Dataset) roleRef(r int32) tuples.ObjectRef {
	R := int32(d.cfg.RolesPerTenant)
	return obj("role", "t"+itoa(r/R)+"-r"+itoa(r%R))
}
func (d *Dataset) workspaceRef(w int32) tuples.ObjectRef {
	W := int32(d.cfg.WorkspacesPerTenant)
	return obj("workspace", "t"+itoa(w/W)+"-w"+itoa(w%W))
}
func obj(typ, id string) tuples.ObjectRef { return tuples.ObjectRef{Type: typ, ID: id} }
func itoa(v int32) string                 { return strconv.Itoa(int(v)) }

func tup(o tuples.ObjectRef, rel string, s tuples.ObjectRef, srel string) tuples.Tuple {
	return tuples.Tuple{Object: o, Relation: rel, Subject: tuples.SubjectRef{Object: s, Relation: srel}}
}

// Tuples yields every tuple of the data set, in a fixed order: tenants and roles,
// workspaces, users, flows.
func (d *Dataset) Tuples() iter.Seq[tuples.Tuple] {
	return func(yield func(tuples.Tuple) bool) {
		cfg := d.cfg
		T, R, W := int32(cfg.Tenants), int32(cfg.RolesPerTenant), int32(cfg.WorkspacesPerTenant)
		member := func(r int32) tuples.SubjectRef { return tuples.SubjectRef{Object: d.roleRef(r), Relation: "member"} }
		emit := func(t tuples.Tuple) bool { return yield(t) }
		everyone := tuples.ObjectRef{Type: "user", ID: tuples.Wildcard}
		// System roles (not granted anywhere by this data set).
		if !emit(tup(obj("role", "default"), "member", everyone, "")) ||
			!emit(tup(obj("role", "authenticated"), "member", everyone, "")) ||
			!emit(tup(obj("role", "anonymous"), "member", obj("anonymous", tuples.Wildcard), "")) {
			return
		}
		for t := range T {
			if p := d.tenantParent[t]; p >= 0 && !emit(tup(tenantRef(t), "parent", tenantRef(p), "")) {
				return
			}
			for j := range R {
				r := t*R + j
				if !emit(tup(d.roleRef(r), "tenant", tenantRef(t), "")) {
					return
				}
				for _, n := range d.roleNested[r] {
					if !emit(tuples.Tuple{Object: d.roleRef(r), Relation: "member", Subject: member(n)}) {
						return
					}
				}
				if rel := d.roleTenantRel[r]; rel != noRel &&
					!emit(tuples.Tuple{Object: tenantRef(t), Relation: tenantRels[rel], Subject: member(r)}) {
					return
				}
			}
			for _, r := range d.tenantGranted[t] {
				if !emit(tuples.Tuple{Object: tenantRef(t), Relation: "role_granted", Subject: member(r)}) {
					return
				}
			}
			for _, r := range d.tenantDenied[t] {
				if !emit(tuples.Tuple{Object: tenantRef(t), Relation: "role_denied", Subject: member(r)}) {
					return
				}
			}
			for k := range W {
				w := t*W + k
				if !emit(tup(d.workspaceRef(w), "tenant", tenantRef(t), "")) {
					return
				}
				for i, r := range []int32{d.wsViewer[w], d.wsEditor[w], d.wsAuthor[w]} {
					if r >= 0 && !emit(tuples.Tuple{Object: d.workspaceRef(w), Relation: [...]string{"flows_viewer", "flows_editor", "flows_author"}[i], Subject: member(r)}) {
						return
					}
				}
			}
		}
		for u := range int32(cfg.Users) {
			home := tenantRef(u % T)
			if rel := d.userRel[u]; rel != noRel && !emit(tup(home, tenantRels[rel], userRef(u), "")) {
				return
			}
			if d.userFlowAuthor[u] && !emit(tup(home, "flow_author", userRef(u), "")) {
				return
			}
			for _, r := range d.userRoles[u] {
				if !emit(tup(d.roleRef(r), "member", userRef(u), "")) {
					return
				}
			}
			if !emit(tup(d.workspaceRef(d.userWorkspace[u]), "member", userRef(u), "")) {
				return
			}
		}
		for n := range int32(cfg.Flows) {
			f := flowRef(n)
			if !emit(tup(f, "workspace", d.workspaceRef(d.flowWorkspace[n]), "")) ||
				!emit(tup(f, "owner", userRef(d.flowOwner[n]), "")) {
				return
			}
			for _, u := range d.flowShared[n] {
				if !emit(tup(f, "shared_with", userRef(u), "")) {
					return
				}
			}
			if o := d.flowOverride[n]; o != nil {
				for _, u := range o.userGranted {
					if !emit(tup(f, "user_granted", userRef(u), "")) {
						return
					}
				}
				for _, u := range o.userDenied {
					if !emit(tup(f, "user_denied", userRef(u), "")) {
						return
					}
				}
				for _, r := range o.roleGranted {
					if !emit(tuples.Tuple{Object: f, Relation: "role_granted", Subject: member(r)}) {
						return
					}
				}
				for _, r := range o.roleDenied {
					if !emit(tuples.Tuple{Object: f, Relation: "role_denied", Subject: member(r)}) {
						return
					}
				}
			}
			fid := f.ID
			for k := range int32(cfg.VersionsPerFlow) {
				v := obj("flow_version", fid+"-v"+itoa(k))
				if !emit(tup(v, "flow", f, "")) {
					return
				}
				if k == int32(cfg.VersionsPerFlow)-1 && !emit(tup(v, "live", everyone, "")) {
					return
				}
			}
			if d.catalogued(n) {
				e := obj("catalog_entry", fid)
				if !emit(tup(e, "tenant", tenantRef(n%T), "")) || !emit(tup(e, "flow", f, "")) {
					return
				}
			}
		}
	}
}

// catalogued reports whether flow n is published to its tenant's catalog: a fixed
// hash of n, so that it needs no random state.
func (d *Dataset) catalogued(n int32) bool {
	h := uint64(n)*0x9e3779b97f4a7c15 + d.cfg.Seed
	h ^= h >> 29
	return float64(h%10_000) < d.cfg.CatalogShare*10_000
}

// Count returns the number of tuples Tuples yields.
func (d *Dataset) Count() int {
	n := 0
	for range d.Tuples() {
		n++
	}
	return n
}
