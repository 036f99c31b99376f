package check

import (
	"context"
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// unionsOnly reports whether no intersection, exclusion or `.all()` arrow is reachable
// from k in the schema graph (caveats and expirations aside): the subjects of k are
// then the union of the plain subjects found going down from it, each final once
// found.
func (c *compiled) unionsOnly(k relKey) bool {
	for n := range c.reachable(k) {
		if r := c.rel(n.typ, n.rel); r != nil && !unionRewrite(r.Rewrite) {
			return false
		}
	}
	return true
}

func unionRewrite(rw *schema.Rewrite) bool {
	if rw == nil {
		return true
	}
	switch rw.Kind {
	case schema.Intersection, schema.Exclusion:
		return false
	case schema.TupleToUserset:
		return !rw.All
	}
	for _, ch := range rw.Children {
		if !unionRewrite(ch) {
			return false
		}
	}
	return true
}

// subjectsWalk goes down from one object's permission through a rewrite of unions
// only (see streamSubjects): it visits every userset below it once, breadth first
// (so each at its least depth), and turns every stored relation that holds plain
// subjects of the type looked up into a forward-index scan of plan.
type subjectsWalk struct {
	e        *Engine
	r        tuples.Reader
	c        *compiled
	typ, rel string // the subjects looked up
	seen     map[string]bool
	nodes    []subjectsNode // nodes[i:] is the queue
	plan     *streamPlan
	wild     bool // the wildcard of typ is stored in a relation reached
}

// subjectsNode is one userset reached, with its depth (1: the permission looked up)
// and the node it was reached from (-1 for the first), for depth errors.
type subjectsNode struct {
	obj    tuples.ObjectRef
	rel    string
	depth  int
	parent int
}

func (w *subjectsWalk) push(obj tuples.ObjectRef, rel string, depth, parent int) {
	key := obj.String() + "#" + rel
	if w.seen[key] {
		return
	}
	w.seen[key] = true
	w.nodes = append(w.nodes, subjectsNode{obj: obj, rel: rel, depth: depth, parent: parent})
}

// run walks down from obj#perm.
func (w *subjectsWalk) run(ctx context.Context, obj tuples.ObjectRef, perm string) error {
	w.push(obj, perm, 1, -1)
	for i := 0; i < len(w.nodes); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := w.nodes[i]
		if w.rel != "" && n.obj.Type == w.typ && n.rel == w.rel {
			w.plan.addID(n.obj.ID, 0, -1, relKey{}) // the userset itself
		}
		r := w.c.rel(n.obj.Type, n.rel)
		if r == nil {
			continue
		}
		if n.depth > w.e.opts.MaxDepth {
			return w.depthError(i)
		}
		if err := w.rewrite(ctx, i, r, r.Rewrite); err != nil {
			return err
		}
	}
	return nil
}

// depthError names the path to node i, as Check does.
func (w *subjectsWalk) depthError(i int) error {
	var path []string
	for j := i; j >= 0; j = w.nodes[j].parent {
		path = append(path, w.nodes[j].obj.String()+"#"+w.nodes[j].rel)
	}
	for a, b := 0, len(path)-1; a < b; a, b = a+1, b-1 {
		path[a], path[b] = path[b], path[a]
	}
	return &MaxDepthError{Limit: w.e.opts.MaxDepth, Path: path}
}

func (w *subjectsWalk) rewrite(ctx context.Context, i int, r *schema.Relation, rw *schema.Rewrite) error {
	n := w.nodes[i]
	if rw == nil || rw.Kind == schema.This {
		return w.this(ctx, i, r)
	}
	switch rw.Kind {
	case schema.ComputedUserset:
		w.push(n.obj, rw.Relation, n.depth+1, i)
	case schema.TupleToUserset:
		for t, err := range w.r.Subjects(ctx, n.obj, rw.Tupleset, "") {
			if err != nil {
				return fmt.Errorf("reading %s#%s: %w", n.obj, rw.Tupleset, err)
			}
			if !t.Subject.IsWildcard() {
				w.push(t.Subject.Object, rw.Relation, n.depth+1, i)
			}
		}
	case schema.Union:
		for _, ch := range rw.Children {
			if err := w.rewrite(ctx, i, r, ch); err != nil {
				return err
			}
		}
	case schema.Nil:
	case schema.Self:
		if w.rel == "" && n.obj.Type == w.typ {
			w.plan.addID(n.obj.ID, 0, -1, relKey{})
		}
	default:
		// unionsOnly let no other kind through.
		return fmt.Errorf("lookup of subjects: unexpected rewrite kind %d in %s#%s", rw.Kind, n.obj.Type, r.Name)
	}
	return nil
}

