package bench

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/relata/relata/tuples"
)

// Perm is a permission the workloads ask about.
type Perm uint8

// The permissions Truth answers.
const (
	// PermExecute is flow#execute, the model's hot path (unions and two exclusions).
	PermExecute Perm = iota
	// PermView is flow#view (intersections over workspace access).
	PermView
	// PermManageUsers is tenant#manage_users (recursion up the tenant tree).
	PermManageUsers
)

// String returns the permission's name in the schema.
func (p Perm) String() string {
	return [...]string{"execute", "view", "manage_users"}[p]
}

// Latest is the revision that means "after every write recorded so far".
const Latest = tuples.Revision(math.MaxUint64)

// Truth answers the bench's questions from the generator's structures by evaluating
// the model's rules directly, independently of the engine. It also records the writes
// of the mixed phase (toggles of flow#user_granted and flow#user_denied) with the
// revision each was committed at, so that it can answer at any revision. Safe for
// concurrent use.
type Truth struct {
	d *Dataset

	// toggles counts the recorded writes, so that answers skip the lock while there
	// are none.
	toggles atomic.Int64
	// mu guards hist.
	mu struct {
		sync.RWMutex
		hist map[toggleKey][]toggle // in commit order
	}
}

// toggleKey names one mutable tuple: flow:F#user_denied@user:U (denied) or
// flow:F#user_granted@user:U.
type toggleKey struct {
	flow, user int32
	denied     bool
}

type toggle struct {
	rev     tuples.Revision
	present bool
}

// NewTruth returns the ground truth of d, with no writes recorded.
func NewTruth(d *Dataset) *Truth {
	t := &Truth{d: d}
	t.mu.hist = make(map[toggleKey][]toggle)
	return t
}

// Dataset returns the data set t answers for.
func (t *Truth) Dataset() *Dataset { return t.d }

// Record notes that the tuple k names became present (or absent) at rev. Records of
// one key must come in commit order.
func (t *Truth) record(k toggleKey, present bool, rev tuples.Revision) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.hist[k] = append(t.mu.hist[k], toggle{rev: rev, present: present})
	t.toggles.Add(1)
}

// present reports whether the mutable tuple k is live at rev.
func (t *Truth) present(k toggleKey, rev tuples.Revision) bool {
	if t.toggles.Load() > 0 {
		t.mu.RLock()
		h := t.mu.hist[k]
		t.mu.RUnlock()
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].rev <= rev {
				return h[i].present
			}
		}
	}
	return t.basePresent(k)
}

// basePresent reports whether the generated data set has the mutable tuple k.
func (t *Truth) basePresent(k toggleKey) bool {
	o := t.d.flowOverride[k.flow]
	if o == nil {
		return false
	}
	if k.denied {
		return slices.Contains(o.userDenied, k.user)
	}
	return slices.Contains(o.userGranted, k.user)
}

// Check answers permission p of object (a flow, or a tenant for PermManageUsers) for
// user at revision rev (Latest for the newest).
func (t *Truth) Check(p Perm, object, user int32, rev tuples.Revision) bool {
	switch p {
	case PermExecute:
		return t.execute(object, user, rev)
	case PermView:
		return t.view(object, user)
	case PermManageUsers:
		return t.treeAdmin(object, user)
	}
	return false
}

// inRole reports whether u is a member of role r (nesting included); r < 0 is no role.
func (t *Truth) inRole(u, r int32) bool {
	return r >= 0 && slices.Contains(t.d.userEffRoles[u], r)
}

func (t *Truth) inAnyRole(u int32, roles []int32) bool {
	for _, r := range roles {
		if t.inRole(u, r) {
			return true
		}
	}
	return false
}

// tenantRel reports whether u holds tenant role rel on tenant tn, directly or through
// a custom role.
func (t *Truth) tenantRel(tn, u int32, rels ...int8) bool {
	d := t.d
	if u%int32(d.cfg.Tenants) == tn && slices.Contains(rels, d.userRel[u]) {
		return true
	}
	for _, r := range d.userEffRoles[u] {
		if r/int32(d.cfg.RolesPerTenant) == tn && d.roleTenantRel[r] != noRel && slices.Contains(rels, d.roleTenantRel[r]) {
			return true
		}
	}
	return false
}

// member is tenant#member: one of the five tenant roles.
func (t *Truth) member(tn, u int32) bool {
	return t.tenantRel(tn, u, relAdmin, relDeveloper, relContributor, relCreator, relViewer)
}

// flowAuthor is the tenant's flow_author add-on.
func (t *Truth) flowAuthor(tn, u int32) bool {
	return u%int32(t.d.cfg.Tenants) == tn && t.d.userFlowAuthor[u]
}

