package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// Interceptors, outermost first: recover (a panic becomes INTERNAL), metrics
// (metrics.go), log (the request id, and one access line per call: Info, Warn for
// server-side failures), auth (credentials and scopes, auth.go), malformed messages
// (codec.go). For unary calls metrics and log are one interceptor (observeUnary),
// and so are auth and malformed messages (guardUnary).

// panicError turns a recovered panic into INTERNAL and logs its stack.
func (s *Server) panicError(ctx context.Context, method string, p any) error {
	s.log.ErrorContext(ctx, "panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
	return newStatus(codes.Internal, relatav1.ErrorReason_INTERNAL, "internal error", nil)
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, s.panicError(ctx, info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.panicError(ss.Context(), info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}

// logCall writes the access line of a finished call: Info, or Warn for server-side
// failures, with method, code, reason, duration, key id and request id. Error
// messages may quote tuples, so they are logged only at Debug.
func (s *Server) logCall(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unavailable:
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
		slog.String("key_id", KeyID(ctx)),
		slog.String("request_id", RequestID(ctx)),
	}
	if err != nil {
		if r := reasonOf(err); r != "" {
			attrs = append(attrs, slog.String("reason", r))
		}
		if s.log.Enabled(ctx, slog.LevelDebug) {
			attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
		}
	}
	s.log.LogAttrs(ctx, level, "rpc", attrs...)
}

// startCall gives a call its request id (the caller's x-request-id metadata when
// sane, else a new one) and reports whether the call comes from our own REST gateway,
// whose HTTP layer writes the access line instead.
func (s *Server) startCall(ctx context.Context) (context.Context, string, bool) {
	// ValueFromIncomingContext looks up one key; FromIncomingContext would copy the
	// whole metadata map on every call to read two.
	var supplied string
	if v := metadata.ValueFromIncomingContext(ctx, requestIDKey); len(v) > 0 {
		supplied = v[0]
	}
	fromGateway := false
	if v := metadata.ValueFromIncomingContext(ctx, gatewayHeader); len(v) == 1 {
		fromGateway = subtle.ConstantTimeCompare([]byte(v[0]), []byte(s.gatewaySecret)) == 1
	}
	id := s.requestIDs.id(supplied)
	return withRequestInfo(ctx, id), id, fromGateway
}

// observeUnary is the metrics and log interceptors of a unary call in one (one
// level of grpc's interceptor chain, whose every level costs a closure a call):
// the request id (response header), then the call, then its access line and its
// metrics.
func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ctx, id, fromGateway := s.startCall(ctx)
	// The id goes in the response header only: grpc-go sends a header frame of its
	// own before the status when header metadata is set, so a call that fails
	// without a message still carries it. A trailer copy would cost every call a
	// second HPACK encoding of a unique value.
	_ = grpc.SetHeader(ctx, metadata.MD{requestIDKey: {id}})
	resp, err := handler(ctx, req)
	took := time.Since(start)
	if !fromGateway {
		s.logCall(ctx, info.FullMethod, start, err)
	}
	s.metrics.observeRPC(info.FullMethod, err, took)
	return resp, err
}

// guardUnary is the auth interceptor and the malformed-message check of a unary call
// in one: credentials and scopes first, so that a caller without them learns
// nothing about its message (auth.go, codec.go).
func (s *Server) guardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if err := badMessage(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// clientGone classifies the error of a stream whose client canceled it or whose
// deadline passed: a Send or Recv then fails with a bare transport status (CANCELED,
// UNAVAILABLE, or a stream a client closed early looking like the end of its input),
// which is the client's doing, not the server's. Errors that carry a reason are kept.
func clientGone(ctx context.Context, err error) error {
	if err == nil || reasonOf(err) != "" {
		return err
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return newStatus(codes.Canceled, relatav1.ErrorReason_CANCELED, "the client canceled the call", nil)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, relatav1.ErrorReason_DEADLINE_EXCEEDED, "the call's deadline passed", nil)
	}
	return err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx, id, fromGateway := s.startCall(ss.Context())
	_ = ss.SetHeader(metadata.MD{requestIDKey: {id}})
	err := handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	err = clientGone(ss.Context(), err)
	if !fromGateway {
		s.logCall(ctx, info.FullMethod, start, err)
	}
	return err
}
