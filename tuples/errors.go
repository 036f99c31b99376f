package tuples

import (
	"errors"
	"fmt"
)

// Errors returned by stores and by the text parser. Check them with errors.Is.
var (
	// ErrNoSchema: no schema was ever written to the store.
	ErrNoSchema = errors.New("no schema written")
	// ErrRevisionExpired: the revision is older than the GC window ("zookie expired").
	ErrRevisionExpired = errors.New("zookie expired: revision is older than the GC window")
	// ErrRevisionInFuture: the revision is newer than the store's head.
	ErrRevisionInFuture = errors.New("revision is newer than the store's head")
	// ErrSchemaChanged: the schema changed between validation and commit; retry.
	ErrSchemaChanged = errors.New("schema changed while writing; retry")
	// ErrInvalidZookie: a zookie that does not decode or fails its integrity check.
	ErrInvalidZookie = errors.New("invalid zookie")
	// ErrNotSupported: syntax Relata parses but does not implement yet (caveats, expiration).
	ErrNotSupported = errors.New("not supported yet")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the store's database cannot be reached right now (down,
	// restarting, connection lost); nothing was written. Retry later. It maps to
	// UNAVAILABLE.
	ErrUnavailable = errors.New("store unavailable")
	// ErrWriteOutcomeUnknown: the connection to the store's database was lost while a
	// write committed, so it may or may not have been applied. It maps to UNAVAILABLE
	// with reason WRITE_OUTCOME_UNKNOWN; callers re-read before retrying a non-idempotent
	// write.
	ErrWriteOutcomeUnknown = errors.New("write outcome unknown: the connection to the store was lost while the write committed; it may or may not have been applied")
	// ErrStorageFull: the disk is full (or below the store's free-space reserve);
	// the write changed nothing. Reads go on; writes succeed again once space is
	// freed. It maps to RESOURCE_EXHAUSTED STORAGE_FULL.
	ErrStorageFull = errors.New("no space left on device")
	// ErrStorageError: the store cannot write because of an I/O error; the write
	// changed nothing. It maps to UNAVAILABLE STORAGE_ERROR.
	ErrStorageError = errors.New("storage error")
)

// ValidationError reports bad input: which field, the offending value, and why.
// It maps to INVALID_ARGUMENT.
type ValidationError struct {
	Field  string // e.g. "subject.object.id", "updates[3].tuple.relation"
	Value  string
	Reason string // e.g. "must match [a-z][a-z0-9_]{0,62}"
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// PreconditionError reports a failed write precondition. Tuple is the matching tuple
// for a failed MustNotMatch (zero for a failed MustMatch).
type PreconditionError struct {
	Precondition Precondition
	Tuple        Tuple
}

func (e *PreconditionError) Error() string {
	if e.Precondition.Op == MustNotMatch {
		return fmt.Sprintf("precondition failed: tuple %s matches the must-not-match filter %s", e.Tuple, e.Precondition.Filter)
	}
	return fmt.Sprintf("precondition failed: no tuple matches the must-match filter %s", e.Precondition.Filter)
}

// AlreadyExistsError reports a CREATE of a tuple that is already live.
type AlreadyExistsError struct {
	Tuple Tuple
}

func (e *AlreadyExistsError) Error() string {
	return fmt.Sprintf("tuple %s already exists", e.Tuple)
}
