package check

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// CheckRequest asks whether Subject has Permission on Object.
type CheckRequest struct {
	Object     tuples.ObjectRef
	Permission string
	Subject    tuples.SubjectRef
	// Explain asks for an Explanation. Explained checks bypass the cache and evaluate
	// sequentially, so the tree is deterministic.
	Explain bool
}

// CheckResult is the answer; Explanation is set when the request asked for it.
type CheckResult struct {
	Allowed     bool
	Explanation *Explanation
}

// Explanation is a tree saying why a check answered as it did.
type Explanation struct {
	// Step describes this node: a sub-problem ("flow:f1#execute"), a rewrite step
	// ("union", "tenant->view", "granted") or a tuple ("flow:f1#granted@role:ops#member").
	Step string
	// Result is this node's answer.
	Result bool
	// Note is extra information, e.g. "cycle", "contradictory cycle", "not evaluated".
	Note     string
	Children []*Explanation
}

// Check answers req at the snapshot r reads. An unknown object type, permission or
// subject type is a *NotFoundError; a subject type the schema never allows simply
// answers false. Evaluation deeper than Options.MaxDepth is a *MaxDepthError.
func (e *Engine) Check(ctx context.Context, r tuples.Reader, req CheckRequest) (CheckResult, error) {
	c, err := e.schemaFor(ctx, r)
	if err != nil {
		return CheckResult{}, err
	}
	return e.check(ctx, r, c, req)
}

// check is Check with the schema already compiled.
func (e *Engine) check(ctx context.Context, r tuples.Reader, c *compiled, req CheckRequest) (CheckResult, error) {
	if err := validateCheck(c, req); err != nil {
		return CheckResult{}, err
	}
	q := e.newRequest(r, c, req.Explain)
	out, err := q.checkRel(ctx, at{}, req.Object, req.Permission, req.Subject)
	if err != nil {
		return CheckResult{}, err
	}
	return CheckResult{Allowed: out.ok, Explanation: out.exp}, nil
}

// validateCheck reports the first unknown name in req.
func validateCheck(c *compiled, req CheckRequest) error {
	if err := validateRel(c, "object", req.Object.Type, req.Permission, "permission"); err != nil {
		return err
	}
	return validateSubject(c, "subject", req.Subject)
}

// validateRel checks that typ exists and, when rel is not empty, has rel.
func validateRel(c *compiled, typeField, typ, rel, relField string) error {
	d := c.s.Definitions[typ]
	if d == nil {
		return &NotFoundError{Field: typeField, Type: typ}
	}
	if rel != "" && d.Relations[rel] == nil {
		return &NotFoundError{Field: relField, Type: typ, Relation: rel}
	}
	return nil
}

// validateSubject checks a subject's type and relation.
func validateSubject(c *compiled, field string, s tuples.SubjectRef) error {
	return validateRel(c, field, s.Object.Type, s.Relation, field)
}

// request is the state of one request: the snapshot, the schema and the per-request
// goroutine budget. It is shared by the goroutines of the request.
type request struct {
	e       *Engine
	r       tuples.Reader
	c       *compiled
	rev     string          // the read revision, in flight keys
	revNum  tuples.Revision // the read revision
	explain bool
	// tracker names the scopes of reads when the reader can (see deps.go).
	tracker tuples.ScopeTracker
	// sem holds a token for every extra goroutine the request runs; when it is full,
	// work runs in the calling goroutine instead, so the fan-out is bounded and never
	// deadlocks.
	sem chan struct{}
	// memo, when not nil, holds this request's sub-problem answers that no cycle cut
	// touched (lookups check many candidates in one request).
	memo struct {
		sync.Mutex
		m map[string]memoEntry
	}
	// members memoizes, per monotone userset node, the ids whose userset holds the
	// request's subject (see memberships). A request has one subject.
	members struct {
		sync.Mutex
		byNode map[relKey]*membership
	}
}

