package check

import (
	"context"
	"strconv"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

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
	// cond: the answer is conditional on the caveat parameters missing (ok is then
	// false). volatile: the answer read a relation whose tuples may carry caveats or
	// expire, so it depends on the request's context or the read's time and is not
	// shared beyond the request.
	cond     bool
	missing  []string
	volatile bool
	// f is the condition of a conditional outcome (see condexpr.go); missing is then
	// the union of its atoms' parameters, until resolve narrows it.
	f *cexpr
}

// merge folds the cycle information and volatility of o into out (not the answer).
func (out *outcome) merge(o outcome) {
	out.tainted = out.tainted || o.tainted
	out.volatile = out.volatile || o.volatile
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

// checkRel answers whether subj is in obj#rel: one sub-problem, i.e. one frame.
func (q *request) checkRel(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, subj tuples.SubjectRef) (outcome, error) {
	q.dispatches.Add(1)
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
	for d := q.depth.Load(); int64(depth) > d && !q.depth.CompareAndSwap(d, int64(depth)); d = q.depth.Load() {
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
		ok, marker, hit := q.e.cache.get(key, depth, q.revNum, q.tracker, above)
		if marker {
			// The answer depended on the context: it is cached by the context's values.
			if ck, can := q.cacheCtx(relKey{obj.Type, rel}); can {
				if ok, _, hit := q.e.cache.get(key+ck, depth, q.revNum, q.tracker, above); hit {
					q.cacheHits.Add(1)
					return outcome{ok: ok, volatile: true}, nil
				}
			}
		} else if hit {
			q.cacheHits.Add(1)
			return outcome{ok: ok}, nil
		}
	}
	if q.memo.m != nil {
		q.memo.Lock()
		m, hit := q.memo.m[key]
		q.memo.Unlock()
		if hit {
			above.addAll(&m.deps)
			return outcome{ok: m.ok, cond: m.cond, missing: m.missing, f: m.f, volatile: m.volatile}, nil
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
	out, err := q.e.flight.do(ctx, q.rev+"@"+key+"@"+strconv.Itoa(depth)+q.ctxKey, func() (outcome, error) {
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
		if q.e.cache != nil && !out.cond {
			// A conditional answer's formula (condexpr.go) does not fit the shared
			// cache's pointer-free entries: only decided answers are shared. One that
			// read no caveated or expiring tuple holds whatever the context; one that
			// did holds for the context values its caveats can read.
			if !out.volatile {
				q.e.cache.put(key, out.ok, false, depth, q.revNum, d)
			} else if ck, can := q.cacheCtx(relKey{obj.Type, rel}); can {
				q.e.cache.put(key, false, true, depth, q.revNum, d)
				q.e.cache.put(key+ck, out.ok, false, depth, q.revNum, d)
			}
		}
		if q.memo.m != nil {
			// The request's context and revision are fixed: every answer holds in it.
			q.memo.Lock()
			q.memo.m[key] = memoEntry{ok: out.ok, cond: out.cond, missing: out.missing, f: out.f, volatile: out.volatile, deps: *d}
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