// this reads a stored relation the way Check does, per allowed subject entry: plain
// subjects of the type looked up become a scan of the plan, usersets are visited.
func (w *subjectsWalk) this(ctx context.Context, i int, r *schema.Relation) error {
	n := w.nodes[i]
	for _, a := range r.Allowed {
		switch {
		case a.Wildcard:
			if w.rel != "" || a.Type != w.typ || w.wild {
				continue
			}
			wild := tuples.Tuple{Object: n.obj, Relation: r.Name, Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.Type, ID: tuples.Wildcard}}}
			ok, err := w.r.Contains(ctx, wild)
			if err != nil {
				return fmt.Errorf("reading %s: %w", wild, err)
			}
			w.wild = ok
		case a.Relation == "":
			if w.rel == "" && a.Type == w.typ {
				w.plan.addForward(n.obj, r.Name, a.Type)
			}
		default:
			for t, err := range w.r.Subjects(ctx, n.obj, r.Name, a.Type) {
				if err != nil {
					return fmt.Errorf("reading %s#%s: %w", n.obj, r.Name, err)
				}
				if t.Subject.Relation == a.Relation && !t.Subject.IsWildcard() {
					w.push(t.Subject.Object, a.Relation, n.depth+1, i)
				}
			}
		}
	}
	return nil
}

// addForward adds the scan of the plain subjects of type typ of obj#rel.
func (p *streamPlan) addForward(obj tuples.ObjectRef, rel, typ string) {
	if p.scans == nil {
		p.scans = make(map[scanKey]*source)
	}
	k := scanKey{subj: tuples.SubjectRef{Object: obj}, typ: typ, rel: rel, forward: true}
	if p.scans[k] == nil {
		p.scans[k] = &source{scan: k, more: true}
	}
}

// streamSubjects is LookupSubjects for a permission whose rewrite, all the way down,
// is made of unions only (see LookupSubjects).
func (e *Engine) streamSubjects(ctx context.Context, r tuples.Reader, c *compiled, req LookupSubjectsRequest, after string, yield func(LookupSubjectsResult) error) error {
	w := &subjectsWalk{e: e, r: r, c: c, typ: req.SubjectType, rel: req.SubjectRelation, seen: map[string]bool{}, plan: &streamPlan{cache: e.streams}}
	if err := w.run(ctx, req.Object, req.Permission); err != nil {
		return err
	}
	resume := req.Cursor != ""
	m, err := w.plan.merge(ctx, r, nil, after, resume, req.Limit)
	if err != nil {
		return err
	}
	// Caveats or expirations below the permission: the walk found candidates, which
	// may hold only conditionally (or not at all, once a caveat is evaluated); Check
	// decides each. Without them every subject found is final.
	verify := c.nonMonotone[relKey{req.Object.Type, req.Permission}]
	n := 0
	emit := func(s tuples.SubjectRef) error {
		res := LookupSubjectsResult{Subject: s, Cursor: encodeCursor(s.Object.ID)}
		if verify {
			cr, err := e.check(ctx, r, c, CheckRequest{Object: req.Object, Permission: req.Permission, Subject: s, Context: req.Context})
			if err != nil {
				return err
			}
			if !cr.Allowed && !cr.Conditional {
				return nil
			}
			res.Conditional, res.MissingContext = cr.Conditional, cr.MissingContext
		}
		n++
		return yield(res)
	}
	// A union excludes no one from a wildcard: every subject has at least the
	// wildcard's answer, so the wildcard comes with no exclusions.
	if w.wild && (!resume || tuples.Wildcard > after) {
		if err := emit(tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: tuples.Wildcard}}); err != nil {
			return err
		}
	}
	for req.Limit <= 0 || n < req.Limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, _, ok, err := m.next(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := emit(tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}); err != nil {
			return err
		}
	}
	return nil
}