// membership is the memoized answer of memberships for one node.
type membership struct {
	mu   sync.Mutex // held while computing; guards ids, cut, deps and done
	ids  map[string]bool
	cut  *MaxDepthError // non-nil when the depth limit cut the walk short
	deps deps           // the scopes the walk read
	done bool
}

// memoEntry is a request-local answer and the scopes it depends on.
type memoEntry struct {
	ok   bool
	deps deps
}

func (e *Engine) newRequest(r tuples.Reader, c *compiled, explain bool) *request {
	q := &request{e: e, r: r, c: c, rev: strconv.FormatUint(uint64(r.Revision()), 10), revNum: r.Revision(), explain: explain}
	q.tracker, _ = r.(tuples.ScopeTracker)
	if !explain && e.opts.Concurrency > 1 {
		q.sem = make(chan struct{}, e.opts.Concurrency-1)
	}
	return q
}

// frame is one sub-problem on the evaluation path; a path is a chain of parents.
// Frames are immutable but for deps.
type frame struct {
	parent *frame
	obj    tuples.ObjectRef
	rel    string
	depth  int // 1 for the request's own sub-problem
	neg    int // subtracted sides of exclusions entered above this frame
	// assume is the value a revisit of this frame takes: false (the least fixed point)
	// except while re-evaluating a frame closed by an odd cycle.
	assume bool
	// assumeSet is assume for subject-set evaluation (LookupSubjects): the members a
	// revisit takes; nil means none.
	assumeSet *idset
	// deps gathers the scopes the frame's answer depends on (see deps.go).
	deps collector
}

// at is the position of an evaluation: the innermost frame and how many subtracted
// sides lie between it and here.
type at struct {
	f   *frame
	neg int
}

// revisit records that evaluation reached a frame still on its path.
type revisit struct {
	depth int
	odd   bool // through an odd number of subtracted sides
}

// outcome is the answer to a node plus what the engine must know about how it was
// computed.
type outcome struct {
	ok bool
	// tainted: a cycle was cut somewhere below, so the answer holds for this path only
	// and is not cached.
	tainted bool
	// revisits of frames still open above the node that computed this outcome.
	revisits []revisit
	exp      *Explanation
	// deps, set by evalFrame, are the scopes the frame's answer depends on; checkRel
	// adds them to the frame above.
	deps *deps
}

// merge folds the cycle information of o into out (not the answer).
func (out *outcome) merge(o outcome) {
	out.tainted = out.tainted || o.tainted
	for _, r := range o.revisits {
		dup := false
		for _, have := range out.revisits {
			if have == r {
				dup = true
				break
			}
		}
		if !dup {
			out.revisits = append(out.revisits, r)
		}
	}
}

// explainNode returns a new explanation node when the request explains.
func (q *request) explainNode(step string) *Explanation {
	if !q.explain {
		return nil
	}
	return &Explanation{Step: step}
}

// finish sets the node's result and children and returns out with it attached.
func finish(exp *Explanation, out outcome, note string, children ...*Explanation) outcome {
	if exp == nil {
		return out
	}
	exp.Result = out.ok
	if note != "" {
		exp.Note = note
	}
	for _, ch := range children {
		if ch != nil {
			exp.Children = append(exp.Children, ch)
		}
	}
	out.exp = exp
	return out
}

