// Package tuples defines Relata's relation tuples, their text form, revisions and
// zookies, and the contract every tuple store implements (Reader, Store).
//
// Everything here is plain Go: the engine (package check) reads tuples only through
// Reader, and the server converts these types to and from protobuf at its edge.
package tuples

import (
	"strings"
	"time"
)

// Wildcard is the subject id that stands for every object of a type (`user:*`).
const Wildcard = "*"

// Ellipsis is SpiceDB's spelling of "no relation" on a subject (`user:tom#...`). In a
// Filter's SubjectRelation it selects plain (relation-less) subjects only.
const Ellipsis = "..."

// ObjectRef names one object: `flow:invoice-sync`.
type ObjectRef struct {
	Type string
	ID   string
}

// SubjectRef names a subject: a plain object (Relation empty), a userset
// (`role:ops#member`) or a wildcard (Object.ID == Wildcard).
type SubjectRef struct {
	Object   ObjectRef
	Relation string
}

// Tuple is one stored relationship: Object#Relation@Subject, optionally conditioned
// by a caveat and optionally expiring. Its identity is Object, Relation
// and Subject: writing the same three again replaces the caveat and expiration.
type Tuple struct {
	Object   ObjectRef
	Relation string
	Subject  SubjectRef
	// Caveat, when not nil, makes the tuple hold only when the caveat does.
	Caveat *Caveat
	// ExpiresAt, when not zero, is when the tuple lapses: it is visible only to reads
	// at revisions committed before it. Always UTC, without a monotonic reading.
	ExpiresAt time.Time
}

// Caveat is a tuple's condition: the caveat's name and the stored part of its
// context (JSON-like values: float64, string, bool, nil, []any, map[string]any).
type Caveat struct {
	Name    string
	Context map[string]any
}

// Key returns t without its caveat and expiration: its identity.
func (t Tuple) Key() Tuple {
	return Tuple{Object: t.Object, Relation: t.Relation, Subject: t.Subject}
}

// Conditional reports whether t carries a caveat or an expiration.
func (t Tuple) Conditional() bool { return t.Caveat != nil || !t.ExpiresAt.IsZero() }

// IsWildcard reports whether s is a wildcard subject such as `user:*`.
func (s SubjectRef) IsWildcard() bool { return s.Object.ID == Wildcard }

// IsUserset reports whether s names a userset (it has a relation).
func (s SubjectRef) IsUserset() bool { return s.Relation != "" }

// Operation is what a write does with a tuple.
type Operation int

const (
	// OpTouch writes the tuple whether or not it exists (idempotent).
	OpTouch Operation = iota
	// OpCreate writes the tuple and fails with ErrAlreadyExists if it is live.
	OpCreate
	// OpDelete removes the tuple; deleting a missing tuple is a no-op.
	OpDelete
)

// String returns CREATE, TOUCH or DELETE.
func (op Operation) String() string {
	switch op {
	case OpTouch:
		return "TOUCH"
	case OpCreate:
		return "CREATE"
	case OpDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Update is one operation of a write.
type Update struct {
	Op    Operation
	Tuple Tuple
}

// Filter selects tuples. Empty fields match anything. SubjectRelation "" matches any
// subject relation; Ellipsis matches plain subjects only. NoWildcard leaves out
// wildcard subjects (`user:*`), so that SubjectType "user" with SubjectRelation
// Ellipsis and NoWildcard selects exactly the tuples whose subject is one user.
// FormOnly selects only the tuples of one form: those carrying exactly the
// caveat named Caveat ("" for none) and, when Expiring, an expiration (else none); the
// schema write path uses it to find the tuples a removed `with …` form would orphan.
type Filter struct {
	ObjectType      string
	ObjectID        string
	Relation        string
	SubjectType     string
	SubjectID       string
	SubjectRelation string
	NoWildcard      bool
	FormOnly        bool
	Caveat          string
	Expiring        bool
}

// String prints the set fields of f as `{object_type=flow relation=granted}`, with the
// proto's field names; `{}` selects every tuple.
func (f Filter) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for _, p := range [...][2]string{
		{"object_type", f.ObjectType}, {"object_id", f.ObjectID}, {"relation", f.Relation},
		{"subject_type", f.SubjectType}, {"subject_id", f.SubjectID}, {"subject_relation", f.SubjectRelation},
	} {
		if p[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		b.WriteString(p[0] + "=" + p[1])
	}
	if f.NoWildcard {
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		b.WriteString("no_wildcard")
	}
	if f.FormOnly {
		if b.Len() > 1 {
			b.WriteByte(' ')
		}
		b.WriteString("caveat=" + f.Caveat)
		if f.Expiring {
			b.WriteString(" expiring")
		} else {
			b.WriteString(" not_expiring")
		}
	}
	b.WriteByte('}')
	return b.String()
}

// Matches reports whether t is selected by f.
func (f Filter) Matches(t Tuple) bool {
	switch {
	case f.ObjectType != "" && f.ObjectType != t.Object.Type,
		f.ObjectID != "" && f.ObjectID != t.Object.ID,
		f.Relation != "" && f.Relation != t.Relation,
		f.SubjectType != "" && f.SubjectType != t.Subject.Object.Type,
		f.SubjectID != "" && f.SubjectID != t.Subject.Object.ID,
		f.NoWildcard && t.Subject.IsWildcard(),
		f.FormOnly && !f.matchesForm(t):
		return false
	case f.SubjectRelation == Ellipsis:
		return t.Subject.Relation == ""
	case f.SubjectRelation != "":
		return f.SubjectRelation == t.Subject.Relation
	}
	return true
}

// matchesForm reports whether t carries exactly f's caveat and expiration form.
func (f Filter) matchesForm(t Tuple) bool {
	caveat := ""
	if t.Caveat != nil {
		caveat = t.Caveat.Name
	}
	return caveat == f.Caveat && t.ExpiresAt.IsZero() != f.Expiring
}

// PreconditionOp says whether a precondition's filter must or must not match.
type PreconditionOp int

const (
	// MustMatch requires at least one live tuple matching the filter.
	MustMatch PreconditionOp = iota
	// MustNotMatch requires that no live tuple matches the filter.
	MustNotMatch
)

// Precondition is checked atomically with the write it guards, at the head revision.
type Precondition struct {
	Op     PreconditionOp
	Filter Filter
}

// Change is one entry of the change log: a tuple written (OpTouch) or deleted
// (OpDelete) at Revision.
type Change struct {
	Revision Revision
	Op       Operation
	Tuple    Tuple
}
