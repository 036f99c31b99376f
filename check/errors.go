package check

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by the engine. Check them with errors.Is; the typed errors below
// match them.
var (
	// ErrNotFound: a request names a type, relation or permission the schema lacks
	// (NOT_FOUND). The error is a *NotFoundError naming it.
	ErrNotFound = errors.New("not found")
	// ErrMaxDepth: evaluation recursed deeper than Options.MaxDepth (RESOURCE_EXHAUSTED).
	// The error is a *MaxDepthError carrying the path.
	ErrMaxDepth = errors.New("max depth exceeded")
)

// NotFoundError reports an unknown type, or an unknown relation or permission of a
// known type, in a request. It matches ErrNotFound.
type NotFoundError struct {
	// Field is the request field that named it: "object", "permission", "subject",
	// "resource_type", "subject_type", ...
	Field string
	// Type is the type named; Relation is empty when the type itself is unknown.
	Type     string
	Relation string
}

func (e *NotFoundError) Error() string {
	if e.Relation == "" {
		return fmt.Sprintf("%s: unknown type %q", e.Field, e.Type)
	}
	return fmt.Sprintf("%s: type %q has no relation or permission %q", e.Field, e.Type, e.Relation)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// MaxDepthError reports evaluation deeper than the limit. Path lists the sub-problems
// from the request down to the one that exceeded it, as `object#relation`.
type MaxDepthError struct {
	Limit int
	Path  []string
}

func (e *MaxDepthError) Error() string {
	return fmt.Sprintf("max depth exceeded (limit %d): %s", e.Limit, strings.Join(e.Path, " -> "))
}

// Is makes errors.Is(err, ErrMaxDepth) true.
func (e *MaxDepthError) Is(target error) bool { return target == ErrMaxDepth }
