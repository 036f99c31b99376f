package check

import (
	"slices"
	"sync"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// relKey names a relation or permission of a type: a node of the schema graph.
type relKey struct {
	typ, rel string
}

// compiled is a schema plus what the engine derives from it once per schema revision.
//
// The schema graph has a node per (type, relation) and an edge from a node to every
// node its rewrite may evaluate: computed usersets, the target of each arrow on every
// allowed subject type of the tupleset that has it, and every `T#r` a stored relation
// allows. Every evaluation path among tuples maps onto a path of this graph.
type compiled struct {
	s *schema.Schema
	// revText is the revision that wrote the schema, in decimal: answers under one
	// schema are cached apart from answers under another.
	revText string
	// rev is the revision that wrote the schema.
	rev tuples.Revision
	// cyclic holds the nodes that lie on a cycle of the schema graph. Only their
	// evaluation can revisit a sub-problem still on its path; the value of any other
	// node is independent of the path that reached it, so identical in-flight
	// sub-checks of such nodes can share one evaluation.
	cyclic map[relKey]bool
	// nonMonotone holds the nodes from which an intersection, an exclusion, an
	// `.all()` arrow or a conditional relation (caveats, expiration) is reachable:
	// lookups on them combine sorted streams where they can (setPlanFor) and verify
	// candidates with Check elsewhere.
	nonMonotone map[relKey]bool
	// conditional is set when some stored relation allows caveats or expiration.
	conditional bool
	// parents maps a node to the edges through which a userset of it is included in
	// others (the reverse of the positive part of the schema graph; see lookup.go).
	parents map[relKey][]parentEdge
	// seeds maps a subject kind to the stored relations that may hold it directly.
	seeds map[schema.AllowedSubject][]relKey
	// selfs lists the nodes whose positive rewrite contains `self`, by type.
	selfs map[string][]relKey
	// edges is the schema graph; reach holds, for every node, itself and the nodes
	// reachable from it.
	edges map[relKey][]relKey
	reach map[relKey]map[relKey]bool
	// feeds holds, for every node, itself and the nodes whose usersets it includes
	// through parent edges: the only nodes a lookup walk toward it needs to visit.
	feeds map[relKey]map[relKey]bool
	// ctxParams holds, for every node from which a conditional relation is reachable,
	// the sorted names of the caveat parameters the caveats reachable from it take
	// (empty, not nil, when only expirations are): the only parts of a request's
	// context its answer can depend on (see cacheCtx).
	ctxParams map[relKey][]string
	// setPlans caches, per permission, how LookupResources evaluates it as set algebra
	// (relKey → *setPlan; see setPlanFor).
	setPlans sync.Map
}

// parentKind says how a userset of one node is included in another node.
type parentKind int

const (
	// viaComputed: the parent is a relation of the same object (computed userset).
	viaComputed parentKind = iota
	// viaUserset: the parent is a stored relation that allows `T#r` subjects.
	viaUserset
	// viaArrow: the parent reaches it through an arrow over the tupleset Tupleset.
	viaArrow
)

// parentEdge is one way a userset (T:x, r) is part of another userset.
type parentEdge struct {
	kind   parentKind
	parent relKey // the including node
	// subjectRelation is, for viaUserset, r; for viaArrow, the relations with which
	// type T is allowed on the tupleset ("" for plain objects).
	subjectRelations []string
	tupleset         string // viaArrow only
}

// rel returns the relation or permission name of typ, or nil.
func (c *compiled) rel(typ, name string) *schema.Relation {
	d := c.s.Definitions[typ]
	if d == nil {
		return nil
	}
	return d.Relations[name]
}

// analyze derives the engine's tables from s.
func analyze(s *schema.Schema) *compiled {
	c := &compiled{
		s:           s,
		cyclic:      make(map[relKey]bool),
		nonMonotone: make(map[relKey]bool),
		parents:     make(map[relKey][]parentEdge),
		seeds:       make(map[schema.AllowedSubject][]relKey),
		selfs:       make(map[string][]relKey),
	}
	edges := make(map[relKey][]relKey)
	local := make(map[relKey]bool) // nodes whose own rewrite is non-monotone
	for _, typ := range s.Order {
		d := s.Definitions[typ]
		for _, name := range d.Order {
			r := d.Relations[name]
			k := relKey{typ, name}
			if r.Rewrite == nil || r.Rewrite.Kind == schema.This {
				if r.Conditional {
					local[k] = true
					c.conditional = true
				}
				for _, a := range r.Allowed {
					if a.Relation != "" {
						if slices.Contains(edges[k], relKey{a.Type, a.Relation}) {
							continue // the same userset with another caveat
						}
						edges[k] = append(edges[k], relKey{a.Type, a.Relation})
						c.parents[relKey{a.Type, a.Relation}] = append(c.parents[relKey{a.Type, a.Relation}],
							parentEdge{kind: viaUserset, parent: k, subjectRelations: []string{a.Relation}})
					} else if !slices.Contains(c.seeds[a.Base()], k) {
						c.seeds[a.Base()] = append(c.seeds[a.Base()], k)
					}
				}
				continue
			}
			c.walk(k, r.Rewrite, true, edges, local)
		}
	}
	c.edges = edges
	c.reach = make(map[relKey]map[relKey]bool)
	for _, typ := range s.Order {
		for _, name := range s.Definitions[typ].Order {
			k := relKey{typ, name}
			c.reach[k] = c.reachableUncached(k)
		}
	}
	children := make(map[relKey][]relKey)
	for k, pes := range c.parents {
		for _, pe := range pes {
			children[pe.parent] = append(children[pe.parent], k)
		}
	}
	c.feeds = make(map[relKey]map[relKey]bool)
	for k := range c.reach {
		seen := map[relKey]bool{}
		stack := []relKey{k}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !seen[n] {
				seen[n] = true
				stack = append(stack, children[n]...)
			}
		}
		c.feeds[k] = seen
	}
	c.ctxParams = make(map[relKey][]string)
	for k, reach := range c.reach {
		cond := false
		params := []string{}
		for n := range reach {
			r := c.rel(n.typ, n.rel)
			if r == nil || !r.Conditional {
				continue
			}
			cond = true
			for _, a := range r.Allowed {
				if cv := s.Caveats[a.Caveat]; cv != nil {
					for _, p := range cv.Params {
						params = append(params, p.Name)
					}
				}
			}
		}
		if cond {
			slices.Sort(params)
			c.ctxParams[k] = slices.Compact(params)
		}
	}
	// Cycles: a node is cyclic when it can reach itself.
	for k := range edges {
		if reaches(edges, k, k) {
			c.cyclic[k] = true
		}
	}
	// Non-monotone: a node that reaches a node with a non-monotone rewrite.
	for k := range local {
		c.nonMonotone[k] = true
	}
	for k := range edges {
		for l := range local {
			if reaches(edges, k, l) {
				c.nonMonotone[k] = true
				break
			}
		}
	}
	return c
}

