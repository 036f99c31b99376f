package tuples

import (
	"errors"
	"strconv"
)

// Validate checks a write before a store applies it, as every store must: at most
// maxUpdates updates, a known operation and a valid tuple in each, no tuple named twice
// (whatever its caveat or expiration), and valid precondition filters. Errors are
// *ValidationError naming the field (`updates[3].tuple.object.id`).
func (r WriteRequest) Validate(maxUpdates int) error {
	if n := len(r.Updates); n > maxUpdates {
		return &ValidationError{Field: "updates", Value: strconv.Itoa(n) + " updates",
			Reason: "more than MaxUpdatesPerWrite (" + strconv.Itoa(maxUpdates) + ")"}
	}
	seen := make(map[Tuple]int, len(r.Updates))
	for i, u := range r.Updates {
		if u.Op < OpTouch || u.Op > OpDelete {
			return &ValidationError{Field: "updates[" + strconv.Itoa(i) + "].operation", Value: u.Op.String(), Reason: "must be CREATE, TOUCH or DELETE"}
		}
		if err := u.Tuple.Validate(); err != nil {
			return PrefixField(err, "updates["+strconv.Itoa(i)+"].tuple.")
		}
		if j, dup := seen[u.Tuple.Key()]; dup {
			return &ValidationError{Field: "updates[" + strconv.Itoa(i) + "].tuple", Value: u.Tuple.String(),
				Reason: "duplicates updates[" + strconv.Itoa(j) + "]; a write may name each tuple once"}
		}
		seen[u.Tuple.Key()] = i
	}
	return ValidatePreconditions(r.Preconditions)
}

// ValidatePreconditions checks every precondition's filter; an error names its index.
func ValidatePreconditions(pre []Precondition) error {
	for i, p := range pre {
		if err := p.Filter.Validate(); err != nil {
			return PrefixField(err, "preconditions["+strconv.Itoa(i)+"].")
		}
	}
	return nil
}

// PrefixField returns err with prefix put before the Field of a *ValidationError in
// it (a copy; err itself is unchanged); other errors are returned as they are.
func PrefixField(err error, prefix string) error {
	var verr *ValidationError
	if errors.As(err, &verr) {
		c := *verr
		c.Field = prefix + c.Field
		return &c
	}
	return err
}
