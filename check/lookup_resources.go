package check

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// LookupResourcesRequest asks for every object of ResourceType on which Subject has
// Permission.
type LookupResourcesRequest struct {
	ResourceType string
	Permission   string
	Subject      tuples.SubjectRef
	// Cursor resumes after the result that carried it; "" starts from the beginning.
	// A cursor is only meaningful at the revision that produced it.
	Cursor string
	// Limit bounds the results of this call; 0 means no limit. When a call stops at
	// the limit, the last result's Cursor continues it.
	Limit int
	// Context holds caveat parameters, as in CheckRequest.
	Context map[string]any
	// OmitCursors leaves every result's Cursor empty: a caller that needs the cursor
	// of only some results (a batched stream, after its last) makes it with
	// ResourceCursor(res.Object.ID) instead of paying for one per result.
	OmitCursors bool
}

// ResourceCursor is the Cursor of the LookupResources result naming object id.
func ResourceCursor(id string) string { return encodeCursor(id) }

// LookupResourcesResult is one object found, with the cursor resuming after it.
// Conditional marks an object on which the subject has the permission only if
// caveats hold that depend on the parameters MissingContext (sorted).
type LookupResourcesResult struct {
	Object         tuples.ObjectRef
	Cursor         string
	Conditional    bool
	MissingContext []string
}