// checkRel answers whether subj is in obj#rel: one sub-problem, i.e. one frame.
func (q *request) checkRel(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, subj tuples.SubjectRef) (outcome, error) {
	// A userset subject has the permission when that exact userset is reached.
	if subj.IsUserset() && subj.Object == obj && subj.Relation == rel {
		return finish(q.explainNode(obj.String()+"#"+rel), outcome{ok: true}, "the subject is this userset"), nil
	}
	r := q.c.rel(obj.Type, rel)
	if r == nil {
		// An arrow over a subject type without the relation contributes nothing.
		return outcome{}, nil
	}
	for f := pos.f; f != nil; f = f.parent {
		if f.obj == obj && f.rel == rel {
			out := outcome{ok: f.assume, tainted: true,
				revisits: []revisit{{depth: f.depth, odd: (pos.neg-f.neg)%2 == 1}}}
			return finish(q.explainNode(obj.String()+"#"+rel), out, "cycle"), nil
		}
	}
	depth := 1
	if pos.f != nil {
		depth = pos.f.depth + 1
	}
	if depth > q.e.opts.MaxDepth {
		return outcome{}, q.depthError(pos.f, obj.String()+"#"+rel)
	}
	if q.explain {
		return q.evalFrame(ctx, pos, depth, obj, rel, r, subj)
	}
	var above *collector // the frame this sub-problem's answer feeds
	if pos.f != nil {
		above = &pos.f.deps
	}
	key := q.key(obj, rel, subj)
	if q.e.cache != nil {
		if ok, hit := q.e.cache.get(key, depth, q.revNum, q.tracker, above); hit {
			return outcome{ok: ok}, nil
		}
	}
	if q.memo.m != nil {
		q.memo.Lock()
		m, hit := q.memo.m[key]
		q.memo.Unlock()
		if hit {
			above.addAll(&m.deps)
			return outcome{ok: m.ok}, nil
		}
	}
	if q.c.cyclic[relKey{obj.Type, rel}] {
		out, err := q.evalFrame(ctx, pos, depth, obj, rel, r, subj)
		if err == nil && out.deps != nil {
			above.addAll(out.deps)
		}
		return out, err
	}
	// The node lies on no cycle of the schema graph, so its answer does not depend on
	// the path that reached it: identical in-flight sub-checks share one evaluation.
	// (Sharing a node on a cycle could make two evaluations wait on each other.) They
	// must also start at the same depth, so that a depth error is never shared away,
	// and read the same revision.
	out, err := q.e.flight.do(ctx, q.rev+"@"+key+"@"+strconv.Itoa(depth), func() (outcome, error) {
		return q.evalFrame(ctx, pos, depth, obj, rel, r, subj)
	})
	if err != nil {
		if isContextErr(err) && ctx.Err() == nil {
			// The leader's request was cancelled, not ours: evaluate it ourselves.
			out, err = q.evalFrame(ctx, pos, depth, obj, rel, r, subj)
		}
		if err != nil {
			return outcome{}, err
		}
	}
	if out.deps != nil {
		above.addAll(out.deps)
	}
	out.revisits = nil // an acyclic node closes every cycle below it
	return out, nil
}

// evalFrame evaluates obj#rel for subj in a new frame, applies the cycle rules and
// caches the answer when no cycle was cut below it.
func (q *request) evalFrame(ctx context.Context, pos at, depth int, obj tuples.ObjectRef, rel string, r *schema.Relation, subj tuples.SubjectRef) (outcome, error) {
	f := &frame{parent: pos.f, obj: obj, rel: rel, depth: depth, neg: pos.neg}
	out, err := q.rewrite(ctx, at{f: f, neg: pos.neg}, obj, rel, r, r.Rewrite, subj)
	if err != nil {
		return outcome{}, err
	}
	hit, odd := closeFrame(&out, depth)
	note := ""
	if hit && odd && out.ok {
		// The answer assumed this sub-problem false where a cycle closed through an
		// odd number of subtracted sides. If it is not also true when assumed true, no
		// consistent answer exists: fail closed.
		f2 := &frame{parent: pos.f, obj: obj, rel: rel, depth: depth, neg: pos.neg, assume: true}
		again, err := q.rewrite(ctx, at{f: f2, neg: pos.neg}, obj, rel, r, r.Rewrite, subj)
		if err != nil {
			return outcome{}, err
		}
		closeFrame(&again, depth)
		out.merge(again)
		d2 := f2.deps.snapshot()
		f.deps.addAll(&d2)
		if !again.ok {
			out.ok = false
			note = "contradictory cycle"
		}
	}
	// Every goroutine of the frame's evaluation has ended (fanOut waits for them), so
	// its deps are final and read without the lock.
	d := &f.deps.d
	out.deps = d
	if !out.tainted && !q.explain && (q.e.cache != nil || q.memo.m != nil) {
		key := q.key(obj, rel, subj)
		if q.e.cache != nil {
			q.e.cache.put(key, out.ok, depth, q.revNum, d)
		}
		if q.memo.m != nil {
			q.memo.Lock()
			q.memo.m[key] = memoEntry{ok: out.ok, deps: *d}
			q.memo.Unlock()
		}
	}
	if !q.explain {
		return out, nil
	}
	return finish(q.explainNode(obj.String()+"#"+rel), out, note, out.exp), nil
}

