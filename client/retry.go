package client

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// retryAttempts bounds the retries of one call on UNAVAILABLE; the delays between
// them grow from retryFirst to retryMax, so a call waits a few seconds at most for a
// server that is restarting before it fails.
const (
	retryAttempts = 8
	retryFirst    = 50 * time.Millisecond
	retryMax      = 1 * time.Second
)

// retrySafe tells whether a unary call may be sent again after UNAVAILABLE: every
// read (DiffSchema writes nothing), and a Write whose updates are all TOUCH or
// DELETE (applying one twice leaves the same tuples; CREATE would fail the second
// time, so it is not retried) and that has no preconditions (a precondition may hold
// the first time only).
func retrySafe(method string, req any) bool {
	switch method {
	case relatav1.PermissionService_Check_FullMethodName,
		relatav1.PermissionService_CheckBulk_FullMethodName,
		relatav1.PermissionService_Expand_FullMethodName,
		relatav1.SchemaService_ReadSchema_FullMethodName,
		relatav1.SchemaService_DiffSchema_FullMethodName,
		relatav1.SchemaService_ListSchemaRevisions_FullMethodName:
		return true
	case relatav1.RelationshipService_Write_FullMethodName:
		w, ok := req.(*relatav1.WriteRequest)
		if !ok || len(w.GetPreconditions()) > 0 {
			return false
		}
		for _, u := range w.GetUpdates() {
			if u.GetOperation() == relatav1.Operation_OPERATION_CREATE {
				return false
			}
		}
		return true
	}
	return false
}

// retryUnavailable is the unary interceptor that retries safe calls on UNAVAILABLE
// (a server starting, restarting or briefly unreachable) with backoff, until ctx ends.
func retryUnavailable(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if !retrySafe(method, req) || ctx.Value(noRetryKey{}) != nil {
		return err
	}
	delay := retryFirst
	for attempt := 1; attempt < retryAttempts && status.Code(err) == codes.Unavailable; attempt++ {
		cc.Connect() // leave the reconnect backoff now rather than later
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
		err = invoker(ctx, method, req, reply, cc, opts...)
	}
	return err
}
