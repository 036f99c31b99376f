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
// exclusion, computed usersets of other non-monotone permissions of the same type,
// which are inlined, and arrows to non-monotone permissions) and leaves: monotone
// sub-expressions (no intersection, exclusion, `.all()` or conditional relation
// reachable). Each leaf becomes a synthetic permission of its type in aug, a copy of
// the schema analysis; the ordinary reverse walk toward that permission gives exactly
// the objects of the leaf as a sorted, deduplicated stream (the merged reverse-index
// scans), and the operators combine the streams: merge, sorted intersection, sorted
// difference.
//
// An arrow `ts->P` to a permission P of type T that is not monotone is planned
// recursively: the plan of T#P gives the sorted stream of T objects having P, and the
// arrow maps it back through the tupleset: the objects o with o#ts@T:t for those t,
// read from the reverse index (one scan per t) and merged in id order. Several types
// allowed on the tupleset give one such arrow node each, under a union (a type whose P
// is monotone gets a leaf of its own type, `~n = P`).
type setPlan struct {
	aug  *compiled
	root *setNode
	// leaves lists the synthetic permissions of aug, in the order of the tree; top
	// tells, per leaf, whether its objects are of the looked-up type (no arrow node
	// above it): only those streams start after a cursor.
	leaves []relKey
	top    []bool
}

// setNode is one node of a setPlan's tree.
type setNode struct {
	// op is Union, Intersection, Exclusion; This for a leaf; TupleToUserset for an
	// arrow node, whose only kid is the plan of the arrow's target on subjType.
	op   schema.RewriteKind
	kids []*setNode
	leaf int // index into setPlan.leaves, for a leaf
	// typ is the type of the objects the node yields.
	typ string
	// offset is how many frames separate the permission looked up from the permission
	// whose rewrite holds this node (computed-userset hops, and one per arrow node
	// above): a leaf's objects reach the target offset frames deeper than the walk
	// toward the leaf counts.
	offset int
	// named is the permission this node is the whole rewrite of ("" for a part of a
	// rewrite): a userset subject naming that permission of an object holds it there.
	named string
	// For an arrow node: the tupleset relation of typ, the type of its subjects
	// followed, and the relations with which that type is allowed on it ("" for plain
	// objects).
	tupleset         string
	subjType         string
	subjectRelations []string
}

// setPlanNone marks, in compiled.setPlans, a permission set algebra cannot look up.
var setPlanNone = &setPlan{}

