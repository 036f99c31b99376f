package schema

import (
	"fmt"

	"github.com/relata/relata/tuples"
)

// Removal is one change between two schemas that could orphan stored tuples: a stored
// relation that is gone (or became a permission), or a subject type a relation no
// longer allows.
type Removal struct {
	Type     string
	Relation string
	// Subject is the removed allowed subject type; nil when the whole relation is
	// removed.
	Subject *AllowedSubject
}

// String describes the removal: `relation flow#denied removed`, `subject type user:*
// removed from flow#granted`.
func (r Removal) String() string {
	if r.Subject == nil {
		return fmt.Sprintf("relation %s#%s removed", r.Type, r.Relation)
	}
	return fmt.Sprintf("subject type %s removed from %s#%s", r.Subject, r.Type, r.Relation)
}

// Filter selects exactly the stored tuples the removal would orphan: for a removed
// plain type `T` it leaves out the wildcard `T:*`, which its own allowed subject type
// covers.
func (r Removal) Filter() tuples.Filter {
	f := tuples.Filter{ObjectType: r.Type, Relation: r.Relation}
	if s := r.Subject; s != nil {
		f.SubjectType = s.Type
		switch {
		case s.Wildcard:
			f.SubjectID = tuples.Wildcard
			f.SubjectRelation = tuples.Ellipsis
		case s.Relation != "":
			f.SubjectRelation = s.Relation
		default:
			f.SubjectRelation = tuples.Ellipsis
			f.NoWildcard = true
		}
	}
	return f
}

// Matches reports exactly whether t would be orphaned by the removal.
func (r Removal) Matches(t tuples.Tuple) bool {
	if t.Object.Type != r.Type || t.Relation != r.Relation {
		return false
	}
	if r.Subject == nil {
		return true
	}
	a := r.Subject
	if t.Subject.Object.Type != a.Type {
		return false
	}
	switch {
	case a.Wildcard:
		return t.Subject.IsWildcard() && t.Subject.Relation == ""
	case a.Relation != "":
		return t.Subject.Relation == a.Relation
	}
	return t.Subject.Relation == "" && !t.Subject.IsWildcard()
}

// Diff lists what new removes from old that stored tuples may use: every stored
// relation of old that new lacks or turned into a permission (definitions removed
// whole included), and every allowed subject type a kept relation no longer lists. The
// order follows old's source order. A nil old removes nothing.
func Diff(old, new *Schema) []Removal {
	if old == nil {
		return nil
	}
	var out []Removal
	for _, typ := range old.Order {
		od := old.Definitions[typ]
		if od == nil {
			continue
		}
		var nd *Definition
		if new != nil {
			nd = new.Definitions[typ]
		}
		for _, name := range od.Order {
			or := od.Relations[name]
			if or == nil || or.Permission {
				continue
			}
			var nr *Relation
			if nd != nil {
				nr = nd.Relations[name]
			}
			if nr == nil || nr.Permission {
				out = append(out, Removal{Type: typ, Relation: name})
				continue
			}
			seen := map[AllowedSubject]bool{}
			for _, a := range or.Allowed {
				if a = a.Base(); seen[a] {
					continue
				}
				seen[a] = true
				if !containsAllowed(nr.Allowed, a) {
					a := a
					out = append(out, Removal{Type: typ, Relation: name, Subject: &a})
				}
			}
		}
	}
	return out
}

func containsAllowed(list []AllowedSubject, a AllowedSubject) bool {
	for _, x := range list {
		if x.Base() == a.Base() {
			return true
		}
	}
	return false
}

// Preconditions turns removals into MustNotMatch preconditions for
// tuples.Store.WriteSchema, so that the write fails (naming a tuple) instead of
// orphaning one.
func Preconditions(removals []Removal) []tuples.Precondition {
	out := make([]tuples.Precondition, len(removals))
	for i, r := range removals {
		out[i] = tuples.Precondition{Op: tuples.MustNotMatch, Filter: r.Filter()}
	}
	return out
}
