package check

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// LookupSubjectsRequest asks for every subject of SubjectType (usersets
// `SubjectType:id#SubjectRelation` when SubjectRelation is set) that has Permission on
// Object.
type LookupSubjectsRequest struct {
	Object          tuples.ObjectRef
	Permission      string
	SubjectType     string
	SubjectRelation string
	// Cursor and Limit page as in LookupResourcesRequest.
	Cursor string
	Limit  int
	// Context holds caveat parameters, as in CheckRequest.
	Context map[string]any
}

// LookupSubjectsResult is one subject found. A wildcard subject (`user:*`) comes with
// the subjects excluded from it (`user:* - {user:bob}`); a subject both named and
// covered by a wildcard is reported on its own too.
type LookupSubjectsResult struct {
	Subject  tuples.SubjectRef
	Excluded []tuples.SubjectRef
	Cursor   string
	// Conditional: the subject has the permission only if caveats hold that depend
	// on the parameters MissingContext (sorted).
	Conditional    bool
	MissingContext []string
}

// LookupSubjects calls yield with every subject of req.SubjectType that has
// req.Permission on req.Object at r's snapshot: the wildcard first (when granted),
// then the others in id order, starting after req.Cursor and stopping after req.Limit
// results. It agrees exactly with Check: a subject passes Check when it is reported,
// or when the wildcard is reported and it is not excluded from it. An error from yield
// stops the lookup and is returned; unknown names are a *NotFoundError.
//
// When the permission's rewrite, all the way down, is made of unions only (computed
// usersets, arrows, stored relations and usersets in them; no intersection, exclusion
// or `.all()` arrow), results stream as they are found and the walk stops once Limit
// results are sent, as in LookupResources. The walk goes down from req.Object and
// visits every userset below it once (groups, roles, parents: held in memory, with
// the stored wildcard); the plain subjects of req.SubjectType are never collected:
// every forward-index scan holding them (`doc:d#viewer@user:…`, `group:g#member@user:…`
// for each group g reached) is read in id order a few ids at a time, and the scans are
// merged, each id once. A cursor is the last id sent: the next page seeks every scan
// past it. Memory per call is therefore bounded by the usersets below the object, plus
// lookupScanIDs ids of scan buffers (at least one per scan): independent of the number
// of subjects found. Where caveats or expirations lie below the permission, each
// subject found is verified with Check as it comes (conditional ones are reported with
// their missing context); a union excludes no one from a wildcard, so a wildcard comes
// without exclusions.
//
// Otherwise (an intersection, an exclusion or an `.all()` arrow below the permission)
// LookupSubjects computes the subject set whole before it sends the first result, so
// memory per call is proportional to the subjects found (and excluded), and Limit and
// Cursor bound what is sent, not the work: those operators combine whole sets at every
// level of the rewrite (a subject found on one side is final only once the other side
// is known), and a granted wildcard comes first with every subject excluded from it,
// which is known only once every subtracted set is. The walk goes down from one object,
// so its size is that object's audience, which schemas keep far smaller than the
// objects a subject can reach.
func (e *Engine) LookupSubjects(ctx context.Context, r tuples.Reader, req LookupSubjectsRequest, yield func(LookupSubjectsResult) error) error {
	c, err := e.schemaFor(ctx, r)
	if err != nil {
		return err
	}
	if err := validateRel(c, "object", req.Object.Type, req.Permission, "permission"); err != nil {
		return err
	}
	if err := validateRel(c, "subject_type", req.SubjectType, req.SubjectRelation, "subject_relation"); err != nil {
		return err
	}
	after, err := decodeCursor(req.Cursor)
	if err != nil {
		return err
	}
	if c.unionsOnly(relKey{req.Object.Type, req.Permission}) {
		return e.streamSubjects(ctx, r, c, req, after, yield)
	}
	q := &subjectsRequest{e: e, r: r, c: c, typ: req.SubjectType, rel: req.SubjectRelation, memo: map[string]idset{}, upper: c.conditional}
	set, _, err := q.subjects(ctx, at{}, req.Object, req.Permission)
	if err != nil {
		return err
	}
	q.memo = nil // the sub-sets are not needed any more
	resume := req.Cursor != ""
	n := 0
	send := func(res LookupSubjectsResult) error {
		id := res.Subject.Object.ID
		if resume && id <= after {
			return nil
		}
		n++
		res.Cursor = encodeCursor(id)
		return yield(res)
	}
	if c.conditional {
		return e.verifySubjects(ctx, r, c, req, set, after, resume, func(res LookupSubjectsResult) (bool, error) {
			if err := send(res); err != nil {
				return false, err
			}
			return req.Limit <= 0 || n < req.Limit, nil
		})
	}
	ids := slices.Sorted(maps.Keys(set.m))
	if set.w {
		res := LookupSubjectsResult{Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: tuples.Wildcard}}}
		for _, id := range ids {
			if !set.m[id] {
				res.Excluded = append(res.Excluded, tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: id}})
			}
		}
		if err := send(res); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if req.Limit > 0 && n >= req.Limit {
			break
		}
		if set.m[id] {
			if err := send(LookupSubjectsResult{Subject: tuples.SubjectRef{
				Object: tuples.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// idset is a set of subject ids of one type, possibly with the wildcard: id x is a
// member when m[x] is true, or when w is set and x is not in m (m[x] false: excluded
// from the wildcard). The wildcard subject itself is a member when w is set.
type idset struct {
	w bool
	m map[string]bool
}

func (s idset) has(id string) bool {
	if v, ok := s.m[id]; ok {
		return v
	}
	return s.w
}

// combine applies a pointwise operation to a and b.
func combine(a, b idset, op func(x, y bool) bool) idset {
	out := idset{w: op(a.w, b.w), m: map[string]bool{}}
	for _, s := range []idset{a, b} {
		for id := range s.m {
			if _, done := out.m[id]; done {
				continue
			}
			if v := op(a.has(id), b.has(id)); v || out.w {
				out.m[id] = v
			}
		}
	}
	return out
}

func orSet(a, b idset) idset { return combine(a, b, func(x, y bool) bool { return x || y }) }

// orAcc is orSet(acc, b) for an accumulator: when owned (acc was made by the caller,
// not shared with the memo or anyone else) and neither set has the wildcard, b is
// added to acc in place instead of copying both, so that a union of many sets (the
// members of many groups) costs the sum of their sizes, not its square.
func orAcc(acc idset, owned bool, b idset) (idset, bool) {
	switch {
	case !b.w && len(b.m) == 0:
		return acc, owned
	case owned && !acc.w && !b.w:
		for id, v := range b.m {
			if v { // without the wildcard, every entry is true
				acc.m[id] = true
			}
		}
		return acc, true
	}
	return orSet(acc, b), true
}
func andSet(a, b idset) idset { return combine(a, b, func(x, y bool) bool { return x && y }) }
func subSet(a, b idset) idset { return combine(a, b, func(x, y bool) bool { return x && !y }) }

func single(id string) idset { return idset{m: map[string]bool{id: true}} }

// subjectsRequest computes subject sets with exactly Check's semantics (frames, cycle
// cuts and the contradictory-cycle rule), for all subjects of one type at once.
type subjectsRequest struct {
	e        *Engine
	r        tuples.Reader
	c        *compiled
	typ, rel string // the subjects looked up
	// memo holds sets computed without any cycle cut, valid on every path.
	memo map[string]idset
	// upper: compute a superset of the candidates (intersections and exclusions as
	// unions), which Check then verifies; used when
	// the schema has conditional relations.
	upper bool
}

// subjects returns the set of obj#rel, and the outcome's cycle information (ok unused).
func (q *subjectsRequest) subjects(ctx context.Context, pos at, obj tuples.ObjectRef, rel string) (idset, outcome, error) {
	var self idset
	if q.rel != "" && obj.Type == q.typ && rel == q.rel {
		self = single(obj.ID) // the userset itself
	}
	r := q.c.rel(obj.Type, rel)
	if r == nil {
		return self, outcome{}, nil
	}
	for f := pos.f; f != nil; f = f.parent {
		if f.obj == obj && f.rel == rel {
			out := outcome{tainted: true, revisits: []revisit{{depth: f.depth, odd: (pos.neg-f.neg)%2 == 1}}}
			if f.assumeSet != nil {
				return orSet(self, *f.assumeSet), out, nil
			}
			return self, out, nil
		}
	}
	key := obj.String() + "#" + rel
	if s, ok := q.memo[key]; ok {
		return s, outcome{}, nil
	}
	depth := 1
	if pos.f != nil {
		depth = pos.f.depth + 1
	}
	if depth > q.e.opts.MaxDepth {
		return idset{}, outcome{}, (&request{e: q.e}).depthError(pos.f, key)
	}
	if err := ctx.Err(); err != nil {
		return idset{}, outcome{}, err
	}
	f := &frame{parent: pos.f, obj: obj, rel: rel, depth: depth, neg: pos.neg}
	s0, out, err := q.rewrite(ctx, at{f: f, neg: pos.neg}, obj, r, r.Rewrite)
	if err != nil {
		return idset{}, outcome{}, err
	}
	hit, odd := closeFrame(&out, depth)
	if hit && odd && (s0.w || len(s0.m) > 0) {
		// As in Check: members that are not members again when the closing revisit is
		// assumed to hold them have no consistent answer and are dropped.
		f2 := &frame{parent: pos.f, obj: obj, rel: rel, depth: depth, neg: pos.neg, assumeSet: &s0}
		s1, again, err := q.rewrite(ctx, at{f: f2, neg: pos.neg}, obj, r, r.Rewrite)
		if err != nil {
			return idset{}, outcome{}, err
		}
		closeFrame(&again, depth)
		out.merge(again)
		if q.upper {
			s0 = orSet(s0, s1) // candidates only: Check decides
		} else {
			s0 = andSet(s0, s1)
		}
	}
	if self.w || len(self.m) > 0 {
		s0 = orSet(s0, self)
	}
	if !out.tainted {
		q.memo[key] = s0
	}
	return s0, out, nil
}

func (q *subjectsRequest) rewrite(ctx context.Context, pos at, obj tuples.ObjectRef, r *schema.Relation, rw *schema.Rewrite) (idset, outcome, error) {
	if rw == nil || rw.Kind == schema.This {
		return q.this(ctx, pos, obj, r)
	}
	switch rw.Kind {
	case schema.ComputedUserset:
		return q.subjects(ctx, pos, obj, rw.Relation)
	case schema.TupleToUserset:
		var (
			acc   idset
			owned bool // acc is this loop's own
			out   outcome
			n     int
			last  tuples.ObjectRef
		)
		for t, err := range q.r.Subjects(ctx, obj, rw.Tupleset, "") {
			if err != nil {
				return idset{}, outcome{}, fmt.Errorf("reading %s#%s: %w", obj, rw.Tupleset, err)
			}
			x := t.Subject.Object
			if t.Subject.IsWildcard() || (n > 0 && x == last) {
				continue
			}
			last = x
			s, o, err := q.subjects(ctx, pos, x, rw.Relation)
			if err != nil {
				return idset{}, outcome{}, err
			}
			out.merge(o)
			switch {
			case n == 0:
				acc = s
			case rw.All && !q.upper:
				acc, owned = andSet(acc, s), true
			default:
				acc, owned = orAcc(acc, owned, s)
			}
			n++
		}
		return acc, out, nil
	case schema.Union, schema.Intersection, schema.Exclusion:
		var acc idset
		var owned bool // acc is this loop's own
		var out outcome
		for i, ch := range rw.Children {
			p := pos
			if rw.Kind == schema.Exclusion && i == 1 {
				p.neg++
			}
			s, o, err := q.rewrite(ctx, p, obj, r, ch)
			if err != nil {
				return idset{}, outcome{}, err
			}
			out.merge(o)
			switch {
			case i == 0:
				acc = s
			case rw.Kind == schema.Union, q.upper && rw.Kind == schema.Intersection:
				acc, owned = orAcc(acc, owned, s)
			case q.upper:
				// Exclusion: every subject of the base stays a candidate, and so does
				// every subject of the subtracted side: a subject named only there may
				// answer apart from a wildcard of the base (denied, or conditional),
				// so Check must see it, and the wildcard's result exclude it.
				acc, owned = orAcc(acc, owned, s)
			case rw.Kind == schema.Intersection:
				acc, owned = andSet(acc, s), true
			default:
				acc, owned = subSet(acc, s), true
			}
		}
		return acc, out, nil
	case schema.Nil:
		return idset{}, outcome{}, nil
	case schema.Self:
		if q.rel == "" && obj.Type == q.typ {
			return single(obj.ID), outcome{}, nil
		}
		return idset{}, outcome{}, nil
	}
	return idset{}, outcome{}, fmt.Errorf("unknown rewrite kind %d in %s#%s", rw.Kind, obj.Type, r.Name)
}

// this reads a stored relation the way Check does: per allowed subject entry.
func (q *subjectsRequest) this(ctx context.Context, pos at, obj tuples.ObjectRef, r *schema.Relation) (idset, outcome, error) {
	acc := idset{m: map[string]bool{}}
	var out outcome
	for _, a := range r.Allowed {
		if a.Wildcard {
			if q.rel != "" || a.Type != q.typ {
				continue
			}
			wild := tuples.Tuple{Object: obj, Relation: r.Name, Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: a.Type, ID: tuples.Wildcard}}}
			ok, err := q.r.Contains(ctx, wild)
			if err != nil {
				return idset{}, outcome{}, fmt.Errorf("reading %s: %w", wild, err)
			}
			if ok {
				acc = orSet(acc, idset{w: true})
			}
			continue
		}
		if a.Relation == "" && (q.rel != "" || a.Type != q.typ) {
			continue
		}
		for t, err := range q.r.Subjects(ctx, obj, r.Name, a.Type) {
			if err != nil {
				return idset{}, outcome{}, fmt.Errorf("reading %s#%s: %w", obj, r.Name, err)
			}
			if t.Subject.Relation != a.Relation || t.Subject.IsWildcard() {
				continue
			}
			if a.Relation == "" {
				acc.m[t.Subject.Object.ID] = true
				continue
			}
			s, o, err := q.subjects(ctx, pos, t.Subject.Object, t.Subject.Relation)
			if err != nil {
				return idset{}, outcome{}, err
			}
			out.merge(o)
			acc, _ = orAcc(acc, true, s) // acc is made here
		}
	}
	return acc, out, nil
}

// verifySubjects checks the candidates of set three-valued and sends, in order, the
// subjects that have the permission or may have it, conditional ones with their
// missing context, until send reports that it has enough. The wildcard (first) needs
// every named candidate checked, for its exclusions; a page after a cursor skips it
// (the wildcard sorts before every id) and checks only the candidates after the cursor.
func (e *Engine) verifySubjects(ctx context.Context, r tuples.Reader, c *compiled, req LookupSubjectsRequest, set idset, after string, resume bool, send func(LookupSubjectsResult) (bool, error)) error {
	check := func(s tuples.SubjectRef) (CheckResult, error) {
		return e.check(ctx, r, c, CheckRequest{Object: req.Object, Permission: req.Permission, Subject: s, Context: req.Context})
	}
	named := func(id string) tuples.SubjectRef {
		return tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
	}
	ids := slices.Sorted(maps.Keys(set.m))
	if resume {
		ids = ids[sort.SearchStrings(ids, after+"\x00"):] // strictly after the cursor
	}
	var checked map[string]CheckResult
	if set.w && req.SubjectRelation == "" && (!resume || tuples.Wildcard > after) {
		w := tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: tuples.Wildcard}}
		res, err := check(w)
		if err != nil {
			return err
		}
		if res.Allowed || res.Conditional {
			checked = make(map[string]CheckResult, len(ids))
			out := LookupSubjectsResult{Subject: w, Conditional: res.Conditional, MissingContext: res.MissingContext}
			for _, id := range ids {
				n, err := check(named(id))
				if err != nil {
					return err
				}
				checked[id] = n
				if !n.Allowed && !n.Conditional {
					out.Excluded = append(out.Excluded, tuples.SubjectRef{Object: tuples.ObjectRef{Type: req.SubjectType, ID: id}})
				}
			}
			if more, err := send(out); err != nil || !more {
				return err
			}
		}
	}
	for _, id := range ids {
		n, ok := checked[id]
		if !ok {
			var err error
			if n, err = check(named(id)); err != nil {
				return err
			}
		}
		if !n.Allowed && !n.Conditional {
			continue
		}
		more, err := send(LookupSubjectsResult{Subject: named(id), Conditional: n.Conditional, MissingContext: n.MissingContext})
		if err != nil || !more {
			return err
		}
	}
	return nil
}