// closeFrame removes the revisits of the frame at depth (and deeper) from out and
// reports whether the frame was revisited, and whether through an odd cycle.
func closeFrame(out *outcome, depth int) (hit, odd bool) {
	kept := out.revisits[:0]
	for _, r := range out.revisits {
		switch {
		case r.depth == depth:
			hit = true
			odd = odd || r.odd
		case r.depth < depth:
			kept = append(kept, r)
		}
	}
	out.revisits = kept
	if len(kept) == 0 {
		out.revisits = nil
	}
	return hit, odd
}

// depthError builds the *MaxDepthError for the path ending at step below f.
func (q *request) depthError(f *frame, step string) error {
	var path []string
	for ; f != nil; f = f.parent {
		path = append(path, f.obj.String()+"#"+f.rel)
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return &MaxDepthError{Limit: q.e.opts.MaxDepth, Path: append(path, step)}
}

// key is the cache, memo and deduplication key of a sub-problem under this request's
// schema (not its revision: see deps.go).
func (q *request) key(obj tuples.ObjectRef, rel string, subj tuples.SubjectRef) string {
	b := make([]byte, 0, len(q.c.revText)+len(obj.Type)+len(obj.ID)+len(rel)+len(subj.Object.Type)+len(subj.Object.ID)+len(subj.Relation)+8)
	b = append(b, q.c.revText...)
	b = append(b, '|')
	b = append(b, obj.Type...)
	b = append(b, ':')
	b = append(b, obj.ID...)
	b = append(b, '#')
	b = append(b, rel...)
	b = append(b, '@')
	b = append(b, subj.Object.Type...)
	b = append(b, ':')
	b = append(b, subj.Object.ID...)
	if subj.Relation != "" {
		b = append(b, '#')
		b = append(b, subj.Relation...)
	}
	return string(b)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// rewrite evaluates one node of obj#rel's rewrite tree.
func (q *request) rewrite(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, r *schema.Relation, rw *schema.Rewrite, subj tuples.SubjectRef) (outcome, error) {
	if rw == nil {
		return q.this(ctx, pos, obj, rel, r, subj)
	}
	switch rw.Kind {
	case schema.This:
		return q.this(ctx, pos, obj, rel, r, subj)
	case schema.ComputedUserset:
		return q.checkRel(ctx, pos, obj, rw.Relation, subj)
	case schema.TupleToUserset:
		return q.arrow(ctx, pos, obj, rw, subj)
	case schema.Union, schema.Intersection:
		stopOn := rw.Kind == schema.Union
		step := "union"
		if !stopOn {
			step = "intersection"
		}
		tasks := func(yield func(task, error) bool) {
			for _, ch := range rw.Children {
				if !yield(func(ctx context.Context) (outcome, error) {
					return q.rewrite(ctx, pos, obj, rel, r, ch, subj)
				}, nil) {
					return
				}
			}
		}
		return q.fanOut(ctx, q.explainNode(step), tasks, stopOn)
	case schema.Exclusion:
		exp := q.explainNode("exclusion")
		base, err := q.rewrite(ctx, pos, obj, rel, r, rw.Children[0], subj)
		if err != nil {
			return outcome{}, err
		}
		if !base.ok {
			return finish(exp, base, "", base.exp, q.notEvaluated()), nil
		}
		sub, err := q.rewrite(ctx, at{f: pos.f, neg: pos.neg + 1}, obj, rel, r, rw.Children[1], subj)
		if err != nil {
			return outcome{}, err
		}
		out := outcome{ok: !sub.ok}
		out.merge(base)
		out.merge(sub)
		return finish(exp, out, "", base.exp, sub.exp), nil
	case schema.Nil:
		return finish(q.explainNode("nil"), outcome{}, ""), nil
	case schema.Self:
		ok := !subj.IsUserset() && subj.Object == obj
		return finish(q.explainNode("self"), outcome{ok: ok}, ""), nil
	}
	return outcome{}, fmt.Errorf("check: unknown rewrite kind %d in %s#%s", rw.Kind, obj.Type, rel)
}

// notEvaluated is the explanation of a branch short-circuited away.
func (q *request) notEvaluated() *Explanation {
	if !q.explain {
		return nil
	}
	return &Explanation{Step: "subtracted side", Note: "not evaluated"}
}

// this evaluates a stored relation: the subject directly (or a wildcard of its type),
// then every userset the relation holds.
func (q *request) this(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, r *schema.Relation, subj tuples.SubjectRef) (outcome, error) {
	if !q.explain {
		if out, done, err := q.thisSmall(ctx, pos, obj, rel, r, subj); err != nil || done {
			return out, err
		}
	}
	exp := q.explainNode(rel)
	var directBuf [4]tuples.SubjectRef
	direct := directBuf[:0]
	var usersets []schema.AllowedSubject
	for _, a := range r.Allowed {
		switch {
		case a.Relation != "":
			usersets = append(usersets, a)
			if subj.IsUserset() && a.Type == subj.Object.Type && a.Relation == subj.Relation {
				direct = append(direct, subj)
			}
		case a.Wildcard:
			if !subj.IsUserset() && a.Type == subj.Object.Type {
				direct = append(direct, tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.Type, ID: tuples.Wildcard}})
			}
		default:
			if !subj.IsUserset() && !subj.IsWildcard() && a.Type == subj.Object.Type {
				direct = append(direct, subj)
			}
		}
	}
	if len(direct) > 0 || len(usersets) > 0 {
		q.readForward(pos.f, obj, rel)
	}
	for _, d := range direct {
		t := tuples.Tuple{Object: obj, Relation: rel, Subject: d}
		ok, err := q.r.Contains(ctx, t)
		if err != nil {
			return outcome{}, fmt.Errorf("check: reading %s: %w", t, err)
		}
		if ok {
			return finish(exp, outcome{ok: true}, "", &Explanation{Step: t.String(), Result: true}), nil
		}
	}
	if len(usersets) == 0 {
		return finish(exp, outcome{}, ""), nil
	}
	if !q.explain {
		// Usersets of monotone nodes (unions and arrows only below them): read which of
		// them hold the subject from the reverse index once per request, instead of
		// walking each one down. See memberships for why this is exact.
		var rest []schema.AllowedSubject
		for _, a := range usersets {
			k := relKey{a.Type, a.Relation}
			if q.c.nonMonotone[k] {
				rest = append(rest, a)
				continue
			}
			ok, err := q.viaMemberships(ctx, pos.f, obj, rel, a, subj)
			if err != nil {
				return outcome{}, err
			}
			if ok {
				return outcome{ok: true}, nil
			}
		}
		if usersets = rest; len(usersets) == 0 {
			return outcome{}, nil
		}
	}
	tasks := func(yield func(task, error) bool) {
		for _, a := range usersets {
			for t, err := range q.r.Subjects(ctx, obj, rel, a.Type) {
				if err != nil {
					yield(nil, fmt.Errorf("check: reading %s#%s: %w", obj, rel, err))
					return
				}
				if t.Subject.Relation != a.Relation || t.Subject.IsWildcard() {
					continue
				}
				if !yield(q.viaTuple(pos, t, subj), nil) {
					return
				}
			}
		}
	}
	return q.fanOut(ctx, exp, tasks, true)
}

