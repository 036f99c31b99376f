package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server/writes"
	"github.com/relata/relata/tuples"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo the server returns.
const ErrorDomain = "relata"

// classify maps a domain error to its code, reason and extra metadata. It is the one
// table of error classes; add a case here for every new typed domain error.
func classify(err error) (codes.Code, relatav1.ErrorReason, map[string]string) {
	var (
		verr  *tuples.ValidationError
		perr  *tuples.PreconditionError
		aerr  *tuples.AlreadyExistsError
		serr  *statusError
		lerr  *limitError
		wlerr *writes.LimitError
		berr  *bodyError
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
	if code, reason, md := classifyDomain(err); reason != relatav1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return code, reason, md
	}
	switch {
	case errors.As(err, &serr):
		return serr.code, serr.reason, serr.metadata
	case errors.As(err, &lerr):
		return codes.InvalidArgument, relatav1.ErrorReason_LIMIT_EXCEEDED, map[string]string{"field": lerr.field}
	case errors.As(err, &wlerr):
		return codes.InvalidArgument, relatav1.ErrorReason_LIMIT_EXCEEDED, map[string]string{"field": wlerr.Field}
	case errors.As(err, &berr):
		return codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST, map[string]string{"field": berr.field, "value": berr.value}
	case errors.Is(err, tuples.ErrNotSupported):
		return codes.InvalidArgument, relatav1.ErrorReason_NOT_SUPPORTED, nil
	case errors.As(err, &verr):
		return codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST, map[string]string{"field": verr.Field, "value": verr.Value}
	case errors.Is(err, tuples.ErrInvalidZookie):
		return codes.InvalidArgument, relatav1.ErrorReason_INVALID_ZOOKIE, nil
	case errors.Is(err, tuples.ErrRevisionInFuture):
		return codes.InvalidArgument, relatav1.ErrorReason_ZOOKIE_IN_FUTURE, nil
	case errors.As(err, &perr):
		md := map[string]string{}
		if perr.Precondition.Op == tuples.MustNotMatch {
			md["tuple"] = perr.Tuple.String()
		}
		return codes.FailedPrecondition, relatav1.ErrorReason_PRECONDITION_FAILED, md
	case errors.As(err, &aerr):
		return codes.AlreadyExists, relatav1.ErrorReason_TUPLE_ALREADY_EXISTS, map[string]string{"tuple": aerr.Tuple.String()}
	case errors.Is(err, tuples.ErrRevisionExpired):
		return codes.FailedPrecondition, relatav1.ErrorReason_ZOOKIE_EXPIRED, nil
	case errors.Is(err, tuples.ErrNoSchema):
		return codes.FailedPrecondition, relatav1.ErrorReason_NO_SCHEMA, nil
	case errors.Is(err, tuples.ErrWriteOutcomeUnknown):
		return codes.Unavailable, relatav1.ErrorReason_WRITE_OUTCOME_UNKNOWN, nil
	case errors.Is(err, tuples.ErrStorageFull):
		return codes.ResourceExhausted, relatav1.ErrorReason_STORAGE_FULL, nil
	case errors.Is(err, tuples.ErrStorageError):
		return codes.Unavailable, relatav1.ErrorReason_STORAGE_ERROR, nil
	case errors.Is(err, tuples.ErrClosed), errors.Is(err, tuples.ErrUnavailable):
		return codes.Unavailable, relatav1.ErrorReason_UNAVAILABLE, nil
	case errors.Is(err, context.Canceled):
		return codes.Canceled, relatav1.ErrorReason_CANCELED, nil
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, relatav1.ErrorReason_DEADLINE_EXCEEDED, nil
	}
	// A gRPC status error (a stream's Recv after the client canceled, a malformed
	// message) keeps its code and reason.
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown && st.Code() != codes.OK {
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				return st.Code(), relatav1.ErrorReason(relatav1.ErrorReason_value[info.GetReason()]), info.GetMetadata()
			}
		}
		switch st.Code() {
		case codes.Canceled:
			return codes.Canceled, relatav1.ErrorReason_CANCELED, nil
		case codes.DeadlineExceeded:
			return codes.DeadlineExceeded, relatav1.ErrorReason_DEADLINE_EXCEEDED, nil
		case codes.Unavailable:
			return codes.Unavailable, relatav1.ErrorReason_UNAVAILABLE, nil
		case codes.InvalidArgument:
			return codes.InvalidArgument, relatav1.ErrorReason_INVALID_REQUEST, nil
		case codes.ResourceExhausted:
			return codes.ResourceExhausted, relatav1.ErrorReason_LIMIT_EXCEEDED, nil
		}
	}
	return codes.Internal, relatav1.ErrorReason_INTERNAL, nil
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
func newStatus(code codes.Code, reason relatav1.ErrorReason, msg string, md map[string]string) error {
	st := status.New(code, cutEchoes(msg))
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
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason.String(), Domain: ErrorDomain, Metadata: md}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// statusError is an error the server itself raises with a chosen code and reason
// (bad cursors, unknown RPCs, auth); toStatus keeps its classification.
type statusError struct {
	code     codes.Code
	reason   relatav1.ErrorReason
	msg      string
	metadata map[string]string
}

func (e *statusError) Error() string { return e.msg }

// errorf returns a *statusError.
func errorf(code codes.Code, reason relatav1.ErrorReason, msg string, md map[string]string) error {
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
