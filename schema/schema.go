package schema

import (
	"fmt"

	"github.com/relata/relata/tuples"
)

// Schema is a compiled, type-checked schema. It is immutable once compiled and safe
// for concurrent use.
type Schema struct {
	// Definitions by type name.
	Definitions map[string]*Definition
	// Order lists the definition names in source order.
	Order []string
	// UseSelf and UseExpiration record the `use self` / `use expiration` directives.
	UseSelf       bool
	UseExpiration bool
	// Caveats by name (§10), compiled once per schema.
	Caveats map[string]*Caveat

	// file is the syntax tree the schema was compiled from (nil when built by hand);
	// Text formats it, keeping comments.
	file *File
}

// Definition is one object type with its relations and permissions.
type Definition struct {
	Name string
	// Relations holds both stored relations and permissions, by name.
	Relations map[string]*Relation
	// Order lists relation and permission names in source order.
	Order []string
	// Pos is where the definition starts in the source.
	Pos Position
}

// Relation is a stored relation (Allowed set, Rewrite of kind This) or a permission
// (Permission true, Rewrite is its expression).
type Relation struct {
	Name       string
	Permission bool
	// Allowed lists the subject types a stored relation accepts; nil for permissions.
	Allowed []AllowedSubject
	// Rewrite is what the engine walks: {Kind: This} for a stored relation.
	Rewrite *Rewrite
	// Pos is where the relation or permission starts in the source.
	Pos Position
	// Conditional is set on a stored relation that allows a caveat or an expiration:
	// its tuples may hold only under conditions or for a while.
	Conditional bool
}

// AllowedSubject is one entry of a relation's allowed subject types: `user`,
// `role#member` (Relation set) or `user:*` (Wildcard), optionally `with CAVEAT`
// (Caveat set), `with expiration` or both.
type AllowedSubject struct {
	Type     string
	Relation string
	Wildcard bool
	// Caveat names the caveat a tuple of this form must carry; "" for none.
	Caveat string
	// Expiration: tuples of this form may carry an expiration.
	Expiration bool
}

// Base returns a without its caveat and expiration: the subject kind alone.
func (a AllowedSubject) Base() AllowedSubject {
	return AllowedSubject{Type: a.Type, Relation: a.Relation, Wildcard: a.Wildcard}
}

// RewriteKind is the kind of a userset rewrite node.
type RewriteKind int

const (
	// This is the stored tuples of the relation itself (Zanzibar `_this`).
	This RewriteKind = iota
	// ComputedUserset is another relation or permission of the same object: Relation.
	ComputedUserset
	// TupleToUserset is the arrow Tupleset->Relation (`.any` unless All is set).
	TupleToUserset
	// Union is any of Children.
	Union
	// Intersection is all of Children.
	Intersection
	// Exclusion is Children[0] minus Children[1].
	Exclusion
	// Nil is the empty set.
	Nil
	// Self is the object itself as a subject (`use self`).
	Self
)

// Rewrite is one node of a compiled userset rewrite tree.
type Rewrite struct {
	Kind RewriteKind
	// Relation: for ComputedUserset the relation or permission computed; for
	// TupleToUserset the relation or permission computed on each tupleset subject.
	Relation string
	// Tupleset: for TupleToUserset, the stored relation on this object whose subjects
	// the arrow follows.
	Tupleset string
	// All: for TupleToUserset, `.all()` semantics (at least one, and every, subject).
	All bool
	// Children: operands of Union and Intersection (two or more), and of Exclusion
	// (exactly two: base, subtracted).
	Children []*Rewrite
	// Pos is where the node starts in the source.
	Pos Position
}

// Position is a place in schema source; Line and Column start at 1.
type Position struct {
	Line   int
	Column int
}

// String returns the allowed subject in schema syntax: `user`, `role#member`, `user:*`,
// `user with NAME and expiration`.
func (a AllowedSubject) String() string {
	s := a.Type
	switch {
	case a.Wildcard:
		s += ":*"
	case a.Relation != "":
		s += "#" + a.Relation
	}
	switch {
	case a.Caveat != "" && a.Expiration:
		s += " with " + a.Caveat + " and expiration"
	case a.Caveat != "":
		s += " with " + a.Caveat
	case a.Expiration:
		s += " with expiration"
	}
	return s
}

// String returns the kind's name: this, computed_userset, tuple_to_userset, union,
// intersection, exclusion, nil, self.
func (k RewriteKind) String() string {
	switch k {
	case This:
		return "this"
	case ComputedUserset:
		return "computed_userset"
	case TupleToUserset:
		return "tuple_to_userset"
	case Union:
		return "union"
	case Intersection:
		return "intersection"
	case Exclusion:
		return "exclusion"
	case Nil:
		return "nil"
	case Self:
		return "self"
	}
	return fmt.Sprintf("RewriteKind(%d)", int(k))
}