// smallRelation is the number of tuples up to which a stored relation is read whole by
// one scan, instead of probing the subject and its wildcard and scanning the usersets.
const smallRelation = 16

// smallBuffer returns a buffer of smallRelation tuples from e.smallBufs.
func (e *Engine) smallBuffer() *[]tuples.Tuple {
	if b, ok := e.smallBufs.Get().(*[]tuples.Tuple); ok {
		return b
	}
	b := make([]tuples.Tuple, 0, smallRelation)
	return &b
}

// thisSmall evaluates a stored relation of at most smallRelation tuples from one scan,
// with the same answers as the general path. done is false when the relation is larger.
func (q *request) thisSmall(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, r *schema.Relation, subj tuples.SubjectRef) (out outcome, done bool, err error) {
	limit := q.e.smallRelation
	if limit == 0 {
		return outcome{}, false, nil
	}
	// A pooled buffer: an array on the stack would escape through the loop's closure.
	buf := q.e.smallBuffer()
	defer q.e.smallBufs.Put(buf)
	ts := (*buf)[:0]
	defer clear(ts[:cap(ts)])
	q.readForward(pos.f, obj, rel)
	for t, err := range q.r.Subjects(ctx, obj, rel, "") {
		if err != nil {
			return outcome{}, false, fmt.Errorf("check: reading %s#%s: %w", obj, rel, err)
		}
		if len(ts) == limit {
			return outcome{}, false, nil
		}
		ts = append(ts, t)
	}
	var recurse []tuples.Tuple
	for _, t := range ts {
		s := t.Subject
		for _, a := range r.Allowed {
			if a.Type != s.Object.Type {
				continue
			}
			switch {
			case a.Wildcard:
				if s.IsWildcard() && !subj.IsUserset() && subj.Object.Type == a.Type {
					return outcome{ok: true}, true, nil
				}
			case a.Relation != "":
				if s.Relation != a.Relation || s.IsWildcard() {
					continue
				}
				if s == subj {
					return outcome{ok: true}, true, nil
				}
				if q.c.nonMonotone[relKey{a.Type, a.Relation}] {
					recurse = append(recurse, t)
					continue
				}
				ids, cut, err := q.memberships(ctx, pos.f, relKey{a.Type, a.Relation}, subj)
				if err != nil {
					return outcome{}, false, err
				}
				if ids[s.Object.ID] {
					return outcome{ok: true}, true, nil
				}
				if cut != nil {
					return outcome{}, false, cut
				}
			default:
				if s == subj && !s.IsUserset() && !s.IsWildcard() {
					return outcome{ok: true}, true, nil
				}
			}
		}
	}
	if len(recurse) == 0 {
		return outcome{}, true, nil
	}
	tasks := func(yield func(task, error) bool) {
		for _, t := range recurse {
			if !yield(q.viaTuple(pos, t, subj), nil) {
				return
			}
		}
	}
	out, err = q.fanOut(ctx, nil, tasks, true)
	return out, err == nil, err
}

