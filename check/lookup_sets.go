package check

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// setPlan is how LookupResources evaluates a permission whose rewrite involves an
// intersection or an exclusion as set algebra over sorted streams of object ids,
// instead of verifying candidates with Check (see LookupResources).
//
// The permission's rewrite tree is cut into operators (union, intersection,
// exclusion, and computed usersets of other non-monotone permissions of the same
// type, which are inlined) and leaves: monotone sub-expressions (no intersection,
// exclusion, `.all()` or conditional relation reachable). Each leaf becomes a
// synthetic permission of the resource type in aug, a copy of the schema analysis;
// the ordinary reverse walk toward that permission gives exactly the objects of the
// leaf as a sorted, deduplicated stream (the merged reverse-index scans), and the
// operators combine the streams: merge, sorted intersection, sorted difference.
type setPlan struct {
	aug  *compiled
	root *setNode
	// leaves lists the synthetic permissions of aug, in the order of the tree.
	leaves []relKey
}

// setNode is one node of a setPlan's tree.
type setNode struct {
	op   schema.RewriteKind // Union, Intersection, Exclusion; This for a leaf
	kids []*setNode
	leaf int // index into setPlan.leaves, for a leaf
	// offset is how many computed-userset hops separate the permission looked up from
	// the permission whose rewrite holds this node: a leaf's objects reach the target
	// offset frames deeper than the walk toward the leaf counts.
	offset int
	// named is the permission this node is the whole rewrite of ("" for a part of a
	// rewrite): a userset subject naming that permission of an object holds it there.
	named string
}

// setPlanNone marks, in compiled.setPlans, a permission set algebra cannot look up.
var setPlanNone = &setPlan{}

// setPlanFor returns the set-algebra plan of target, or nil where the lookup must
// verify candidates with Check instead: the target lies on a cycle of the schema
// graph, a caveat or an expiration is reachable from it (answers are three-valued),
// or its rewrite reaches an intersection or exclusion only through an `.all()`
// arrow, an arrow to a non-monotone permission, or a non-monotone permission of its
// type that lies on a cycle. Plans are built once per schema.
func (c *compiled) setPlanFor(target relKey) *setPlan {
	if v, ok := c.setPlans.Load(target); ok {
		return nilIfNone(v.(*setPlan))
	}
	p := c.buildSetPlan(target)
	if p == nil {
		p = setPlanNone
	}
	v, _ := c.setPlans.LoadOrStore(target, p)
	return nilIfNone(v.(*setPlan))
}

func nilIfNone(p *setPlan) *setPlan {
	if p == setPlanNone {
		return nil
	}
	return p
}

func (c *compiled) buildSetPlan(target relKey) *setPlan {
	if !c.nonMonotone[target] || c.cyclic[target] {
		return nil
	}
	if _, cond := c.ctxParams[target]; cond {
		return nil
	}
	perm := c.rel(target.typ, target.rel)
	if perm == nil || perm.Rewrite == nil || perm.Rewrite.Kind == schema.This {
		return nil
	}
	var rws []*schema.Rewrite
	var build func(rw *schema.Rewrite, offset int, named string) *setNode
	build = func(rw *schema.Rewrite, offset int, named string) *setNode {
		if c.monotoneExpr(target.typ, rw) {
			rws = append(rws, rw)
			return &setNode{op: schema.This, leaf: len(rws) - 1, offset: offset, named: named}
		}
		switch rw.Kind {
		case schema.Union, schema.Intersection, schema.Exclusion:
			n := &setNode{op: rw.Kind, offset: offset, named: named}
			for _, ch := range rw.Children {
				k := build(ch, offset, "")
				if k == nil {
					return nil
				}
				n.kids = append(n.kids, k)
			}
			return n
		case schema.ComputedUserset:
			k := relKey{target.typ, rw.Relation}
			r := c.rel(k.typ, k.rel)
			if r == nil || c.cyclic[k] || r.Rewrite == nil || r.Rewrite.Kind == schema.This {
				return nil
			}
			in := build(r.Rewrite, offset+1, k.rel)
			if in == nil || named == "" {
				return in
			}
			// This node is named too (`permission p0 = p2`): a union of one.
			return &setNode{op: schema.Union, kids: []*setNode{in}, offset: offset, named: named}
		}
		return nil // an `.all()` arrow, or an arrow to a non-monotone permission
	}
	root := build(perm.Rewrite, 0, target.rel)
	if root == nil {
		return nil
	}
	// The analysis of the schema plus one synthetic permission per leaf, named so that
	// no schema name can clash ("~" is not allowed in identifiers).
	s := *c.s
	s.Definitions = maps.Clone(c.s.Definitions)
	d := *c.s.Definitions[target.typ]
	d.Relations = maps.Clone(d.Relations)
	d.Order = slices.Clone(d.Order)
	p := &setPlan{root: root}
	for i, rw := range rws {
		name := "~" + target.rel + "~" + strconv.Itoa(i)
		d.Relations[name] = &schema.Relation{Name: name, Permission: true, Rewrite: rw}
		d.Order = append(d.Order, name)
		p.leaves = append(p.leaves, relKey{target.typ, name})
	}
	s.Definitions[target.typ] = &d
	p.aug = analyze(&s)
	p.aug.rev, p.aug.revText = c.rev, c.revText
	return p
}

