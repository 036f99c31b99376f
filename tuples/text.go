package tuples

import (
	"fmt"
	"strings"
)

// The text form of tuples (design §1):
//
//	tuple   = object "#" relation "@" subject [suffix]
//	object  = type ":" id
//	subject = type ":" id [ "#" relation | "#..." ]
//	suffix  = "[caveat:…]" | "[expiration:…]"   (rejected: not supported yet)
//
// Object ids may contain '@' but never ':', '#', '[' or space, so the first ':', '#'
// and '@' of a tuple delimit its parts unambiguously.

// String returns the text form `type:id`.
func (o ObjectRef) String() string { return o.Type + ":" + o.ID }

// String returns the text form `type:id` or `type:id#relation`.
func (s SubjectRef) String() string {
	if s.Relation == "" {
		return s.Object.String()
	}
	return s.Object.String() + "#" + s.Relation
}

// String returns the text form `type:id#relation@subject`.
func (t Tuple) String() string {
	return t.Object.String() + "#" + t.Relation + "@" + t.Subject.String()
}

// ParseTuple parses and validates the text form of a tuple, such as
// `flow:f1#granted@role:ops#member` or `flow:f1#granted@user:*`. A subject relation of
// `...` means no relation. Surrounding white space is ignored. A `[caveat:…]` or
// `[expiration:…]` suffix fails with an error wrapping ErrNotSupported; any other
// malformed or invalid input fails with a *ValidationError naming the field.
func ParseTuple(s string) (Tuple, error) {
	text := strings.TrimSpace(s)
	if i := strings.IndexByte(text, '['); i >= 0 {
		if err := suffixError(text[i:]); err != nil {
			return Tuple{}, err
		}
	}
	hash := strings.IndexByte(text, '#')
	if hash < 0 {
		return Tuple{}, &ValidationError{Field: "tuple", Value: s, Reason: "expected object#relation@subject"}
	}
	at := strings.IndexByte(text[hash+1:], '@')
	if at < 0 {
		return Tuple{}, &ValidationError{Field: "tuple", Value: s, Reason: "expected object#relation@subject"}
	}
	at += hash + 1
	obj, err := parseObject("object", text[:hash])
	if err != nil {
		return Tuple{}, err
	}
	sub, err := parseSubject("subject", text[at+1:])
	if err != nil {
		return Tuple{}, err
	}
	t := Tuple{Object: obj, Relation: text[hash+1 : at], Subject: sub}
	if err := t.Validate(); err != nil {
		return Tuple{}, err
	}
	return t, nil
}

// suffixError classifies a `[...]` suffix: SpiceDB's `[expiration:RFC3339]` and its
// caveat suffixes `[NAME]` and `[NAME:{json}]` (the design's `[caveat:{json}]`) are
// recognised and rejected as not supported; anything else is malformed.
func suffixError(suffix string) error {
	name := suffix[1:]
	if i := strings.IndexAny(name, ":]"); i >= 0 {
		name = name[:i]
	} else {
		name = ""
	}
	switch {
	case name == "expiration":
		return fmt.Errorf("tuples: expiration on relationships: %w", ErrNotSupported)
	case name == "caveat":
		return fmt.Errorf("tuples: caveat on relationships: %w", ErrNotSupported)
	case validName(name):
		return fmt.Errorf("tuples: caveat %s on relationships: %w", name, ErrNotSupported)
	}
	return &ValidationError{Field: "tuple", Value: suffix, Reason: "unexpected suffix; only [CAVEAT:{json}], [CAVEAT] and [expiration:…] are known"}
}

// ParseObject parses and validates `type:id`. The id must not be the wildcard.
func ParseObject(s string) (ObjectRef, error) {
	o, err := parseObject("object", strings.TrimSpace(s))
	if err != nil {
		return ObjectRef{}, err
	}
	return o, o.Validate()
}

// ParseSubject parses and validates `type:id`, `type:id#relation`, `type:id#...`
// (no relation) or `type:*` (wildcard).
func ParseSubject(s string) (SubjectRef, error) {
	sub, err := parseSubject("subject", strings.TrimSpace(s))
	if err != nil {
		return SubjectRef{}, err
	}
	return sub, sub.validate("subject")
}

func parseObject(field, s string) (ObjectRef, error) {
	typ, id, ok := strings.Cut(s, ":")
	if !ok {
		return ObjectRef{}, &ValidationError{Field: field, Value: s, Reason: "expected type:id"}
	}
	return ObjectRef{Type: typ, ID: id}, nil
}