// membershipScanAt is the number of memberships from which viaMemberships scans the
// relation's usersets instead of probing each membership with Contains.
const membershipScanAt = 3

// viaMemberships reports whether obj#rel holds a userset of entry a that holds subj.
func (q *request) viaMemberships(ctx context.Context, f *frame, obj tuples.ObjectRef, rel string, a schema.AllowedSubject, subj tuples.SubjectRef) (bool, error) {
	ids, cut, err := q.memberships(ctx, f, relKey{a.Type, a.Relation}, subj)
	if err != nil {
		return false, err
	}
	// A membership beyond the depth limit may be the one that decides: fail rather
	// than answer a silent false.
	notFound := func() (bool, error) {
		if cut != nil {
			return false, cut
		}
		return false, nil
	}
	if len(ids) == 0 {
		return notFound()
	}
	q.readForward(f, obj, rel)
	if len(ids) < membershipScanAt {
		for id := range ids {
			t := tuples.Tuple{Object: obj, Relation: rel, Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.Type, ID: id}, Relation: a.Relation}}
			ok, err := q.r.Contains(ctx, t)
			if err != nil {
				return false, fmt.Errorf("check: reading %s: %w", t, err)
			}
			if ok {
				return true, nil
			}
		}
		return notFound()
	}
	for t, err := range q.r.Subjects(ctx, obj, rel, a.Type) {
		if err != nil {
			return false, fmt.Errorf("check: reading %s#%s: %w", obj, rel, err)
		}
		if t.Subject.Relation == a.Relation && ids[t.Subject.Object.ID] {
			return true, nil
		}
	}
	return notFound()
}

