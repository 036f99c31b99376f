package schema

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Errors returned by Schema lookups and tuple validation. Check them with errors.Is;
// the typed errors below unwrap to them.
var (
	// ErrUnknownType: the schema has no definition of that name.
	ErrUnknownType = errors.New("schema: unknown type")
	// ErrUnknownRelation: the definition has no relation or permission of that name.
	ErrUnknownRelation = errors.New("schema: unknown relation or permission")
	// ErrNotAllowed: a tuple the schema does not allow (a subject type not listed on the
	// relation, or a write to a permission).
	ErrNotAllowed = errors.New("schema: tuple not allowed by the schema")
	// ErrTooLarge: the schema source is larger than MaxInputSize.
	ErrTooLarge = errors.New("schema: input too large")
)

// UnknownTypeError reports a type the schema does not define. It unwraps to
// ErrUnknownType.
type UnknownTypeError struct {
	Type string
}

// Error returns "schema: unknown type T".
func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("schema: unknown type %s", e.Type)
}

// Unwrap returns ErrUnknownType.
func (e *UnknownTypeError) Unwrap() error { return ErrUnknownType }

// UnknownRelationError reports a relation or permission that Type does not define. It
// unwraps to ErrUnknownRelation.
type UnknownRelationError struct {
	Type     string
	Relation string
}

// Error returns "schema: type T has no relation or permission R".
func (e *UnknownRelationError) Error() string {
	return fmt.Sprintf("schema: type %s has no relation or permission %s", e.Type, e.Relation)
}

// Unwrap returns ErrUnknownRelation.
func (e *UnknownRelationError) Unwrap() error { return ErrUnknownRelation }

// NotAllowedError reports a tuple the schema refuses: Reason says why (a write to a
// permission, or a subject type the relation does not list). It unwraps to ErrNotAllowed.
type NotAllowedError struct {
	Type     string
	Relation string
	// Subject is the refused subject in text form (`role:r#member`); empty when the
	// relation itself cannot be written (a permission).
	Subject string
	// Allowed lists the subject types the relation accepts.
	Allowed []AllowedSubject
	// Permission is set when Relation is a permission, which is never stored.
	Permission bool
	// Form, when set, is the tuple's caveat and expiration that no allowed form of its
	// subject type matches (`with expiration`, "without a caveat").
	Form string
}

// Error names the refused subject and the allowed subject types.
func (e *NotAllowedError) Error() string {
	if e.Permission {
		return fmt.Sprintf("schema: %s#%s is a permission; tuples can only be written to relations", e.Type, e.Relation)
	}
	names := make([]string, len(e.Allowed))
	for i, a := range e.Allowed {
		names[i] = a.String()
	}
	if e.Form != "" {
		return fmt.Sprintf("schema: subject %s %s is not allowed on %s#%s; allowed: %s",
			e.Subject, e.Form, e.Type, e.Relation, strings.Join(names, ", "))
	}
	return fmt.Sprintf("schema: subject %s is not allowed on %s#%s; allowed: %s",
		e.Subject, e.Type, e.Relation, strings.Join(names, ", "))
}

// Unwrap returns ErrNotAllowed.
func (e *NotAllowedError) Unwrap() error { return ErrNotAllowed }

// String returns `line:column`.
func (p Position) String() string {
	return fmt.Sprintf("%d:%d", p.Line, p.Column)
}

// IsValid reports whether p is a real position (Line > 0).
func (p Position) IsValid() bool { return p.Line > 0 }

// Error is one positioned problem in schema source, printed as
// `file:line:col: reason` (or `line:col: reason` without a file name).
type Error struct {
	Filename string
	Pos      Position
	Msg      string
	// Err, when set, is the cause (e.g. tuples.ErrNotSupported for caveats) so that
	// errors.Is sees through an ErrorList.
	Err error
}

// Error returns `file:line:col: reason`.
func (e *Error) Error() string {
	if e.Filename != "" {
		return e.Filename + ":" + e.Pos.String() + ": " + e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is a list of schema errors, as go/scanner.ErrorList. The zero value is an
// empty list ready to use.
type ErrorList []*Error

// Add appends an error at pos.
func (l *ErrorList) Add(filename string, pos Position, msg string) {
	*l = append(*l, &Error{Filename: filename, Pos: pos, Msg: msg})
}

// Len implements sort.Interface.
func (l ErrorList) Len() int { return len(l) }

// Swap implements sort.Interface.
func (l ErrorList) Swap(i, j int) { l[i], l[j] = l[j], l[i] }

// Less orders errors by file, line, column and message (sort.Interface).
func (l ErrorList) Less(i, j int) bool {
	a, b := l[i], l[j]
	if a.Filename != b.Filename {
		return a.Filename < b.Filename
	}
	if a.Pos.Line != b.Pos.Line {
		return a.Pos.Line < b.Pos.Line
	}
	if a.Pos.Column != b.Pos.Column {
		return a.Pos.Column < b.Pos.Column
	}
	return a.Msg < b.Msg
}

// Sort sorts the list by position (stable for equal positions).
func (l ErrorList) Sort() { sort.Stable(l) }

// RemoveMultiples sorts the list and removes exact duplicates (same position and message).
func (l *ErrorList) RemoveMultiples() {
	l.Sort()
	out := (*l)[:0]
	for i, e := range *l {
		if i > 0 {
			p := out[len(out)-1]
			if p.Filename == e.Filename && p.Pos == e.Pos && p.Msg == e.Msg {
				continue
			}
		}
		out = append(out, e)
	}
	*l = out
}

// maxErrorsInMessage bounds how many errors ErrorList.Error spells out.
const maxErrorsInMessage = 10

// Error returns "schema: " and the errors joined by "; " (at most ten, then a count).
func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "schema: no errors"
	case 1:
		return "schema: " + l[0].Error()
	}
	var b strings.Builder
	b.WriteString("schema: ")
	for i, e := range l {
		if i == maxErrorsInMessage {
			fmt.Fprintf(&b, " (and %d more errors)", len(l)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the list, so that errors.Is and errors.As look at each.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