// LookupResources calls yield with every object of req.ResourceType on which
// req.Subject has req.Permission at r's snapshot, in object id order, starting after
// req.Cursor and stopping after req.Limit results. It agrees exactly with Check. An
// error from yield stops the lookup and is returned; unknown names are a
// *NotFoundError.
//
// The lookup is driven by the reverse index: starting from the subject, it finds the
// usersets that hold it directly (Reader.Objects) and walks up the schema graph to the
// objects of the requested type, never enumerating all objects of a type.
//
// Where the permission's rewrite involves intersections or exclusions, the lookup is
// set algebra over sorted streams (lookup_sets.go): every monotone operand (one with
// no intersection, exclusion, `.all()` arrow or conditional relation below it) is
// looked up by its own walk as a sorted, deduplicated stream of object ids, and the
// streams are combined in id order: a union merges them, an intersection keeps the
// ids every operand has, an exclusion `a - b` drops from a's stream the ids of b's
// (for `execute = (owner + granted + tenant->view) - denied`, the flows the subject
// is denied on, found by the same reverse walk). Non-monotone permissions of the same
// type that the rewrite computes are expanded in place; an arrow to a non-monotone
// permission (`workspace->execute_default`, itself `tenant->execute_workflow + …`
// with `execute_workflow = (member + …) - role_denied`) is looked up by the same set
// algebra on the arrow's target type, and its sorted stream of objects (workspaces)
// is mapped back through the tupleset by reverse-index scans merged in id order (the
// flows in those workspaces). An object some operand reaches only through paths
// longer than the depth limit is left to Check, which answers it or reports the depth
// error. Where this cannot be exact, each candidate is verified with Check instead:
// the walk then yields candidates (those reached through the first branch of an
// intersection, the base of an exclusion, any subject of an `.all()` arrow) and Check
// decides each. That is the case when a caveat or an expiration is reachable from the
// permission (answers are three-valued: a conditional member of a subtracted side
// makes an object conditional, not absent), when the permission lies on a cycle of
// the schema graph, when the rewrite reaches an intersection, an exclusion or an
// `.all()` arrow through an `.all()` arrow or through a non-monotone permission that
// lies on a cycle, and when some walk is cut short by the depth limit.
//
// Results stream as they are found, and the walk stops once Limit results are sent.
// The walk has two parts. The usersets below the last hop (groups, roles, tenants,
// folders: the nodes of the schema graph that are not of the resource type, or lie on
// a cycle) are found first and held in memory. The objects of the resource type are
// never collected: every reverse-index scan that reaches them directly (the subject's
// own tuples, `doc#viewer@group:g#member` for each group g found, `doc#parent@folder:f`
// for each folder f found, and relations of the resource type that feed the
// permission through computed usersets) is read in id order, a few ids at a time, and
// the scans are merged, so that each object comes out once, in id order, as soon as
// it is the least id left. A cursor is the last id sent: the next page seeks every
// scan past it instead of recomputing earlier pages.
//
// A scan read from its first id to its last is kept in the engine's lookup scan
// cache (stream_cache.go, a share of Options.CacheBytes) and served whole to later
// lookups at revisions where no write changed it: users of one tenant share the
// scan of its flows.
//
// Memory per call is therefore bounded by the usersets below the last hop, plus
// lookupScanIDs ids of scan buffers (at least one id per scan), plus lookupVerifyBatch
// candidates being verified (plus, per scan being recorded for the scan cache, up to
// streamCacheMaxIDs ids): independent of the number of results. With set algebra
// that bound holds per monotone operand of the rewrite (each has its own walk and
// scans), plus, per arrow to a non-monotone permission, the objects of its target
// type that have that permission (and one scan per object); nothing is verified in
// batches. The exception is a permission of the
// resource type that lies on a cycle of the schema graph (nested folders,
// `permission view = viewer + parent->view` looked up on folders; or such a
// permission used as an operand): the walk must remember every object of the
// resource type it reached to terminate, so those objects are held in memory.
func (e *Engine) LookupResources(ctx context.Context, r tuples.Reader, req LookupResourcesRequest, yield func(LookupResourcesResult) error) error {
	c, err := e.schemaFor(ctx, r)
	if err != nil {
		return err
	}
	if err := validateRel(c, "resource_type", req.ResourceType, req.Permission, "permission"); err != nil {
		return err
	}
	if err := validateSubject(c, "subject", req.Subject); err != nil {
		return err
	}
	after, err := decodeCursor(req.Cursor)
	if err != nil {
		return err
	}
	target := relKey{req.ResourceType, req.Permission}
	if sp := c.setPlanFor(target); sp != nil && !e.noSets {
		if done, err := e.lookupSets(ctx, r, c, sp, req, after, yield); done {
			e.setLookups.Add(1)
			return err
		}
		// A walk was cut short by the depth limit: verify candidates, as below.
	}
	plan := &streamPlan{hops: c.streamNodes(target, c.feeding(target)), cache: e.streams}
	found, cut, facts, err := e.walkFacts(ctx, r, c, req.Subject, target, nil, plan)
	if err != nil {
		return err
	}
	if cut != nil {
		return cut
	}
	m, err := plan.merge(ctx, r, found[target], after, req.Cursor != "", req.Limit)
	if err != nil {
		return err
	}
	var v *verifier
	if c.nonMonotone[target] {
		v = e.newVerifier(r, c, req)
	}
	n := 0
	batch := make([]string, 0, lookupVerifyBatch)
	emit := func(ids []string) error {
		for _, id := range ids {
			if req.Limit > 0 && n >= req.Limit {
				return nil
			}
			res := LookupResourcesResult{Object: tuples.ObjectRef{Type: req.ResourceType, ID: id}}
			if !req.OmitCursors {
				res.Cursor = encodeCursor(id)
			}
			if c.conditional {
				// The walk kept conditional objects; say which they are.
				cr, err := e.check(ctx, r, c, CheckRequest{Object: res.Object, Permission: req.Permission, Subject: req.Subject, Context: req.Context})
				if err != nil {
					return err
				}
				if !cr.Allowed && !cr.Conditional {
					continue
				}
				res.Conditional, res.MissingContext = cr.Conditional, cr.MissingContext
			}
			n++
			if err := yield(res); err != nil {
				return err
			}
		}
		return nil
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		keep, err := v.verify(ctx, batch)
		if err != nil {
			return err
		}
		if err := emit(keep); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for req.Limit <= 0 || n < req.Limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, depth, ok, err := m.next(ctx)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if depth > e.opts.MaxDepth {
			// Every way the walk reached this object is longer than the limit.
			return plan.depthError(e.opts.MaxDepth, facts, req.Subject, target, id)
		}
		if v == nil {
			if err := emit([]string{id}); err != nil {
				return err
			}
			continue
		}
		batch = append(batch, id)
		// Verify in batches (concurrently), no more than the results still wanted.
		if len(batch) >= lookupVerifyBatch || (req.Limit > 0 && len(batch) >= req.Limit-n) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if v != nil && (req.Limit <= 0 || n < req.Limit) {
		return flush()
	}
	return nil
}

// Streaming lookups bound their buffers with these.
const (
	// lookupScanIDs is how many ids the reverse-index scans of one lookup buffer
	// together; each scan buffers at least one and at most lookupScanMax.
	lookupScanIDs = 4096
	lookupScanMax = 256
	// lookupScanFirst is how many ids a scan reads the first time (see merger.size).
	lookupScanFirst = 16
	// lookupVerifyBatch is how many candidates a lookup verifies with Check at once.
	lookupVerifyBatch = 64
)

// encodeCursor and decodeCursor make the opaque cursor for "after id".
func encodeCursor(id string) string {
	// One allocation: a lookup makes a cursor for every result.
	b := make([]byte, 2+base64.RawURLEncoding.EncodedLen(len(id)))
	copy(b, "1.")
	base64.RawURLEncoding.Encode(b[2:], []byte(id))
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func decodeCursor(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	if len(cursor) < 2 || cursor[:2] != "1." {
		return "", &tuples.ValidationError{Field: "cursor", Value: cursor, Reason: "not a cursor returned by a lookup"}
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor[2:])
	if err != nil {
		return "", &tuples.ValidationError{Field: "cursor", Value: cursor, Reason: "not a cursor returned by a lookup"}
	}
	return string(b), nil
}

// walkUp returns the ids of req.ResourceType on which req.Subject has req.Permission,
// sorted, all in memory (memberships uses it for the usersets of one subject), and,
// when the depth limit cut the walk short, the *MaxDepthError to report unless those
// ids settle the question. When deps is not nil, it records there the scopes of the
// walk's reads.
func (e *Engine) walkUp(ctx context.Context, r tuples.Reader, c *compiled, req LookupResourcesRequest, deps *collector) ([]string, *MaxDepthError, error) {
	target := relKey{req.ResourceType, req.Permission}
	found, cut, _, err := e.walkFacts(ctx, r, c, req.Subject, target, deps, nil)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, 0, len(found[target]))
	for id := range found[target] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !c.nonMonotone[target] {
		// Only unions and arrows: the walk above is exactly what Check computes.
		return ids, cut, nil
	}
	if deps != nil {
		deps.markOver() // the checks below do not record their reads here
	}
	// Intersection, exclusion or `.all()`: the walk found candidates; Check decides.
	// One request checks them all, so that sub-problems shared by candidates (their
	// tenant, the subject's memberships) are evaluated once.
	out, err := e.newVerifier(r, c, req).verify(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	return out, cut, nil
}

// fact is one userset found to hold the subject; parent indexes the fact it was
// reached from (-1 for a seed), so that a depth error can name the path.
type fact struct {
	k      relKey
	id     string
	depth  int
	parent int
	// closed marks a fact marked through the nested-set index from another fact of its
	// node, whose closure already holds its own.
	closed bool
}

// walkFacts walks up from subj to target and returns, per node, the ids whose userset
// holds subj; the facts, for depth errors; and, when the depth limit cut the walk
// short, the *MaxDepthError. When plan is not nil, the nodes it streams are not
// collected: every scan or id that would reach them becomes a source of plan instead.
func (e *Engine) walkFacts(ctx context.Context, r tuples.Reader, c *compiled, subj tuples.SubjectRef, target relKey, deps *collector, plan *streamPlan) (map[relKey]map[string]bool, *MaxDepthError, []fact, error) {
	if ix := e.closure.Load(); ix.covers(c.rev, r.Revision()) {
		found, cut, facts, err := e.walkFactsWith(ctx, r, c, subj, target, deps, plan, ix)
		if !errors.Is(err, errNoClosure) {
			e.closureWalks.Add(1)
			return found, cut, facts, err
		}
		// The index could not answer exactly: walk the store (see closure.go).
		if plan != nil {
			plan.scans, plan.ids = nil, nil
		}
	}
	return e.walkFactsWith(ctx, r, c, subj, target, deps, plan, nil)
}

// errNoClosure stops a walk that uses the nested-set index where the index cannot
// answer exactly: a depth beyond the limit, or a revision the index no longer covers.
var errNoClosure = errors.New("nested-set index cannot answer")

// walkFactsWith is walkFacts, with the nested-set index ix when it is not nil.
func (e *Engine) walkFactsWith(ctx context.Context, r tuples.Reader, c *compiled, subj tuples.SubjectRef, target relKey, deps *collector, plan *streamPlan, ix *closureIndex) (map[relKey]map[string]bool, *MaxDepthError, []fact, error) {
	// Only the nodes whose usersets the target includes matter (not, say, the
	// subtracted side of an exclusion, which Check evaluates).
	relevant := c.feeding(target)
	found := make(map[relKey]map[string]bool)
	var facts []fact // facts[next:] is the queue
	from := -1       // the fact being expanded
	var cut *MaxDepthError
	hop := 1 // the hops from the fact being expanded (more through the index)
	closed := false
	tooDeep := false // with the index: some depth is beyond the limit
	depthHere := func() int {
		if from >= 0 {
			return facts[from].depth + hop
		}
		return hop
	}
	mark := func(k relKey, id string) {
		if !relevant[k] || id == tuples.Wildcard {
			return
		}
		if hops, ok := plan.streams(k); ok {
			if ix != nil && depthHere()+hops > e.opts.MaxDepth {
				tooDeep = true
			}
			plan.addID(id, depthHere()+hops, from, k)
			return
		}
		ids := found[k]
		if ids[id] {
			return
		}
		depth := depthHere()
		if depth > e.opts.MaxDepth && ix != nil {
			tooDeep = true
			return
		}
		if depth > e.opts.MaxDepth {
			if cut == nil {
				path := []string{k.typ + ":" + id + "#" + k.rel}
				for i := from; i >= 0; i = facts[i].parent {
					path = append(path, facts[i].k.typ+":"+facts[i].id+"#"+facts[i].k.rel)
				}
				path = append(path, subj.String())
				slices.Reverse(path)
				cut = &MaxDepthError{Limit: e.opts.MaxDepth, Path: path}
			}
			return
		}
		if ids == nil {
			ids = make(map[string]bool)
			found[k] = ids
		}
		ids[id] = true
		facts = append(facts, fact{k: k, id: id, depth: depth, parent: from, closed: closed})
	}
	tracker, _ := r.(tuples.ScopeTracker)
	scope := func(s tuples.SubjectRef, k relKey, rel string) {
		switch {
		case deps == nil:
		case tracker == nil:
			deps.markOver()
		default:
			deps.add(tracker.ReverseScope(s, k.typ, rel))
		}
	}
	objects := func(s tuples.SubjectRef, k relKey, rel string, to relKey) error {
		if hops, ok := plan.streams(to); ok {
			if ix != nil && depthHere()+hops > e.opts.MaxDepth {
				tooDeep = true
			}
			plan.addScan(s, k.typ, rel, depthHere()+hops, from, to)
			return nil
		}
		scope(s, k, rel)
		for t, err := range r.Objects(ctx, s, k.typ, rel) {
			if err != nil {
				return fmt.Errorf("reading objects of %s: %w", s, err)
			}
			mark(to, t.Object.ID)
		}
		return nil
	}

	// Seeds: the usersets holding the subject directly.
	switch {
	case subj.IsUserset():
		mark(relKey{subj.Object.Type, subj.Relation}, subj.Object.ID) // the userset itself
	case subj.IsWildcard():
		for _, k := range c.seeds[subjectKind(subj)] {
			if relevant[k] {
				if err := objects(subj, k, k.rel, k); err != nil {
					return nil, nil, nil, err
				}
			}
		}
	default:
		for _, k := range c.seeds[subjectKind(subj)] {
			if relevant[k] {
				if err := objects(subj, k, k.rel, k); err != nil {
					return nil, nil, nil, err
				}
			}
		}
		wild := tuples.SubjectRef{Object: tuples.ObjectRef{Type: subj.Object.Type, ID: tuples.Wildcard}}
		for _, k := range c.seeds[subjectKind(wild)] {
			if relevant[k] {
				if err := objects(wild, k, k.rel, k); err != nil {
					return nil, nil, nil, err
				}
			}
		}
		for _, k := range c.selfs[subj.Object.Type] {
			mark(k, subj.Object.ID)
		}
	}
	// Walk up: every userset that includes a found one.
	for next := 0; next < len(facts); next++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		f := facts[next]
		from = next
		indexed := ix != nil && ix.sets[f.k] != nil
		for _, pe := range c.parents[f.k] {
			if !relevant[pe.parent] {
				continue
			}
			if indexed && pe.parent == f.k && pe.kind != viaComputed {
				// A self-edge of a nested set: the index below marks its closure. The
				// scopes of the reads it saves are the answer's all the same.
				for _, sr := range pe.subjectRelations {
					rel := f.k.rel
					if pe.kind == viaArrow {
						rel = pe.tupleset
					}
					scope(tuples.SubjectRef{Object: tuples.ObjectRef{Type: f.k.typ, ID: f.id}, Relation: sr}, f.k, rel)
				}
				continue
			}
			switch pe.kind {
			case viaComputed:
				mark(pe.parent, f.id)
			case viaUserset:
				s := tuples.SubjectRef{Object: tuples.ObjectRef{Type: f.k.typ, ID: f.id}, Relation: f.k.rel}
				if err := objects(s, pe.parent, pe.parent.rel, pe.parent); err != nil {
					return nil, nil, nil, err
				}
			case viaArrow:
				for _, sr := range pe.subjectRelations {
					s := tuples.SubjectRef{Object: tuples.ObjectRef{Type: f.k.typ, ID: f.id}, Relation: sr}
					if err := objects(s, pe.parent, pe.tupleset, pe.parent); err != nil {
						return nil, nil, nil, err
					}
				}
			}
		}
		if indexed && !f.closed && relevant[f.k] {
			// Every userset of f.k including f's through self-edges, at the hops from
			// f; those found this way need not be expanded through the index again (their
			// closures are within f's).
			closed = true
			ok := ix.ancestors(f.k, f.id, r.Revision(), func(id string, dist int) {
				hop = dist
				mark(f.k, id)
			})
			hop, closed = 1, false
			if !ok {
				return nil, nil, nil, errNoClosure
			}
		}
		if tooDeep {
			return nil, nil, nil, errNoClosure
		}
	}
	if tooDeep {
		return nil, nil, nil, errNoClosure
	}
	return found, cut, facts, nil
}

// verifier verifies lookup candidates with Check, a batch at a time.
type verifier struct {
	e    *Engine
	q    *request
	req  LookupResourcesRequest
	perm *schema.Relation
	// onlySubtracted: `base - subtracted` with a monotone base, off any cycle: the
	// walk found exactly the objects in base, so only the subtracted side is left to
	// evaluate.
	onlySubtracted bool
}

func (e *Engine) newVerifier(r tuples.Reader, c *compiled, req LookupResourcesRequest) *verifier {
	target := relKey{req.ResourceType, req.Permission}
	q := e.newRequest(r, c, false)
	q.setContext(req.Context)
	perm := c.rel(req.ResourceType, req.Permission)
	rw := perm.Rewrite
	return &verifier{e: e, q: q, req: req, perm: perm,
		onlySubtracted: rw != nil && rw.Kind == schema.Exclusion && !c.cyclic[target] &&
			c.monotoneExpr(req.ResourceType, rw.Children[0])}
}

// verify returns the ids (in their order) on which the subject has the permission or
// may have it (conditional objects are kept: see LookupResources). Sub-problems shared
// by the batch (their tenant, the subject's memberships) are evaluated once; the
// memo of shared answers starts afresh with every batch, so it stays bounded.
func (v *verifier) verify(ctx context.Context, ids []string) ([]string, error) {
	q, req, subj := v.q, v.req, v.req.Subject
	q.memo.m = make(map[string]memoEntry)
	rw := v.perm.Rewrite
	keep := make([]bool, len(ids))
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	one := func(i int, id string) {
		obj := tuples.ObjectRef{Type: req.ResourceType, ID: id}
		var ok bool
		var err error
		switch {
		case subj.IsUserset() && subj.Object == obj && subj.Relation == req.Permission:
			ok = true // the subject is this userset
		case v.onlySubtracted:
			f := &frame{obj: obj, rel: req.Permission, depth: 1}
			var out outcome
			out, err = q.rewrite(gctx, at{f: f, neg: 1}, obj, req.Permission, v.perm, rw.Children[1], subj)
			ok = !out.ok || out.cond
		default:
			var out outcome
			out, err = q.checkRel(gctx, at{}, obj, req.Permission, subj)
			ok = out.ok || out.cond // conditional objects are kept: see LookupResources
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
				cancel()
			}
			return
		}
		keep[i] = ok
	}
	// Candidates are checked in extra goroutines only while the budgets have room
	// (acquireGoroutine), so that big lookups cannot crowd out small checks; otherwise
	// in this goroutine.
	for i, id := range ids {
		if gctx.Err() != nil {
			break
		}
		if !q.acquireGoroutine() {
			one(i, id)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer q.releaseGoroutine()
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("panic during lookup: %v", p)
						cancel()
					}
					mu.Unlock()
				}
			}()
			one(i, id)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	for i, id := range ids {
		if keep[i] {
			out = append(out, id)
		}
	}
	return out, nil
}
