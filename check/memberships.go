package check

import (
	"context"
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

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
			q.reads.Add(1)
			ok, err := q.r.Contains(ctx, t)
			if err != nil {
				return false, fmt.Errorf("reading %s: %w", t, err)
			}
			if ok {
				return true, nil
			}
		}
		return notFound()
	}
	q.reads.Add(1)
	for t, err := range q.r.Subjects(ctx, obj, rel, a.Type) {
		if err != nil {
			return false, fmt.Errorf("reading %s#%s: %w", obj, rel, err)
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
