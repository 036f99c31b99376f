package tuples

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// The text form of tuples:
//
//	tuple   = object "#" relation "@" subject [suffix]
//	object  = type ":" id
//	subject = type ":" id [ "#" relation | "#..." ]
//	suffix  = [ "[" caveat [ ":" json-object ] "]" ] [ "[expiration:" RFC3339 "]" ]
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

// String returns the text form `type:id#relation@subject`, followed by
// `[NAME]` or `[NAME:{json}]` for a caveat and `[expiration:RFC3339]` for an
// expiration.
func (t Tuple) String() string {
	s := t.Object.String() + "#" + t.Relation + "@" + t.Subject.String()
	if t.Caveat != nil {
		s += "[" + t.Caveat.Name
		if len(t.Caveat.Context) > 0 {
			b, err := json.Marshal(t.Caveat.Context)
			if err == nil {
				s += ":" + string(b)
			}
		}
		s += "]"
	}
	if !t.ExpiresAt.IsZero() {
		s += "[expiration:" + t.ExpiresAt.UTC().Format(time.RFC3339Nano) + "]"
	}
	return s
}

// ParseTuple parses and validates the text form of a tuple, such as
// `flow:f1#granted@role:ops#member` or `flow:f1#granted@user:*`. A subject relation of
// `...` means no relation. Surrounding white space is ignored. Suffixes
// `[NAME]`, `[NAME:{json}]` (a caveat and its stored context) and
// `[expiration:RFC3339]` may follow, in that order. Malformed or invalid input fails
// with a *ValidationError naming the field ("caveat.name", "caveat.context",
// "expiration").
func ParseTuple(s string) (Tuple, error) {
	text := strings.TrimSpace(s)
	var suffix string
	if i := strings.IndexByte(text, '['); i >= 0 {
		text, suffix = strings.TrimSpace(text[:i]), text[i:]
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
	if suffix != "" {
		if err := parseSuffixes(&t, suffix); err != nil {
			return Tuple{}, err
		}
	}
	return t, nil
}

// parseSuffixes parses `[NAME]`, `[NAME:{json}]` and `[expiration:RFC3339]` into t.
func parseSuffixes(t *Tuple, s string) error {
	for s != "" {
		if s[0] != '[' {
			return &ValidationError{Field: "tuple", Value: s, Reason: "unexpected text after the tuple; only [CAVEAT], [CAVEAT:{json}] and [expiration:RFC3339] may follow"}
		}
		body := s[1:]
		i := strings.IndexAny(body, ":]")
		if i < 0 {
			return &ValidationError{Field: "tuple", Value: s, Reason: "suffix not terminated: missing ]"}
		}
		name := body[:i]
		if name == "expiration" {
			end := strings.IndexByte(body, ']')
			if body[i] != ':' || end < 0 {
				return &ValidationError{Field: "expiration", Value: s, Reason: "want [expiration:RFC3339], e.g. [expiration:2027-01-01T00:00:00Z]"}
			}
			if !t.ExpiresAt.IsZero() {
				return &ValidationError{Field: "expiration", Value: s, Reason: "given twice"}
			}
			ts, err := ParseExpiration(body[i+1 : end])
			if err != nil {
				return err
			}
			t.ExpiresAt = ts
			s = body[end+1:]
			continue
		}
		if t.Caveat != nil || !t.ExpiresAt.IsZero() {
			return &ValidationError{Field: "caveat", Value: s, Reason: "one caveat only, before [expiration:…]"}
		}
		if err := ValidateName("caveat.name", name); err != nil {
			return err
		}
		c := &Caveat{Name: name}
		if body[i] == ']' {
			s = body[i+1:]
		} else {
			rest := body[i+1:]
			dec := json.NewDecoder(strings.NewReader(rest))
			if err := dec.Decode(&c.Context); err != nil || c.Context == nil {
				return &ValidationError{Field: "caveat.context", Value: rest, Reason: "want a JSON object after CAVEAT: (e.g. [ip_allowlist:{\"cidr\":\"10.0.0.0/8\"}])"}
			}
			rest = strings.TrimLeft(rest[dec.InputOffset():], " ")
			if !strings.HasPrefix(rest, "]") {
				return &ValidationError{Field: "caveat.context", Value: rest, Reason: "missing ] after the JSON object"}
			}
			if len(c.Context) == 0 {
				c.Context = nil
			}
			s = rest[1:]
		}
		t.Caveat = c
	}
	return nil
}

// ParseExpiration parses an RFC 3339 expiration time, returned in UTC.
func ParseExpiration(s string) (time.Time, error) {
	ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, &ValidationError{Field: "expiration", Value: s, Reason: "want an RFC 3339 time such as 2027-01-01T00:00:00Z"}
	}
	return ts.UTC(), nil
}

// ContextJSON returns the caveat's stored context as a JSON object ("{}" when empty).
func (c *Caveat) ContextJSON() []byte {
	if c == nil || len(c.Context) == 0 {
		return []byte("{}")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c.Context); err != nil {
		return []byte("{}")
	}
	return bytes.TrimRight(b.Bytes(), "\n")
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

// Validate checks every field of t (names, ids, wildcard rules) and
// returns a *ValidationError naming the first bad field ("object.type", "object.id",
// "relation", "subject.object.type", "subject.object.id", "subject.relation").
func (t Tuple) Validate() error { return t.ValidateField("") }

// ValidateField is Validate with every error's Field prefixed by prefix, e.g.
// "updates[3].tuple." gives "updates[3].tuple.object.id".
func (t Tuple) ValidateField(prefix string) error {
	if t.Caveat != nil {
		if err := ValidateName(prefix+"caveat.name", t.Caveat.Name); err != nil {
			return err
		}
	}
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
		{"filter.caveat", f.Caveat},
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
func Compare(a, b Tuple) int { return ComparePtr(&a, &b) }

// ComparePtr is Compare for tuples held by pointer (a sort of many tuples would copy
// two of them a comparison).
func ComparePtr(a, b *Tuple) int {
	// Column by column, each compared only when the ones before it are equal (most
	// pairs differ in an early column).
	if c := strings.Compare(a.Object.Type, b.Object.Type); c != 0 {
		return c
	}
	if c := strings.Compare(a.Object.ID, b.Object.ID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Relation, b.Relation); c != 0 {
		return c
	}
	if c := strings.Compare(a.Subject.Object.Type, b.Subject.Object.Type); c != 0 {
		return c
	}
	if c := strings.Compare(a.Subject.Object.ID, b.Subject.Object.ID); c != 0 {
		return c
	}
	return strings.Compare(a.Subject.Relation, b.Subject.Relation)
}