// setPlanFor returns the set-algebra plan of target, or nil where the lookup must
// verify candidates with Check instead: the target lies on a cycle of the schema
// graph, a caveat or an expiration is reachable from it (answers are three-valued),
// or its rewrite reaches an intersection or exclusion only through an `.all()`
// arrow, or through a non-monotone permission (of its type, or at the end of an
// arrow) that lies on a cycle. Plans are built once per schema.
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
	type leafRW struct {
		typ string
		rw  *schema.Rewrite
		top bool
	}
	var rws []leafRW
	leaf := func(typ string, rw *schema.Rewrite, offset int, named string, top bool) *setNode {
		rws = append(rws, leafRW{typ, rw, top})
		return &setNode{op: schema.This, leaf: len(rws) - 1, typ: typ, offset: offset, named: named}
	}
	// Every node the recursion enters is off any cycle, and each step goes to a node
	// the last one reaches: it ends.
	var build func(typ string, rw *schema.Rewrite, offset int, named string, top bool) *setNode
	build = func(typ string, rw *schema.Rewrite, offset int, named string, top bool) *setNode {
		if c.monotoneExpr(typ, rw) {
			return leaf(typ, rw, offset, named, top)
		}
		switch rw.Kind {
		case schema.Union, schema.Intersection, schema.Exclusion:
			n := &setNode{op: rw.Kind, typ: typ, offset: offset, named: named}
			for _, ch := range rw.Children {
				k := build(typ, ch, offset, "", top)
				if k == nil {
					return nil
				}
				n.kids = append(n.kids, k)
			}
			return n
		case schema.ComputedUserset:
			k := relKey{typ, rw.Relation}
			r := c.rel(k.typ, k.rel)
			if r == nil || c.cyclic[k] || r.Rewrite == nil || r.Rewrite.Kind == schema.This {
				return nil
			}
			in := build(typ, r.Rewrite, offset+1, k.rel, top)
			if in == nil || named == "" {
				return in
			}
			// This node is named too (`permission p0 = p2`): a union of one.
			return &setNode{op: schema.Union, kids: []*setNode{in}, typ: typ, offset: offset, named: named}
		case schema.TupleToUserset:
			if rw.All || c.nonMonotone[relKey{typ, rw.Tupleset}] {
				return nil // `.all()`, or a conditional tupleset
			}
			ts := c.rel(typ, rw.Tupleset)
			if ts == nil {
				return nil
			}
			u := &setNode{op: schema.Union, typ: typ, offset: offset, named: named}
			byType := map[string][]string{}
			var order []string
			for _, a := range ts.Allowed {
				if a.Wildcard {
					continue // an arrow follows no wildcard
				}
				if _, ok := byType[a.Type]; !ok {
					order = append(order, a.Type)
				}
				byType[a.Type] = append(byType[a.Type], a.Relation)
			}
			for _, t := range order {
				k := relKey{t, rw.Relation}
				r := c.rel(k.typ, k.rel)
				if r == nil {
					continue // an arrow over a type without the relation adds nothing
				}
				if c.cyclic[k] {
					return nil
				}
				// The target's frame is one deeper than the frame holding the arrow.
				var sub *setNode
				if !c.nonMonotone[k] {
					sub = leaf(t, &schema.Rewrite{Kind: schema.ComputedUserset, Relation: k.rel}, offset+1, "", false)
				} else {
					if r.Rewrite == nil || r.Rewrite.Kind == schema.This {
						return nil
					}
					if sub = build(t, r.Rewrite, offset+1, k.rel, false); sub == nil {
						return nil
					}
				}
				u.kids = append(u.kids, &setNode{op: schema.TupleToUserset, kids: []*setNode{sub}, typ: typ,
					offset: offset, tupleset: rw.Tupleset, subjType: t, subjectRelations: byType[t]})
			}
			if len(u.kids) == 1 && named == "" {
				return u.kids[0]
			}
			return u
		}
		return nil
	}
	root := build(target.typ, perm.Rewrite, 0, target.rel, true)
	if root == nil {
		return nil
	}
	// The analysis of the schema plus one synthetic permission per leaf, named so that
	// no schema name can clash ("~" is not allowed in identifiers).
	s := *c.s
	s.Definitions = maps.Clone(c.s.Definitions)
	cloned := map[string]*schema.Definition{}
	p := &setPlan{root: root}
	for i, l := range rws {
		d := cloned[l.typ]
		if d == nil {
			dd := *c.s.Definitions[l.typ]
			d = &dd
			d.Relations = maps.Clone(d.Relations)
			d.Order = slices.Clone(d.Order)
			cloned[l.typ] = d
			s.Definitions[l.typ] = d
		}
		name := "~" + target.rel + "~" + strconv.Itoa(i)
		d.Relations[name] = &schema.Relation{Name: name, Permission: true, Rewrite: l.rw}
		d.Order = append(d.Order, name)
		p.leaves = append(p.leaves, relKey{l.typ, name})
		p.top = append(p.top, l.top)
	}
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
		var m *merger
		if p.top[i] {
			m, err = plan.merge(ctx, r, found[leaf], after, req.Cursor != "", req.Limit)
		} else {
			// Objects of another type, mapped back through an arrow: all of them.
			m, err = plan.merge(ctx, r, found[leaf], "", false, 0)
		}
		if err != nil {
			return true, err
		}
		streams[i] = m
	}
	subj := req.Subject
	var build func(n *setNode, top bool) idStream
	build = func(n *setNode, top bool) idStream {
		var s idStream
		switch n.op {
		case schema.This:
			s = &leafStream{m: streams[n.leaf], extra: n.offset, max: e.opts.MaxDepth}
		case schema.TupleToUserset:
			a := &arrowStream{e: e, r: r, n: n, sub: build(n.kids[0], false)}
			if top {
				a.after, a.resume, a.limit = after, req.Cursor != "", req.Limit
			}
			s = a
		case schema.Union:
			u := &unionStream{}
			for _, k := range n.kids {
				u.kids = append(u.kids, &peeked{s: build(k, top)})
			}
			s = u
		case schema.Intersection:
			in := &interStream{drops: &e.setDrops}
			for _, k := range n.kids {
				in.kids = append(in.kids, &peeked{s: build(k, top)})
			}
			s = in
		case schema.Exclusion:
			s = &diffStream{base: &peeked{s: build(n.kids[0], top)}, sub: &peeked{s: build(n.kids[1], top)}, drops: &e.setDrops}
		}
		if n.named != "" && subj.IsUserset() && subj.Object.Type == n.typ && subj.Relation == n.named &&
			(!top || req.Cursor == "" || subj.Object.ID > after) {
			// The subject is this userset of its object: it holds there (see checkRel).
			s = &unionStream{kids: []*peeked{{s: s}, {s: &oneStream{id: subj.Object.ID}}}}
		}
		return s
	}
	root := build(p.root, true)
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
			e.setVerified.Add(1)
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

// arrowStream streams the objects of an arrow node: the objects o with o#ts@T:t (or
// @T:t#r for a relation r with which T is allowed on ts) for every t of the node's
// kid, in id order. The kid's stream is read whole first (its ids are the usersets
// below this hop, held like the walk's), then the reverse-index scan of each t is
// merged as in a leaf. An object is sure when some t that reaches it is.
type arrowStream struct {
	e   *Engine
	r   tuples.Reader
	n   *setNode
	sub idStream
	// after, resume and limit are the call's, for the looked-up type's objects.
	after  string
	resume bool
	limit  int
	m      *merger
}

// arrowUnsure is the depth given in an arrow's merge to the scans of unsure ids.
const arrowUnsure = 1

func (a *arrowStream) next(ctx context.Context) (string, bool, bool, error) {
	if a.m == nil {
		plan := &streamPlan{cache: a.e.streams}
		for {
			t, sure, ok, err := a.sub.next(ctx)
			if err != nil {
				return "", false, false, err
			}
			if !ok {
				break
			}
			depth := 0
			if !sure {
				depth = arrowUnsure
			}
			for _, sr := range a.n.subjectRelations {
				s := tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.n.subjType, ID: t}, Relation: sr}
				plan.addScan(s, a.n.typ, a.n.tupleset, depth, -1, relKey{})
			}
		}
		a.e.setArrows.Add(1)
		m, err := plan.merge(ctx, a.r, nil, a.after, a.resume, a.limit)
		if err != nil {
			return "", false, false, err
		}
		a.m = m
	}
	id, depth, ok, err := a.m.next(ctx)
	return id, depth == 0, ok, err
}
