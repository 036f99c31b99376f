package check

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

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
}

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
// objects of the requested type, never enumerating all objects of a type. Where the
// permission's rewrite involves an intersection, an exclusion or an `.all()` arrow,
// that walk only yields candidates (those reached through the first branch of an
// intersection, the base of an exclusion, any subject of an `.all()` arrow) and each
// candidate is then verified with Check: those operators cannot be inverted
// index-first without reading the other branches object by object anyway.
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
	ids, err := e.lookupResources(ctx, r, c, req)
	if err != nil {
		return err
	}
	n := 0
	for _, id := range ids {
		if req.Cursor != "" && id <= after {
			continue
		}
		if req.Limit > 0 && n >= req.Limit {
			break
		}
		res := LookupResourcesResult{Object: tuples.ObjectRef{Type: req.ResourceType, ID: id}, Cursor: encodeCursor(id)}
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

// encodeCursor and decodeCursor make the opaque cursor for "after id".
func encodeCursor(id string) string {
	return "1." + base64.RawURLEncoding.EncodeToString([]byte(id))
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

// lookupResources returns the sorted ids of the objects found. The upward walk is
// bounded like Check: a userset more than MaxDepth steps above the subject is not
// followed, and as the answer would then be incomplete, the lookup fails with a
// *MaxDepthError naming the path instead of answering silently short.
func (e *Engine) lookupResources(ctx context.Context, r tuples.Reader, c *compiled, req LookupResourcesRequest) ([]string, error) {
	ids, cut, err := e.walkUp(ctx, r, c, req, nil)
	if err != nil {
		return nil, err
	}
	if cut != nil {
		return nil, cut
	}
	return ids, nil
}

// walkUp is lookupResources without the depth verdict: it returns the ids found within
// the depth limit and, when the limit cut the walk short, the *MaxDepthError to report
// unless those ids settle the question. When deps is not nil, it records there the
// scopes of the walk's reads.
func (e *Engine) walkUp(ctx context.Context, r tuples.Reader, c *compiled, req LookupResourcesRequest, deps *collector) ([]string, *MaxDepthError, error) {
	target := relKey{req.ResourceType, req.Permission}
	relevant := c.reachable(target)
	subj := req.Subject

	// fact is one userset found to hold the subject; parent indexes the fact it was
	// reached from (-1 for a seed), so that a depth error can name the path.
	type fact struct {
		k      relKey
		id     string
		depth  int
		parent int
	}
	found := make(map[relKey]map[string]bool)
	var facts []fact // facts[next:] is the queue
	from := -1       // the fact being expanded
	var cut *MaxDepthError
	mark := func(k relKey, id string) {
		if !relevant[k] || id == tuples.Wildcard {
			return
		}
		ids := found[k]
		if ids[id] {
			return
		}
		depth := 1
		if from >= 0 {
			depth = facts[from].depth + 1
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
		facts = append(facts, fact{k: k, id: id, depth: depth, parent: from})
	}
	tracker, _ := r.(tuples.ScopeTracker)
	objects := func(s tuples.SubjectRef, k relKey, rel string, to relKey) error {
		switch {
		case deps == nil:
		case tracker == nil:
			deps.markOver()
		default:
			deps.add(tracker.ReverseScope(s, k.typ, rel))
		}
		for t, err := range r.Objects(ctx, s, k.typ, rel) {
			if err != nil {
				return fmt.Errorf("check: reading objects of %s: %w", s, err)
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
					return nil, nil, err
				}
			}
		}
	default:
		for _, k := range c.seeds[subjectKind(subj)] {
			if relevant[k] {
				if err := objects(subj, k, k.rel, k); err != nil {
					return nil, nil, err
				}
			}
		}
		wild := tuples.SubjectRef{Object: tuples.ObjectRef{Type: subj.Object.Type, ID: tuples.Wildcard}}
		for _, k := range c.seeds[subjectKind(wild)] {
			if relevant[k] {
				if err := objects(wild, k, k.rel, k); err != nil {
					return nil, nil, err
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
			return nil, nil, err
		}
		f := facts[next]
		from = next
		for _, pe := range c.parents[f.k] {
			if !relevant[pe.parent] {
				continue
			}
			switch pe.kind {
			case viaComputed:
				mark(pe.parent, f.id)
			case viaUserset:
				s := tuples.SubjectRef{Object: tuples.ObjectRef{Type: f.k.typ, ID: f.id}, Relation: f.k.rel}
				if err := objects(s, pe.parent, pe.parent.rel, pe.parent); err != nil {
					return nil, nil, err
				}
			case viaArrow:
				for _, sr := range pe.subjectRelations {
					s := tuples.SubjectRef{Object: tuples.ObjectRef{Type: f.k.typ, ID: f.id}, Relation: sr}
					if err := objects(s, pe.parent, pe.tupleset, pe.parent); err != nil {
						return nil, nil, err
					}
				}
			}
		}
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
	q := e.newRequest(r, c, false)
	q.setContext(req.Context)
	q.memo.m = make(map[string]memoEntry)
	perm := c.rel(req.ResourceType, req.Permission)
	rw := perm.Rewrite
	// `base - subtracted` with a monotone base, off any cycle: the walk found exactly
	// the objects in base, so only the subtracted side is left to evaluate.
	onlySubtracted := rw != nil && rw.Kind == schema.Exclusion && !c.cyclic[target] &&
		c.monotoneExpr(req.ResourceType, rw.Children[0])
	keep := make([]bool, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.Concurrency)
	var mu sync.Mutex
	for i, id := range ids {
		g.Go(func() error {
			obj := tuples.ObjectRef{Type: req.ResourceType, ID: id}
			var ok bool
			switch {
			case subj.IsUserset() && subj.Object == obj && subj.Relation == req.Permission:
				ok = true // the subject is this userset
			case onlySubtracted:
				f := &frame{obj: obj, rel: req.Permission, depth: 1}
				out, err := q.rewrite(gctx, at{f: f, neg: 1}, obj, req.Permission, perm, rw.Children[1], subj)
				if err != nil {
					return err
				}
				ok = !out.ok || out.cond
			default:
				out, err := q.checkRel(gctx, at{}, obj, req.Permission, subj)
				if err != nil {
					return err
				}
				ok = out.ok || out.cond // conditional objects are kept: see LookupResources
			}
			mu.Lock()
			keep[i] = ok
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	out := ids[:0]
	for i, id := range ids {
		if keep[i] {
			out = append(out, id)
		}
	}
	return out, cut, nil
}