// memberships returns the ids x for which k's userset x#rel holds subj, for a node k
// from which no intersection, exclusion or `.all()` is reachable, computed once per
// request by the reverse-index walk of LookupResources.
//
// This is exactly what walking each userset down would answer. Below a monotone node
// every answer is reachability: a path-cut walk finds a path whenever one exists. A
// frame above it on the current path that the walk could revisit is reachable from k,
// hence monotone too; the highest such frame is itself plain reachability, and the
// userset's reachable set is contained in that frame's, so substituting it changes no
// answer.
//
// cut is non-nil when the walk stopped at the depth limit: an id missing from ids may
// then still hold subj, and the caller reports cut instead of answering false.
//
// The walk's reads are added to frame f's deps, on every call.
func (q *request) memberships(ctx context.Context, f *frame, k relKey, subj tuples.SubjectRef) (ids map[string]bool, cut *MaxDepthError, err error) {
	q.members.Lock()
	if q.members.byNode == nil {
		q.members.byNode = make(map[relKey]*membership)
	}
	m := q.members.byNode[k]
	if m == nil {
		m = &membership{}
		q.members.byNode[k] = m
	}
	q.members.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.done {
		// Errors (a cancelled branch, say) are not memoized: another caller retries.
		var walked collector
		found, cut, err := q.e.walkUp(ctx, q.r, q.c, LookupResourcesRequest{ResourceType: k.typ, Permission: k.rel, Subject: subj}, &walked)
		if err != nil {
			return nil, nil, err
		}
		m.ids = make(map[string]bool, len(found))
		for _, id := range found {
			m.ids[id] = true
		}
		m.cut, m.deps, m.done = cut, walked.snapshot(), true
	}
	if f != nil {
		f.deps.addAll(&m.deps)
	}
	return m.ids, m.cut, nil
}

// viaTuple is the task of following the userset subject of tuple t.
func (q *request) viaTuple(pos at, t tuples.Tuple, subj tuples.SubjectRef) task {
	return func(ctx context.Context) (outcome, error) {
		out, err := q.checkRel(ctx, pos, t.Subject.Object, t.Subject.Relation, subj)
		if err != nil || !q.explain {
			return out, err
		}
		return finish(&Explanation{Step: t.String()}, out, "", out.exp), nil
	}
}

