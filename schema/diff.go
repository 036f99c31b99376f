package schema

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/relata/relata/tuples"
)

// Removal is one change between two schemas that could orphan stored tuples: a stored
// relation that is gone (or became a permission), a subject type a relation no longer
// allows, one form of a subject type (`user with c`, `user with expiration`) a relation
// no longer allows while it keeps the type, or a caveat whose parameters changed while
// relations use it.
type Removal struct {
	Type     string
	Relation string
	// Subject is the removed allowed subject type; nil when the whole relation is
	// removed. Unless Form is set it is the bare type (Base), and the removal covers
	// every tuple of that subject kind whatever its caveat or expiration.
	Subject *AllowedSubject
	// Form: Subject is one exact form (its caveat, or none, and its expiration) whose
	// tuples the change orphans; other forms of the same type stay allowed.
	Form bool
	// CaveatChanged names a caveat whose parameters changed; the removal covers the
	// tuples of form Subject (which carries that caveat) on Type#Relation.
	CaveatChanged string
}

// String describes the removal: `relation flow#denied removed`, `subject type user:*
// removed from flow#granted`, `subject type user with on_net removed from doc#viewer`,
// `caveat on_net changed its parameters, used by doc#viewer (user with on_net)`.
func (r Removal) String() string {
	switch {
	case r.CaveatChanged != "":
		return fmt.Sprintf("caveat %s changed its parameters, used by %s#%s (%s)", r.CaveatChanged, r.Type, r.Relation, r.Subject)
	case r.Subject == nil:
		return fmt.Sprintf("relation %s#%s removed", r.Type, r.Relation)
	}
	return fmt.Sprintf("subject type %s removed from %s#%s", r.Subject, r.Type, r.Relation)
}

// Filter selects exactly the stored tuples the removal would orphan: for a removed
// plain type `T` it leaves out the wildcard `T:*`, which its own allowed subject type
// covers; for a form it selects the tuples of that caveat and expiration only.
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
		if r.Form || r.CaveatChanged != "" {
			f.FormOnly, f.Caveat, f.Expiring = true, s.Caveat, s.Expiration
		}
	}
	return f
}

// Matches reports exactly whether t would be orphaned by the removal.
func (r Removal) Matches(t tuples.Tuple) bool { return r.Filter().Matches(t) }

// Diff lists what new removes from old that stored tuples may use: every stored
// relation of old that new lacks or turned into a permission (definitions removed
// whole included), every allowed subject type a kept relation no longer lists, every
// form (`with CAVEAT`, `with expiration`) of a kept type it no longer lists, and, for
// a caveat whose parameters changed, each form of a kept relation that uses it. The
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
		for _, name := range od.Order {
			out = append(out, relationRemovals(old, new, typ, name)...)
		}
	}
	return out
}

// relationRemovals is Diff for one relation of old.
func relationRemovals(old, new *Schema, typ, name string) []Removal {
	or := old.Definitions[typ].Relations[name]
	if or == nil || or.Permission {
		return nil
	}
	nr := lookupRelation(new, typ, name)
	if nr == nil || nr.Permission {
		return []Removal{{Type: typ, Relation: name}}
	}
	var out []Removal
	seen := map[AllowedSubject]bool{}
	for _, a := range or.Allowed {
		base := a.Base()
		if !seen[base] {
			seen[base] = true
			if !containsBase(nr.Allowed, base) {
				out = append(out, Removal{Type: typ, Relation: name, Subject: &base})
				continue
			}
		}
		if !containsBase(nr.Allowed, base) {
			continue // the whole type is removed, reported above
		}
		a := a
		switch {
		case !slices.Contains(nr.Allowed, a):
			out = append(out, Removal{Type: typ, Relation: name, Subject: &a, Form: true})
		case a.Caveat != "" && caveatParamsChanged(old, new, a.Caveat):
			out = append(out, Removal{Type: typ, Relation: name, Subject: &a, CaveatChanged: a.Caveat})
		}
	}
	return out
}

func lookupRelation(s *Schema, typ, name string) *Relation {
	if s == nil {
		return nil
	}
	if d := s.Definitions[typ]; d != nil {
		return d.Relations[name]
	}
	return nil
}

func containsBase(list []AllowedSubject, a AllowedSubject) bool {
	for _, x := range list {
		if x.Base() == a.Base() {
			return true
		}
	}
	return false
}