// idStream is a sorted stream of distinct object ids. sure is false for an id whose
// membership set algebra cannot settle: one reached only by paths longer than the
// depth limit (Check decides it, depth error included).
type idStream interface {
	next(ctx context.Context) (id string, sure, ok bool, err error)
}

// peeked is an idStream with its head read.
type peeked struct {
	s      idStream
	id     string
	sure   bool
	ok     bool
	loaded bool
}

func (p *peeked) head(ctx context.Context) (bool, error) {
	if !p.loaded {
		id, sure, ok, err := p.s.next(ctx)
		if err != nil {
			return false, err
		}
		p.id, p.sure, p.ok, p.loaded = id, sure, ok, true
	}
	return p.ok, nil
}

func (p *peeked) advance() { p.loaded = false }

// leafStream streams the objects of a leaf from its merged scans.
type leafStream struct {
	m     *merger
	extra int // the leaf's offset: depth the walk does not count
	max   int
}

func (l *leafStream) next(ctx context.Context) (string, bool, bool, error) {
	id, depth, ok, err := l.m.next(ctx)
	return id, depth+l.extra <= l.max, ok, err
}

// oneStream streams a single id.
type oneStream struct {
	id   string
	done bool
}

func (o *oneStream) next(context.Context) (string, bool, bool, error) {
	if o.done {
		return "", false, false, nil
	}
	o.done = true
	return o.id, true, true, nil
}

// unionStream merges its operands; an id is sure when some operand has it sure.
type unionStream struct{ kids []*peeked }

func (u *unionStream) next(ctx context.Context) (string, bool, bool, error) {
	least, found := "", false
	for _, k := range u.kids {
		ok, err := k.head(ctx)
		if err != nil {
			return "", false, false, err
		}
		if ok && (!found || k.id < least) {
			least, found = k.id, true
		}
	}
	if !found {
		return "", false, false, nil
	}
	sure := false
	for _, k := range u.kids {
		if k.ok && k.id == least {
			sure = sure || k.sure
			k.advance()
		}
	}
	return least, sure, true, nil
}

// interStream intersects its operands; an id is sure when every operand has it sure.
type interStream struct {
	kids  []*peeked
	drops *atomic.Int64
}

func (s *interStream) next(ctx context.Context) (string, bool, bool, error) {
	for {
		hi := ""
		for _, k := range s.kids {
			ok, err := k.head(ctx)
			if err != nil || !ok {
				return "", false, false, err
			}
			if k.id > hi {
				hi = k.id
			}
		}
		all, sure := true, true
		for _, k := range s.kids {
			for k.id < hi {
				s.drops.Add(1)
				k.advance()
				ok, err := k.head(ctx)
				if err != nil || !ok {
					return "", false, false, err
				}
			}
			all = all && k.id == hi
			sure = sure && k.sure
		}
		if all {
			for _, k := range s.kids {
				k.advance()
			}
			return hi, sure, true, nil
		}
	}
}

