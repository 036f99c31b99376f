package check

import (
	"context"
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

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
		if !base.ok && !base.cond {
			return finish(exp, base, "", base.exp, q.notEvaluated()), nil
		}
		sub, err := q.rewrite(ctx, at{f: pos.f, neg: pos.neg + 1}, obj, rel, r, rw.Children[1], subj)
		if err != nil {
			return outcome{}, err
		}
		var out outcome
		switch {
		case sub.ok && !sub.cond:
			// false
		case base.cond || sub.cond:
			out.cond = true
			out.missing = unionMissing(base.missing, sub.missing)
			var notSub *cexpr
			if sub.cond {
				notSub = cNegate(condOf(sub))
			}
			out.f = cJoin(cAnd, condOf(base), notSub)
		default:
			out.ok = true
		}
		out.merge(base)
		out.merge(sub)
		return finish(exp, out, "", base.exp, sub.exp), nil
	case schema.Nil:
		return finish(q.explainNode("nil"), outcome{}, ""), nil
	case schema.Self:
		ok := !subj.IsUserset() && subj.Object == obj
		return finish(q.explainNode("self"), outcome{ok: ok}, ""), nil
	}
	return outcome{}, fmt.Errorf("unknown rewrite kind %d in %s#%s", rw.Kind, obj.Type, rel)
}

// this evaluates a stored relation: the subject directly (or a wildcard of its type),
// then every userset the relation holds.
func (q *request) this(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, r *schema.Relation, subj tuples.SubjectRef) (outcome, error) {
	if r.Conditional {
		return q.thisConditional(ctx, pos, obj, rel, subj) // see caveats.go
	}
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
		ok, err := q.contains(ctx, t)
		if err != nil {
			return outcome{}, fmt.Errorf("reading %s: %w", t, err)
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
			q.reads.Add(1)
			for t, err := range q.r.Subjects(ctx, obj, rel, a.Type) {
				if err != nil {
					yield(nil, fmt.Errorf("reading %s#%s: %w", obj, rel, err))
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
// with the same answers as the general path. done is false when the relation is larger,
// or was found larger by an earlier check (see largeRelations).
func (q *request) thisSmall(ctx context.Context, pos at, obj tuples.ObjectRef, rel string, r *schema.Relation, subj tuples.SubjectRef) (out outcome, done bool, err error) {
	limit := q.e.smallRelation
	if limit == 0 || q.e.large.has(obj, rel) {
		return outcome{}, false, nil
	}
	// A pooled buffer: an array on the stack would escape through the read's closure.
	buf := q.e.smallBuffer()
	defer q.e.smallBufs.Put(buf)
	q.readForward(pos.f, obj, rel)
	ts, small, err := q.readSmall(ctx, (*buf)[:0], obj, rel, limit)
	defer clear(ts[:cap(ts)])
	if err != nil || !small {
		if err == nil {
			q.e.large.add(obj, rel)
		}
		return outcome{}, false, err
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
	out, err = q.viaTuples(ctx, pos, recurse, subj)
	return out, err == nil, err
}

// readSmall appends the tuples of obj#rel to ts and reports whether there are at most
// limit. (Its own function: the loop's closure would move thisSmall's variables to the
// heap, several allocations a call.)
func (q *request) readSmall(ctx context.Context, ts []tuples.Tuple, obj tuples.ObjectRef, rel string, limit int) ([]tuples.Tuple, bool, error) {
	if root, ok := q.rootTuples(ctx, obj); ok {
		for _, t := range root {
			if t.Relation != rel {
				continue
			}
			if len(ts) == limit {
				return ts, false, nil
			}
			ts = append(ts, t)
		}
		return ts, true, nil
	}
	q.reads.Add(1)
	for t, err := range q.r.Subjects(ctx, obj, rel, "") {
		if err != nil {
			return ts, false, fmt.Errorf("reading %s#%s: %w", obj, rel, err)
		}
		if len(ts) == limit {
			return ts, false, nil
		}
		ts = append(ts, t)
	}
	return ts, true, nil
}

// viaTuples is the union of following the userset subjects of ts.
func (q *request) viaTuples(ctx context.Context, pos at, ts []tuples.Tuple, subj tuples.SubjectRef) (outcome, error) {
	tasks := func(yield func(task, error) bool) {
		for _, t := range ts {
			if !yield(q.viaTuple(pos, t, subj), nil) {
				return
			}
		}
	}
	return q.fanOut(ctx, nil, tasks, true)
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
		for t, err := range q.subjects(ctx, obj, rw.Tupleset) {
			if err != nil {
				yield(nil, fmt.Errorf("reading %s#%s: %w", obj, rw.Tupleset, err))
				return
			}
			if !t.ExpiresAt.IsZero() && pos.f != nil {
				pos.f.deps.markOver() // see thisConditional
			}
			x := t.Subject.Object
			if t.Subject.IsWildcard() || (n > 0 && x == last && t.Caveat == nil) {
				continue
			}
			last = x
			n++
			if !yield(func(ctx context.Context) (outcome, error) {
				if t.Caveat != nil {
					return q.viaCaveat(ctx, t, func(ctx context.Context) (outcome, error) {
						return q.checkRel(ctx, pos, x, rw.Relation, subj)
					})
				}
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
		out.ok, out.cond, out.missing, out.f = false, false, nil, nil
		if out.exp != nil {
			out.exp.Result = false
			out.exp.Note = "no subjects"
		}
	}
	return out, nil
}
