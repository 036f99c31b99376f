package client

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// DefaultReadyTimeout bounds how long the first call of a Client waits for the server
// to accept its connection (see WithReadyTimeout).
const DefaultReadyTimeout = 5 * time.Second

// reconnectBackoff is how the connection retries a server that went away: from 100ms
// up to 2s between attempts, so that a restarted server is found again quickly (gRPC's
// default grows to two minutes).
var reconnectBackoff = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 20 * time.Second,
})

// WithReadyTimeout sets how long the first call waits for the server to become
// reachable (a server still starting, or started after the client); default
// DefaultReadyTimeout. The caller's context bounds the wait too. 0 does not wait: the
// first call fails at once when the server is not there (and is retried as any call).
func WithReadyTimeout(d time.Duration) Option { return func(o *options) { o.readyTimeout = &d } }

// readiness makes the first calls of a client wait until its connection is ready.
// Once a connection has been ready, calls no longer wait: a server that goes away
// later is the retries' business.
type readiness struct {
	conn    *grpc.ClientConn
	timeout time.Duration
	ready   atomic.Bool
}

// noRetryKey marks a call whose readiness wait timed out: it is made once, so that it
// fails with the connection's error without a further retry delay.
type noRetryKey struct{}

// wait blocks until the connection is ready, the timeout passes (it returns ctx
// marked not to retry) or ctx ends (it returns ctx's error).
func (r *readiness) wait(ctx context.Context) (context.Context, error) {
	if r.ready.Load() || r.conn == nil {
		return ctx, nil
	}
	if r.timeout <= 0 {
		r.ready.Store(true)
		return ctx, nil
	}
	wctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.conn.Connect()
	for {
		s := r.conn.GetState()
		if s == connectivity.Ready {
			r.ready.Store(true)
			return ctx, nil
		}
		if s == connectivity.Shutdown {
			return ctx, errors.New("the client is closed")
		}
		if !r.conn.WaitForStateChange(wctx, s) {
			if err := ctx.Err(); err != nil {
				return ctx, err
			}
			return context.WithValue(ctx, noRetryKey{}, true), nil
		}
	}
}

// unary is the interceptor that waits for readiness before a unary call.
func (r *readiness) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, err := r.wait(ctx)
	if err != nil {
		return err
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// stream is the interceptor that waits for readiness before a stream starts.
func (r *readiness) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, err := r.wait(ctx)
	if err != nil {
		return nil, err
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// WaitReady blocks until the server accepts the client's connection or ctx ends (an
// explicit form of the wait every client does before its first call, with no bound
// but ctx).
func (c *Client) WaitReady(ctx context.Context) error {
	c.conn.Connect()
	for {
		s := c.conn.GetState()
		if s == connectivity.Ready {
			c.ready.ready.Store(true)
			return nil
		}
		if s == connectivity.Shutdown {
			return errors.New("the client is closed")
		}
		if !c.conn.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
}