// executeWorkflow is tenant#execute_workflow = (member + flow_author + role_granted) - role_denied.
func (t *Truth) executeWorkflow(tn, u int32) bool {
	d := t.d
	base := t.member(tn, u) || t.flowAuthor(tn, u) || t.inAnyRole(u, d.tenantGranted[tn])
	return base && !t.inAnyRole(u, d.tenantDenied[tn])
}

// executeDefault is workspace#execute_default: the tenant-wide setting plus the roles
// holding any flows level in the workspace.
func (t *Truth) executeDefault(w, u int32) bool {
	d := t.d
	tn := w / int32(d.cfg.WorkspacesPerTenant)
	return t.executeWorkflow(tn, u) || t.inRole(u, d.wsViewer[w]) || t.inRole(u, d.wsEditor[w]) || t.inRole(u, d.wsAuthor[w])
}

// execute is flow#execute = owner + ((user_granted + ((role_granted +
// workspace->execute_default) - role_denied)) - user_denied).
func (t *Truth) execute(f, u int32, rev tuples.Revision) bool {
	allowed, _ := t.executeCaveated(f, u, rev, nil, clientIP{})
	return allowed
}

// executeCaveated is execute with the caveated grants of cs (nil: none) for a check
// whose context gives ip (or nothing), three-valued: a caveated grant holds when ip is
// in its network, does not when ip is outside, and is unknown without ip. Unknown
// decides nothing that the other branches decide: the owner, a user-level deny (it is
// subtracted last) and a plain grant or a role path win over it; otherwise the answer
// is conditional on ip.
func (t *Truth) executeCaveated(f, u int32, rev tuples.Revision, cs *caveatSet, ip clientIP) (allowed, conditional bool) {
	d := t.d
	if d.flowOwner[f] == u {
		return true, false
	}
	if t.present(toggleKey{flow: f, user: u, denied: true}, rev) {
		return false, false
	}
	if t.present(toggleKey{flow: f, user: u}, rev) {
		return true, false
	}
	var roleGranted, roleDenied []int32
	if o := d.flowOverride[f]; o != nil {
		roleGranted, roleDenied = o.roleGranted, o.roleDenied
	}
	if !t.inAnyRole(u, roleDenied) && (t.inAnyRole(u, roleGranted) || t.executeDefault(d.flowWorkspace[f], u)) {
		return true, false
	}
	if cs != nil {
		if network, ok := cs.grants[pairKey{f, u}]; ok {
			if !ip.given {
				return false, true
			}
			return network.Contains(ip.addr), false
		}
	}
	return false, false
}

// access is workspace#access = member + tenant->admin.
func (t *Truth) access(w, u int32) bool {
	tn := w / int32(t.d.cfg.WorkspacesPerTenant)
	return t.d.userWorkspace[u] == w || t.tenantRel(tn, u, relAdmin)
}

// view is flow#view = owner + shared_with + workspace->flows_level_viewer, where
//
//	flows_level_author = flows_author + (access & tenant->create_workflow)
//	flows_level_editor = flows_editor + flows_level_author
//	flows_level_viewer = flows_viewer + flows_level_editor + (access & tenant->member)
func (t *Truth) view(f, u int32) bool {
	d := t.d
	if d.flowOwner[f] == u || slices.Contains(d.flowShared[f], u) {
		return true
	}
	w := d.flowWorkspace[f]
	tn := w / int32(d.cfg.WorkspacesPerTenant)
	if t.inRole(u, d.wsViewer[w]) || t.inRole(u, d.wsEditor[w]) || t.inRole(u, d.wsAuthor[w]) {
		return true
	}
	if !t.access(w, u) {
		return false
	}
	createWorkflow := t.tenantRel(tn, u, relCreator, relContributor, relDeveloper, relAdmin) || t.flowAuthor(tn, u)
	return createWorkflow || t.member(tn, u)
}

// treeAdmin is tenant#tree_admin = admin + parent->tree_admin (manage_users).
func (t *Truth) treeAdmin(tn, u int32) bool {
	for ; tn >= 0; tn = t.d.tenantParent[tn] {
		if t.tenantRel(tn, u, relAdmin) {
			return true
		}
	}
	return false
}

// FlowsExecutable returns every flow on which user may execute at rev, ascending:
// the answer of LookupResources(flow, execute, user).
func (t *Truth) FlowsExecutable(user int32, rev tuples.Revision) []int32 {
	var out []int32
	for f := range int32(t.d.cfg.Flows) {
		if t.execute(f, user, rev) {
			out = append(out, f)
		}
	}
	return out
}

// UsersExecuting reports, for every user, whether it may execute flow at rev: the
// answer of LookupSubjects(flow, execute, user) as a membership vector.
func (t *Truth) UsersExecuting(flow int32, rev tuples.Revision) []bool {
	out := make([]bool, t.d.cfg.Users)
	for u := range int32(t.d.cfg.Users) {
		out[u] = t.execute(flow, u, rev)
	}
	return out
}
