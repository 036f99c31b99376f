// Package schema implements Relata's schema language (SpiceDB-compatible): lexer,
// parser, AST, type checks, compilation to Zanzibar userset rewrites, the canonical
// formatter and the diff used to refuse schema writes that would orphan tuples.
package schema

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
}

// Definition is one object type with its relations and permissions.
type Definition struct {
	Name string
	// Relations holds both stored relations and permissions, by name.
	Relations map[string]*Relation
	// Order lists relation and permission names in source order.
	Order []string
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
}

// AllowedSubject is one entry of a relation's allowed subject types: `user`,
// `role#member` (Relation set) or `user:*` (Wildcard).
type AllowedSubject struct {
	Type     string
	Relation string
	Wildcard bool
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
