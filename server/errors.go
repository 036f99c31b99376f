package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/tuples"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo the server returns.
const ErrorDomain = "relata"

// Reasons carried in google.rpc.ErrorInfo.reason. They are stable, machine-readable
// names for the error classes of design §6; the gRPC code (and the HTTP status on REST)
// gives the broad class.
const (
	// INVALID_ARGUMENT
	ReasonInvalidRequest = "INVALID_REQUEST" // a malformed field; metadata field and value
	ReasonLimitExceeded  = "LIMIT_EXCEEDED"  // too many items or bytes in one request
	ReasonInvalidZookie  = "INVALID_ZOOKIE"  // a zookie that does not decode
	ReasonInvalidCursor  = "INVALID_CURSOR"  // a cursor that does not decode
	ReasonInvalidSchema  = "INVALID_SCHEMA"  // schema syntax or type errors
	ReasonNotSupported   = "NOT_SUPPORTED"   // caveats, expiration, RPCs not built yet
	ReasonZookieInFuture = "ZOOKIE_IN_FUTURE"
	// FAILED_PRECONDITION
	ReasonPreconditionFailed = "PRECONDITION_FAILED"   // a write precondition failed
	ReasonSchemaOrphans      = "SCHEMA_ORPHANS_TUPLES" // a schema change would orphan tuples
	ReasonSubjectNotAllowed  = "SUBJECT_TYPE_NOT_ALLOWED"
	ReasonZookieExpired      = "ZOOKIE_EXPIRED"
	ReasonNoSchema           = "NO_SCHEMA"
	// NOT_FOUND
	ReasonUnknownType     = "UNKNOWN_TYPE"
	ReasonUnknownRelation = "UNKNOWN_RELATION"
	// ALREADY_EXISTS
	ReasonAlreadyExists = "TUPLE_ALREADY_EXISTS"
	// RESOURCE_EXHAUSTED
	ReasonMaxDepth    = "MAX_DEPTH_EXCEEDED"
	ReasonStorageFull = "STORAGE_FULL" // the disk is full: writes fail, reads go on
	// UNAUTHENTICATED
	ReasonUnauthenticated = "UNAUTHENTICATED"
	// PERMISSION_DENIED: the caller lacks the scope the call needs; metadata scope
	ReasonMissingScope = "MISSING_SCOPE"
	// UNIMPLEMENTED (REST: 405 for a method other than POST on an API route)
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// others
	ReasonUnavailable  = "UNAVAILABLE"
	ReasonStorageError = "STORAGE_ERROR" // UNAVAILABLE: the store cannot write (I/O error)
	// ReasonWriteOutcomeUnknown (UNAVAILABLE): the store lost its connection while the
	// write committed; it may or may not have been applied. Re-read before retrying.
	ReasonWriteOutcomeUnknown = "WRITE_OUTCOME_UNKNOWN"
	ReasonCanceled            = "CANCELED"
	ReasonDeadline            = "DEADLINE_EXCEEDED"
	ReasonInternal            = "INTERNAL"
)