// walk records the edges of node k's rewrite rw. positive is false below the
// subtracted side of an exclusion or a non-first intersection branch: such parts add
// schema-graph edges but no parent edges, because lookups derive candidates only from
// the positive part and verify them with Check.
func (c *compiled) walk(k relKey, rw *schema.Rewrite, positive bool, edges map[relKey][]relKey, local map[relKey]bool) {
	switch rw.Kind {
	case schema.ComputedUserset:
		edges[k] = append(edges[k], relKey{k.typ, rw.Relation})
		if positive {
			from := relKey{k.typ, rw.Relation}
			c.parents[from] = append(c.parents[from], parentEdge{kind: viaComputed, parent: k})
		}
	case schema.TupleToUserset:
		if rw.All {
			local[k] = true
		}
		edges[k] = append(edges[k], relKey{k.typ, rw.Tupleset})
		ts := c.rel(k.typ, rw.Tupleset)
		if ts == nil {
			return
		}
		byType := make(map[string][]string)
		var order []string
		for _, a := range ts.Allowed {
			if a.Wildcard {
				continue
			}
			if _, ok := byType[a.Type]; !ok {
				order = append(order, a.Type)
			}
			byType[a.Type] = append(byType[a.Type], a.Relation)
		}
		for _, t := range order {
			if c.rel(t, rw.Relation) == nil {
				continue
			}
			from := relKey{t, rw.Relation}
			edges[k] = append(edges[k], from)
			if positive {
				c.parents[from] = append(c.parents[from], parentEdge{
					kind: viaArrow, parent: k, tupleset: rw.Tupleset, subjectRelations: byType[t]})
			}
		}
	case schema.Union:
		for _, ch := range rw.Children {
			c.walk(k, ch, positive, edges, local)
		}
	case schema.Intersection:
		local[k] = true
		for i, ch := range rw.Children {
			c.walk(k, ch, positive && i == 0, edges, local)
		}
	case schema.Exclusion:
		local[k] = true
		c.walk(k, rw.Children[0], positive, edges, local)
		c.walk(k, rw.Children[1], false, edges, local)
	case schema.Self:
		if positive {
			c.selfs[k.typ] = append(c.selfs[k.typ], k)
		}
	case schema.This, schema.Nil:
	}
}

// feeding returns to and the nodes whose usersets it includes through parent edges.
func (c *compiled) feeding(to relKey) map[relKey]bool {
	if f, ok := c.feeds[to]; ok {
		return f
	}
	return map[relKey]bool{to: true}
}

// reachable returns from and every node reachable from it.
func (c *compiled) reachable(from relKey) map[relKey]bool {
	if r, ok := c.reach[from]; ok {
		return r
	}
	return c.reachableUncached(from)
}

func (c *compiled) reachableUncached(from relKey) map[relKey]bool {
	seen := map[relKey]bool{}
	stack := []relKey{from}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, c.edges[n]...)
	}
	return seen
}

// reaches reports whether to is reachable from from by one or more edges.
func reaches(edges map[relKey][]relKey, from, to relKey) bool {
	seen := map[relKey]bool{}
	stack := append([]relKey(nil), edges[from]...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == to {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, edges[n]...)
	}
	return false
}

// subjectKind is the AllowedSubject entry a subject would match directly.
func subjectKind(s tuples.SubjectRef) schema.AllowedSubject {
	return schema.AllowedSubject{Type: s.Object.Type, Relation: s.Relation, Wildcard: s.IsWildcard()}
}

// monotoneExpr reports whether rw, part of a permission of typ, involves no
// intersection, exclusion or `.all()`, directly or through the nodes it refers to.
func (c *compiled) monotoneExpr(typ string, rw *schema.Rewrite) bool {
	switch rw.Kind {
	case schema.Union:
		for _, ch := range rw.Children {
			if !c.monotoneExpr(typ, ch) {
				return false
			}
		}
		return true
	case schema.ComputedUserset:
		return !c.nonMonotone[relKey{typ, rw.Relation}]
	case schema.TupleToUserset:
		if rw.All || c.nonMonotone[relKey{typ, rw.Tupleset}] {
			return false
		}
		ts := c.rel(typ, rw.Tupleset)
		if ts == nil {
			return true
		}
		for _, a := range ts.Allowed {
			if c.nonMonotone[relKey{a.Type, rw.Relation}] {
				return false
			}
		}
		return true
	case schema.Nil, schema.Self, schema.This:
		return true
	}
	return false
}