// diffStream is base minus sub. An id of base that sub also has is dropped when both
// are sure of it, and unsure when either is not (Check evaluates the subtracted side
// only when the base holds, and reports a depth error on either).
type diffStream struct {
	base, sub *peeked
	drops     *atomic.Int64
}

func (s *diffStream) next(ctx context.Context) (string, bool, bool, error) {
	for {
		ok, err := s.base.head(ctx)
		if err != nil || !ok {
			return "", false, false, err
		}
		id, sure := s.base.id, s.base.sure
		s.base.advance()
		for {
			ok, err := s.sub.head(ctx)
			if err != nil {
				return "", false, false, err
			}
			if !ok || s.sub.id >= id {
				break
			}
			s.sub.advance()
		}
		if !s.sub.ok || s.sub.id != id {
			return id, sure, true, nil
		}
		if !sure || !s.sub.sure {
			return id, false, true, nil
		}
		s.drops.Add(1)
	}
}

// lookupSets runs a lookup through plan p (see LookupResources). It reports false,
// having yielded nothing, when some walk was cut short by the depth limit: the caller
// then verifies candidates with Check, as where no plan applies.
func (e *Engine) lookupSets(ctx context.Context, r tuples.Reader, c *compiled, p *setPlan, req LookupResourcesRequest, after string, yield func(LookupResourcesResult) error) (bool, error) {
	streams := make([]*merger, len(p.leaves))
	for i, leaf := range p.leaves {
		plan := &streamPlan{hops: p.aug.streamNodes(leaf, p.aug.feeding(leaf)), cache: e.streams}
		found, cut, _, err := e.walkFacts(ctx, r, p.aug, req.Subject, leaf, nil, plan)
		if err != nil {
			return true, err
		}
		if cut != nil {
			return false, nil
		}
		m, err := plan.merge(ctx, r, found[leaf], after, req.Cursor != "", req.Limit)
		if err != nil {
			return true, err
		}
		streams[i] = m
	}
	subj := req.Subject
	var build func(n *setNode) idStream
	build = func(n *setNode) idStream {
		var s idStream
		switch n.op {
		case schema.This:
			s = &leafStream{m: streams[n.leaf], extra: n.offset, max: e.opts.MaxDepth}
		case schema.Union:
			u := &unionStream{}
			for _, k := range n.kids {
				u.kids = append(u.kids, &peeked{s: build(k)})
			}
			s = u
		case schema.Intersection:
			in := &interStream{drops: &e.setDrops}
			for _, k := range n.kids {
				in.kids = append(in.kids, &peeked{s: build(k)})
			}
			s = in
		case schema.Exclusion:
			s = &diffStream{base: &peeked{s: build(n.kids[0])}, sub: &peeked{s: build(n.kids[1])}, drops: &e.setDrops}
		}
		if n.named != "" && subj.IsUserset() && subj.Object.Type == req.ResourceType && subj.Relation == n.named &&
			(req.Cursor == "" || subj.Object.ID > after) {
			// The subject is this userset of its object: it holds there (see checkRel).
			s = &unionStream{kids: []*peeked{{s: s}, {s: &oneStream{id: subj.Object.ID}}}}
		}
		return s
	}
	root := build(p.root)
	var v *verifier
	n := 0
	for req.Limit <= 0 || n < req.Limit {
		if err := ctx.Err(); err != nil {
			return true, err
		}
		id, sure, ok, err := root.next(ctx)
		if err != nil {
			return true, err
		}
		if !ok {
			break
		}
		if !sure {
			// Reached only beyond the depth limit somewhere: Check decides, and reports
			// the depth error if there is one.
			if v == nil {
				v = e.newVerifier(r, c, req)
				v.onlySubtracted = false
			}
			keep, err := v.verify(ctx, []string{id})
			if err != nil {
				return true, err
			}
			if len(keep) == 0 {
				continue
			}
		}
		n++
		res := LookupResourcesResult{Object: tuples.ObjectRef{Type: req.ResourceType, ID: id}}
		if !req.OmitCursors {
			res.Cursor = encodeCursor(id)
		}
		if err := yield(res); err != nil {
			return true, err
		}
	}
	return true, nil
}
