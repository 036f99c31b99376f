package tuples

import "fmt"

// The rules below are checked by hand-written loops rather than regexps: they run
// for every tuple on the write path.

// validName reports whether s matches `(?:[a-z][a-z0-9_]{0,62}/)*[a-z][a-z0-9_]{0,62}`
// and is at most maxNameLen bytes long. SpiceDB's schemas nest prefixes
// (`org/identity_team/user`), so any number of them is accepted.
func validName(s string) bool {
	if len(s) > maxNameLen {
		return false
	}
	for {
		prefix, rest, ok := cutByte(s, '/')
		if !ok {
			return validSegment(s)
		}
		if !validSegment(prefix) {
			return false
		}
		s = rest
	}
}

// maxNameLen bounds a whole name, prefixes included.
const maxNameLen = 255

func cutByte(s string, c byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func validSegment(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validObjectID reports whether s matches `[a-zA-Z0-9_|\-=+/.@]{1,1024}`.
func validObjectID(s string) bool {
	if len(s) == 0 || len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		switch c {
		case '_', '|', '-', '=', '+', '/', '.', '@':
			continue
		}
		return false
	}
	return true
}

// Rules quoted in validation errors.
const (
	NameRule     = "must match [a-z][a-z0-9_]{0,62}, optionally with prefixes/ of the same form (at most 255 bytes in all)"
	ObjectIDRule = "must match [a-zA-Z0-9_|\\-=+/.@]{1,1024}"
)

// maxEchoedValue caps how much of an over-long id an error repeats: an id just over
// the limit is quoted whole, a megabyte one is not.
const maxEchoedValue = 4096

// ValidateName checks a type, relation or permission name; field names it in the error
// (e.g. "object.type").
func ValidateName(field, name string) error {
	if !validName(name) {
		return &ValidationError{Field: field, Value: name, Reason: NameRule}
	}
	return nil
}

// ValidateObjectID checks an object id (no wildcard).
func ValidateObjectID(field, id string) error {
	if len(id) > 1024 {
		value := id
		if len(value) > maxEchoedValue {
			value = value[:maxEchoedValue] + "…"
		}
		return &ValidationError{Field: field, Value: value, Reason: fmt.Sprintf("%d bytes is longer than 1024 bytes", len(id))}
	}
	if id == Wildcard {
		return &ValidationError{Field: field, Value: id, Reason: "the wildcard * is allowed only as a subject id"}
	}
	if !validObjectID(id) {
		return &ValidationError{Field: field, Value: id, Reason: ObjectIDRule}
	}
	return nil
}

// ValidateSubjectID checks a subject id: an object id or the wildcard "*".
func ValidateSubjectID(field, id string) error {
	if id == Wildcard {
		return nil
	}
	return ValidateObjectID(field, id)
}