// classify maps a domain error to its code, reason and extra metadata. It is the one
// table of error classes; add a case here for every new typed domain error.
func classify(err error) (codes.Code, string, map[string]string) {
	var (
		verr *tuples.ValidationError
		perr *tuples.PreconditionError
		aerr *tuples.AlreadyExistsError
		serr *statusError
		lerr *limitError
		berr *bodyError
	)
	var ferr *fieldError
	if errors.As(err, &ferr) {
		code, reason, md := classify(ferr.err)
		if md == nil {
			md = map[string]string{}
		}
		if md["field"] == "" {
			md["field"] = ferr.field
		}
		return code, reason, md
	}
	if code, reason, md := classifyDomain(err); reason != "" {
		return code, reason, md
	}
	switch {
	case errors.As(err, &serr):
		return serr.code, serr.reason, serr.metadata
	case errors.As(err, &lerr):
		return codes.InvalidArgument, ReasonLimitExceeded, map[string]string{"field": lerr.field}
	case errors.As(err, &berr):
		return codes.InvalidArgument, ReasonInvalidRequest, map[string]string{"field": berr.field, "value": berr.value}
	case errors.Is(err, tuples.ErrNotSupported):
		return codes.InvalidArgument, ReasonNotSupported, nil
	case errors.As(err, &verr):
		return codes.InvalidArgument, ReasonInvalidRequest, map[string]string{"field": verr.Field, "value": verr.Value}
	case errors.Is(err, tuples.ErrInvalidZookie):
		return codes.InvalidArgument, ReasonInvalidZookie, nil
	case errors.Is(err, tuples.ErrRevisionInFuture):
		return codes.InvalidArgument, ReasonZookieInFuture, nil
	case errors.As(err, &perr):
		md := map[string]string{}
		if perr.Precondition.Op == tuples.MustNotMatch {
			md["tuple"] = perr.Tuple.String()
		}
		return codes.FailedPrecondition, ReasonPreconditionFailed, md
	case errors.As(err, &aerr):
		return codes.AlreadyExists, ReasonAlreadyExists, map[string]string{"tuple": aerr.Tuple.String()}
	case errors.Is(err, tuples.ErrRevisionExpired):
		return codes.FailedPrecondition, ReasonZookieExpired, nil
	case errors.Is(err, tuples.ErrNoSchema):
		return codes.FailedPrecondition, ReasonNoSchema, nil
	case errors.Is(err, tuples.ErrWriteOutcomeUnknown):
		return codes.Unavailable, ReasonWriteOutcomeUnknown, nil
	case errors.Is(err, tuples.ErrStorageFull):
		return codes.ResourceExhausted, ReasonStorageFull, nil
	case errors.Is(err, tuples.ErrStorageError):
		return codes.Unavailable, ReasonStorageError, nil
	case errors.Is(err, tuples.ErrClosed), errors.Is(err, tuples.ErrUnavailable):
		return codes.Unavailable, ReasonUnavailable, nil
	case errors.Is(err, context.Canceled):
		return codes.Canceled, ReasonCanceled, nil
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, ReasonDeadline, nil
	}
	// A gRPC status error (a stream's Recv after the client canceled, a malformed
	// message) keeps its code and reason.
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown && st.Code() != codes.OK {
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				return st.Code(), info.GetReason(), info.GetMetadata()
			}
		}
		switch st.Code() {
		case codes.Canceled:
			return codes.Canceled, ReasonCanceled, nil
		case codes.DeadlineExceeded:
			return codes.DeadlineExceeded, ReasonDeadline, nil
		case codes.Unavailable:
			return codes.Unavailable, ReasonUnavailable, nil
		case codes.InvalidArgument:
			return codes.InvalidArgument, ReasonInvalidRequest, nil
		case codes.ResourceExhausted:
			return codes.ResourceExhausted, ReasonLimitExceeded, nil
		}
	}
	return codes.Internal, ReasonInternal, nil
}

// toStatus converts any error a handler meets into the gRPC status error it returns:
// the code and reason from classify, the domain error's text as the message, and a
// google.rpc.ErrorInfo detail. Internal errors are logged and returned as "internal
// error" without their cause. A status error passes through unchanged.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code, reason, md := classify(err)
	msg := err.Error()
	if code == codes.Internal {
		log.ErrorContext(ctx, "internal error", "err", err)
		msg = "internal error"
	}
	return newStatus(code, reason, msg, md)
}

// newStatus builds a status error with an ErrorInfo detail. Values echoed in msg
// and md are cut to maxEchoBytes with their length stated, and invalid UTF-8 in them
// is escaped, so that the detail always marshals (echo.go).
func newStatus(code codes.Code, reason, msg string, md map[string]string) error {
	st := status.New(code, cutEchoes(UserMessage(msg)))
	for k, v := range md {
		if v == "" {
			delete(md, k)
			continue
		}
		md[k] = echoValue(v)
	}
	if len(md) == 0 {
		md = nil
	}
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// statusError is an error the server itself raises with a chosen code and reason
// (bad cursors, unknown RPCs, auth); toStatus keeps its classification.
type statusError struct {
	code     codes.Code
	reason   string
	msg      string
	metadata map[string]string
}

func (e *statusError) Error() string { return e.msg }

// errorf returns a *statusError.
func errorf(code codes.Code, reason, msg string, md map[string]string) error {
	return &statusError{code: code, reason: reason, msg: msg, metadata: md}
}

// limitError reports a request over one of the server's limits (INVALID_ARGUMENT).
type limitError struct {
	field string
	msg   string
}

func (e *limitError) Error() string { return e.msg }

// fieldError is an error about one request field (a zookie that does not decode),
// whose class is err's; classify adds the field to the metadata.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

func (e *fieldError) Unwrap() error { return e.err }