// arrow evaluates tupleset->relation (any) or tupleset.all(relation): it follows the
// object of each subject of the tupleset relation (a userset subject contributes its
// object only).
func (q *request) arrow(ctx context.Context, pos at, obj tuples.ObjectRef, rw *schema.Rewrite, subj tuples.SubjectRef) (outcome, error) {
	step := rw.Tupleset + "->" + rw.Relation
	if rw.All {
		step = rw.Tupleset + ".all(" + rw.Relation + ")"
	}
	exp := q.explainNode(step)
	n := 0
	tasks := func(yield func(task, error) bool) {
		var last tuples.ObjectRef
		q.readForward(pos.f, obj, rw.Tupleset)
		for t, err := range q.r.Subjects(ctx, obj, rw.Tupleset, "") {
			if err != nil {
				yield(nil, fmt.Errorf("check: reading %s#%s: %w", obj, rw.Tupleset, err))
				return
			}
			x := t.Subject.Object
			if t.Subject.IsWildcard() || (n > 0 && x == last) {
				continue
			}
			last = x
			n++
			if !yield(func(ctx context.Context) (outcome, error) {
				out, err := q.checkRel(ctx, pos, x, rw.Relation, subj)
				if err != nil || !q.explain {
					return out, err
				}
				return finish(&Explanation{Step: t.String()}, out, "", out.exp), nil
			}, nil) {
				return
			}
		}
	}
	out, err := q.fanOut(ctx, exp, tasks, !rw.All)
	if err != nil {
		return outcome{}, err
	}
	if rw.All && n == 0 {
		out.ok = false
		if out.exp != nil {
			out.exp.Result = false
			out.exp.Note = "no subjects"
		}
	}
	return out, nil
}

// task evaluates one branch.
type task func(ctx context.Context) (outcome, error)

// fanOut evaluates tasks and combines them: the result is stopOn as soon as one task
// answers stopOn (union and `any` stop at the first true, intersection and `all` at the
// first false), and !stopOn when none does. Tasks run in extra goroutines while the
// request's budget allows and in the calling goroutine otherwise; the others are
// cancelled once the answer is decided, and fanOut returns only after all of them have.
// An error is returned only when no task decided the answer.
func (q *request) fanOut(parent context.Context, exp *Explanation, tasks iter.Seq2[task, error], stopOn bool) (outcome, error) {
	// Tasks run in the calling goroutine until one is spawned; only then is a
	// cancellable context needed to stop the spawned ones early.
	ctx := parent
	cancel := func() {}
	defer func() { cancel() }()
	var (
		wg sync.WaitGroup
		mu struct {
			sync.Mutex
			decided  bool
			decision outcome
			combined outcome
			err      error
			children []*Explanation
		}
	)
	mu.combined.ok = !stopOn
	record := func(o outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		if mu.decided {
			return
		}
		if err != nil {
			if mu.err == nil {
				mu.err = err
			}
			return
		}
		if o.exp != nil {
			mu.children = append(mu.children, o.exp)
		}
		if o.ok == stopOn {
			mu.decided = true
			mu.decision = o
			cancel()
			return
		}
		mu.combined.merge(o)
	}
	decided := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return mu.decided
	}
	for t, err := range tasks {
		if err != nil {
			record(outcome{}, err)
			break
		}
		if decided() {
			break
		}
		if ctx.Err() != nil {
			record(outcome{}, ctx.Err())
			break
		}
		// A task gets its own goroutine only when both the request's budget and the
		// engine's have room: under load every CPU is busy with other requests, and a
		// goroutine per task would only add scheduling, contexts and stack growth.
		spawn := false
		select {
		case q.sem <- struct{}{}:
			select {
			case q.e.spawn <- struct{}{}:
				spawn = true
			default:
				<-q.sem
			}
		default:
		}
		switch {
		case spawn:
			if ctx == parent {
				var c context.CancelFunc
				ctx, c = context.WithCancel(parent)
				mu.Lock()
				cancel = c
				mu.Unlock()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-q.e.spawn; <-q.sem }()
				defer func() {
					if p := recover(); p != nil {
						record(outcome{}, fmt.Errorf("check: panic during evaluation: %v", p))
					}
				}()
				record(t(ctx))
			}()
		default:
			record(t(ctx))
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var out outcome
	switch {
	case mu.decided:
		out = outcome{ok: stopOn}
		out.merge(mu.decision)
	case mu.err != nil:
		return outcome{}, mu.err
	default:
		out = mu.combined
	}
	return finish(exp, out, "", mu.children...), nil
}