func parseSubject(field, s string) (SubjectRef, error) {
	objText, rel, hasRel := strings.Cut(s, "#")
	obj, err := parseObject(field, objText)
	if err != nil {
		return SubjectRef{}, err
	}
	if hasRel && rel == Ellipsis {
		rel = ""
	} else if hasRel && rel == "" {
		return SubjectRef{}, &ValidationError{Field: field + ".relation", Value: rel, Reason: "empty after '#'; omit '#' or write '#...' for no relation"}
	}
	return SubjectRef{Object: obj, Relation: rel}, nil
}

// Validate checks an object reference used as a tuple's object: a valid type name and
// a valid, non-wildcard id. Errors are *ValidationError with Field "object.type" or
// "object.id".
func (o ObjectRef) Validate() error { return o.validate("object") }

func (o ObjectRef) validate(field string) error {
	if err := ValidateName(field+".type", o.Type); err != nil {
		return err
	}
	return ValidateObjectID(field+".id", o.ID)
}

// Validate checks a subject: a valid type, an object id or the wildcard, and an
// optional relation name. A wildcard cannot carry a relation. Errors are
// *ValidationError with Field "subject.object.type", "subject.object.id" or
// "subject.relation".
func (s SubjectRef) Validate() error { return s.validate("subject") }

func (s SubjectRef) validate(field string) error {
	if err := ValidateName(field+".object.type", s.Object.Type); err != nil {
		return err
	}
	if err := ValidateSubjectID(field+".object.id", s.Object.ID); err != nil {
		return err
	}
	if s.Relation == "" {
		return nil
	}
	if s.IsWildcard() {
		return &ValidationError{Field: field + ".relation", Value: s.Relation, Reason: "a wildcard subject cannot have a relation"}
	}
	return ValidateName(field+".relation", s.Relation)
}

// Validate checks every field of t (names per design §1, ids, wildcard rules) and
// returns a *ValidationError naming the first bad field ("object.type", "object.id",
// "relation", "subject.object.type", "subject.object.id", "subject.relation").
func (t Tuple) Validate() error { return t.ValidateField("") }

// ValidateField is Validate with every error's Field prefixed by prefix, e.g.
// "updates[3].tuple." gives "updates[3].tuple.object.id".
func (t Tuple) ValidateField(prefix string) error {
	if t.valid() {
		return nil // the hot path: no field names built
	}
	if err := t.Object.validate(prefix + "object"); err != nil {
		return err
	}
	if err := ValidateName(prefix+"relation", t.Relation); err != nil {
		return err
	}
	return t.Subject.validate(prefix + "subject")
}

// valid reports whether Validate would succeed, without allocating.
func (t Tuple) valid() bool {
	s := t.Subject
	return validName(t.Object.Type) && validObjectID(t.Object.ID) && validName(t.Relation) &&
		validName(s.Object.Type) && (s.Object.ID == Wildcard || validObjectID(s.Object.ID)) &&
		(s.Relation == "" || s.Object.ID != Wildcard && validName(s.Relation))
}

// Validate checks that every non-empty field of f is a well-formed name or id
// (SubjectRelation may also be Ellipsis). Errors are *ValidationError naming the
// field, e.g. "filter.object_type".
func (f Filter) Validate() error {
	names := []struct{ field, v string }{
		{"filter.object_type", f.ObjectType},
		{"filter.relation", f.Relation},
		{"filter.subject_type", f.SubjectType},
	}
	for _, n := range names {
		if n.v != "" {
			if err := ValidateName(n.field, n.v); err != nil {
				return err
			}
		}
	}
	if f.ObjectID != "" {
		if err := ValidateObjectID("filter.object_id", f.ObjectID); err != nil {
			return err
		}
	}
	if f.SubjectID != "" {
		if err := ValidateSubjectID("filter.subject_id", f.SubjectID); err != nil {
			return err
		}
	}
	if f.SubjectRelation != "" && f.SubjectRelation != Ellipsis {
		return ValidateName("filter.subject_relation", f.SubjectRelation)
	}
	return nil
}

// Compare orders tuples canonically: by object type, object id, relation, subject
// type, subject id, subject relation, each compared bytewise. It returns -1, 0 or +1.
// Stores yield Read results in this order.
func Compare(a, b Tuple) int {
	for _, p := range [...][2]string{
		{a.Object.Type, b.Object.Type},
		{a.Object.ID, b.Object.ID},
		{a.Relation, b.Relation},
		{a.Subject.Object.Type, b.Subject.Object.Type},
		{a.Subject.Object.ID, b.Subject.Object.ID},
		{a.Subject.Relation, b.Subject.Relation},
	} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}
