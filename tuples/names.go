package tuples

import "regexp"

var (
	namePattern     = regexp.MustCompile(`^(?:[a-z][a-z0-9_]{0,62}/)?[a-z][a-z0-9_]{0,62}$`)
	objectIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_|\-=+/.@]+$`) // length checked separately: RE2 caps repeats at 1000
)

// Rules quoted in validation errors.
const (
	NameRule     = "must match [a-z][a-z0-9_]{0,62}, optionally with one prefix/ of the same form"
	ObjectIDRule = "must match [a-zA-Z0-9_|-=+/.@]{1,1024}"
)

// ValidateName checks a type, relation or permission name; field names it in the error
// (e.g. "object.type").
func ValidateName(field, name string) error {
	if !namePattern.MatchString(name) {
		return &ValidationError{Field: field, Value: name, Reason: NameRule}
	}
	return nil
}

// ValidateObjectID checks an object id (no wildcard).
func ValidateObjectID(field, id string) error {
	if len(id) > 1024 {
		return &ValidationError{Field: field, Value: id[:64] + "…", Reason: "longer than 1024 bytes"}
	}
	if !objectIDPattern.MatchString(id) {
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