// caveatParamsChanged reports whether caveat name exists in both schemas with
// different parameters (names or types, in order).
func caveatParamsChanged(old, new *Schema, name string) bool {
	oc, nc := old.Caveats[name], (*Caveat)(nil)
	if new != nil {
		nc = new.Caveats[name]
	}
	return oc != nil && nc != nil && oc.paramList() != nc.paramList()
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

// ChangeOp says whether a Change adds, removes or changes something.
type ChangeOp int

// The change operations.
const (
	Added ChangeOp = iota + 1
	Removed
	Changed
)

// String returns "added", "removed" or "changed".
func (o ChangeOp) String() string {
	switch o {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Changed:
		return "changed"
	}
	return fmt.Sprintf("ChangeOp(%d)", int(o))
}

// ChangeKind is what a Change is about.
type ChangeKind int

// The kinds of schema element a Change names.
const (
	KindDefinition ChangeKind = iota + 1
	KindRelation
	KindPermission
	KindCaveat
)

// String returns "definition", "relation", "permission" or "caveat".
func (k ChangeKind) String() string {
	switch k {
	case KindDefinition:
		return "definition"
	case KindRelation:
		return "relation"
	case KindPermission:
		return "permission"
	case KindCaveat:
		return "caveat"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one difference between two schemas, for people: a definition, relation,
// permission or caveat added, removed or changed.
type Change struct {
	Op   ChangeOp
	Kind ChangeKind
	// Definition is the definition a relation or permission belongs to; "" for
	// definitions and caveats.
	Definition string
	// Name is the definition's, relation's, permission's or caveat's name.
	Name string
	// Detail says what changed (`allowed subject types: user | group#member → user`),
	// or what was added or removed (`relation viewer: user`).
	Detail string
	// Removals are the removals of Diff this change makes (stored tuples it could
	// orphan); a removed definition holds those of all its relations.
	Removals []Removal
}

// String prints the change on one line: `removed relation doc#viewer: user`.
func (c Change) String() string {
	name := c.Name
	if c.Definition != "" {
		name = c.Definition + "#" + c.Name
	}
	s := c.Op.String() + " " + c.Kind.String() + " " + name
	if c.Detail != "" {
		s += " (" + c.Detail + ")"
	}
	return s
}

// Compare lists every difference between old and new: definitions, then within each
// definition its relations and permissions, then caveats; removed and changed ones
// in old's order, added ones in new's. A nil old (no schema yet) adds everything.
// Removals (what Diff returns) are attached to the changes that make them.
func Compare(old, new *Schema) []Change {
	if old == nil {
		old = &Schema{}
	}
	var out []Change
	for _, typ := range old.Order {
		od := old.Definitions[typ]
		nd := new.Definitions[typ]
		if nd == nil {
			c := Change{Op: Removed, Kind: KindDefinition, Name: typ}
			var members []Change
			for _, name := range od.Order {
				r := od.Relations[name]
				m := Change{Op: Removed, Kind: changeKind(r), Definition: typ, Name: name, Detail: memberText(r)}
				m.Removals = relationRemovals(old, new, typ, name)
				c.Removals = append(c.Removals, m.Removals...)
				members = append(members, m)
			}
			out = append(out, c)
			out = append(out, members...)
			continue
		}
		out = append(out, compareDefinition(old, new, od, nd)...)
	}
	for _, typ := range new.Order {
		if old.Definitions[typ] != nil {
			continue
		}
		nd := new.Definitions[typ]
		out = append(out, Change{Op: Added, Kind: KindDefinition, Name: typ})
		for _, name := range nd.Order {
			r := nd.Relations[name]
			out = append(out, Change{Op: Added, Kind: changeKind(r), Definition: typ, Name: name, Detail: memberText(r)})
		}
	}
	out = append(out, compareCaveats(old, new)...)
	return out
}

// compareDefinition lists the changes to the members of a definition in both
// schemas, after a "changed definition" line that names them.
func compareDefinition(old, new *Schema, od, nd *Definition) []Change {
	var members []Change
	for _, name := range od.Order {
		or, nr := od.Relations[name], nd.Relations[name]
		switch {
		case nr == nil || nr.Permission != or.Permission:
			m := Change{Op: Removed, Kind: changeKind(or), Definition: od.Name, Name: name, Detail: memberText(or)}
			m.Removals = relationRemovals(old, new, od.Name, name)
			members = append(members, m)
		case memberText(or) != memberText(nr):
			m := Change{Op: Changed, Kind: changeKind(or), Definition: od.Name, Name: name, Detail: memberBody(or) + " → " + memberBody(nr)}
			m.Removals = relationRemovals(old, new, od.Name, name)
			members = append(members, m)
		default:
			if rs := relationRemovals(old, new, od.Name, name); len(rs) > 0 {
				// Same text, but a caveat it uses changed its parameters.
				members = append(members, Change{Op: Changed, Kind: KindRelation, Definition: od.Name, Name: name,
					Detail: "uses a caveat whose parameters changed", Removals: rs})
			}
		}
	}
	for _, name := range nd.Order {
		nr, or := nd.Relations[name], od.Relations[name]
		if or == nil || or.Permission != nr.Permission {
			members = append(members, Change{Op: Added, Kind: changeKind(nr), Definition: od.Name, Name: name, Detail: memberText(nr)})
		}
	}
	if len(members) == 0 {
		return nil
	}
	var names []string
	for _, m := range members {
		names = append(names, m.Op.String()+" "+m.Kind.String()+" "+m.Name)
	}
	return append([]Change{{Op: Changed, Kind: KindDefinition, Name: od.Name, Detail: strings.Join(names, ", ")}}, members...)
}

// compareCaveats lists caveats removed, changed (parameters or expression) and added,
// by name.
func compareCaveats(old, new *Schema) []Change {
	var names []string
	for n := range old.Caveats {
		names = append(names, n)
	}
	for n := range new.Caveats {
		if old.Caveats[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Change
	for _, n := range names {
		oc, nc := old.Caveats[n], new.Caveats[n]
		switch {
		case nc == nil:
			out = append(out, Change{Op: Removed, Kind: KindCaveat, Name: n, Detail: caveatText(oc), Removals: caveatRemovals(old, new, n)})
		case oc == nil:
			out = append(out, Change{Op: Added, Kind: KindCaveat, Name: n, Detail: caveatText(nc)})
		case oc.paramList() != nc.paramList():
			out = append(out, Change{Op: Changed, Kind: KindCaveat, Name: n, Detail: "parameters (" + oc.paramList() + ") → (" + nc.paramList() + ")",
				Removals: caveatRemovals(old, new, n)})
		case strings.TrimSpace(oc.Expr) != strings.TrimSpace(nc.Expr):
			out = append(out, Change{Op: Changed, Kind: KindCaveat, Name: n, Detail: "expression " + strings.TrimSpace(oc.Expr) + " → " + strings.TrimSpace(nc.Expr)})
		}
	}
	return out
}

// caveatRemovals returns the removals of Diff whose tuples carry caveat name.
func caveatRemovals(old, new *Schema, name string) []Removal {
	var out []Removal
	for _, r := range Diff(old, new) {
		if r.Subject != nil && r.Subject.Caveat == name && (r.Form || r.CaveatChanged != "") {
			out = append(out, r)
		}
		if r.Subject == nil || !r.Form && r.CaveatChanged == "" {
			// A relation or a whole subject type removed: it covers the caveat's
			// tuples when the old relation allowed the caveat there.
			if usesCaveat(old, r, name) {
				out = append(out, r)
			}
		}
	}
	return out
}

// usesCaveat reports whether the old relation of r allows a form with caveat name
// within what r removes.
func usesCaveat(old *Schema, r Removal, name string) bool {
	rel := lookupRelation(old, r.Type, r.Relation)
	if rel == nil {
		return false
	}
	for _, a := range rel.Allowed {
		if a.Caveat == name && (r.Subject == nil || a.Base() == *r.Subject) {
			return true
		}
	}
	return false
}

func changeKind(r *Relation) ChangeKind {
	if r.Permission {
		return KindPermission
	}
	return KindRelation
}

// memberBody is a relation's allowed types or a permission's expression.
func memberBody(r *Relation) string {
	if r.Permission {
		var b strings.Builder
		writeRewrite(&b, r.Rewrite)
		return "= " + b.String()
	}
	names := make([]string, len(r.Allowed))
	for i, a := range r.Allowed {
		names[i] = a.String()
	}
	return strings.Join(names, " | ")
}

// memberText is a relation or permission as the schema language writes it.
func memberText(r *Relation) string {
	if r.Permission {
		return "permission " + r.Name + " " + memberBody(r)
	}
	return "relation " + r.Name + ": " + memberBody(r)
}

func caveatText(c *Caveat) string {
	return "caveat " + c.Name + "(" + c.paramList() + ") { " + strings.TrimSpace(c.Expr) + " }"
}