// Definition returns the definition of typ, or an *UnknownTypeError.
func (s *Schema) Definition(typ string) (*Definition, error) {
	d, ok := s.Definitions[typ]
	if !ok {
		return nil, &UnknownTypeError{Type: typ}
	}
	return d, nil
}

// Relation returns the relation or permission name of typ. It fails with an
// *UnknownTypeError (errors.Is ErrUnknownType) when typ is not defined and an
// *UnknownRelationError (errors.Is ErrUnknownRelation) when typ has no such member.
func (s *Schema) Relation(typ, name string) (*Relation, error) {
	d, err := s.Definition(typ)
	if err != nil {
		return nil, err
	}
	r, ok := d.Relations[name]
	if !ok {
		return nil, &UnknownRelationError{Type: typ, Relation: name}
	}
	return r, nil
}

// Allows reports whether the stored relation r accepts subject as a tuple subject:
// `T:id` needs `T`, `T:*` needs `T:*`, `T:id#rel` needs `T#rel`. Permissions allow
// nothing.
func (r *Relation) Allows(subject tuples.SubjectRef) bool {
	if r.Permission {
		return false
	}
	for _, a := range r.Allowed {
		if a.matchesSubject(subject) {
			return true
		}
	}
	return false
}

// matchesSubject reports whether subject is of a's kind, caveat and expiration aside.
func (a AllowedSubject) matchesSubject(subject tuples.SubjectRef) bool {
	if a.Type != subject.Object.Type {
		return false
	}
	rel := subject.Relation
	if rel == tuples.Ellipsis {
		rel = "" // `user:tom#...` is `user:tom`
	}
	switch {
	case subject.IsWildcard():
		return a.Wildcard && rel == ""
	case a.Wildcard:
		return false
	}
	return a.Relation == rel
}

// AllowsTuple reports whether t matches one allowed form exactly: its subject kind,
// its caveat (or none) and its expiration (a form `with expiration` for an expiring
// tuple, one without for a tuple that does not expire).
func (r *Relation) AllowsTuple(t tuples.Tuple) bool {
	if r.Permission {
		return false
	}
	caveat := ""
	if t.Caveat != nil {
		caveat = t.Caveat.Name
	}
	for _, a := range r.Allowed {
		if a.matchesSubject(t.Subject) && a.Caveat == caveat && a.Expiration == !t.ExpiresAt.IsZero() {
			return true
		}
	}
	return false
}

// ValidateTuple checks t against the schema for the write path. It fails with an
// *UnknownTypeError or *UnknownRelationError when the object type or relation is not
// defined, and a *NotAllowedError (errors.Is ErrNotAllowed) when the relation is a
// permission or does not list the subject's type (`role:r#member is not allowed on
// flow#user_granted; allowed: user, service_account`). Syntax of names and ids is the
// caller's to check (tuples.ValidateName and friends).
func (s *Schema) ValidateTuple(t tuples.Tuple) error {
	r, err := s.Relation(t.Object.Type, t.Relation)
	if err != nil {
		return err
	}
	if r.Permission {
		return &NotAllowedError{Type: t.Object.Type, Relation: t.Relation, Permission: true}
	}
	if !r.Allows(t.Subject) {
		return &NotAllowedError{Type: t.Object.Type, Relation: t.Relation, Subject: t.Subject.String(), Allowed: r.Allowed}
	}
	if !r.AllowsTuple(t) {
		return &NotAllowedError{Type: t.Object.Type, Relation: t.Relation, Subject: t.Subject.String(), Allowed: r.Allowed,
			Form: describeForm(t)}
	}
	if t.Caveat != nil {
		cv := s.Caveats[t.Caveat.Name]
		if cv == nil {
			// AllowsTuple matched a form naming it, and Compile resolves every name.
			return fmt.Errorf("schema: caveat %s is not defined", t.Caveat.Name)
		}
		if err := cv.ValidateContext(t.Caveat.Context); err != nil {
			return err
		}
	}
	return nil
}

// describeForm prints the caveat and expiration of t as an allowed form would:
// `with NAME and expiration`, "without a caveat".
func describeForm(t tuples.Tuple) string {
	switch {
	case t.Caveat != nil && !t.ExpiresAt.IsZero():
		return "with " + t.Caveat.Name + " and expiration"
	case t.Caveat != nil:
		return "with " + t.Caveat.Name
	case !t.ExpiresAt.IsZero():
		return "with expiration"
	}
	return "without a caveat or expiration"
}
