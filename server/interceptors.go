package server

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Interceptors, outermost first: recover (a panic becomes INTERNAL), log (one slog
// record per call: Debug when it succeeds, Warn for server-side failures, Info for
// client errors), auth (the preshared key).

// authExempt reports whether a method is served without a token: health checks.
func authExempt(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/")
}

// authenticate checks the "authorization: Bearer KEY" metadata against the preshared key.
func (s *Server) authenticate(ctx context.Context, method string) error {
	if s.cfg.PresharedKey == "" || authExempt(method) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return s.checkBearer(md.Get("authorization"))
}

// checkBearer checks the values of an authorization header (gRPC metadata or HTTP)
// against the preshared key, which must be set.
func (s *Server) checkBearer(vals []string) error {
	if len(vals) == 0 {
		return newStatus(codes.Unauthenticated, ReasonUnauthenticated,
			"server: missing bearer token: send \"authorization: Bearer KEY\"", nil)
	}
	token, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(vals[0], "bearer ")
	}
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.cfg.PresharedKey)) != 1 {
		return newStatus(codes.Unauthenticated, ReasonUnauthenticated, "server: invalid bearer token", nil)
	}
	return nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.authenticate(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// panicError turns a recovered panic into INTERNAL and logs its stack.
func (s *Server) panicError(ctx context.Context, method string, p any) error {
	s.log.ErrorContext(ctx, "panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
	return newStatus(codes.Internal, ReasonInternal, "internal error", nil)
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

// logCall writes one record for a finished call.
func (s *Server) logCall(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK:
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unavailable:
		level = slog.LevelWarn
	default:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
	}
	s.log.LogAttrs(ctx, level, "rpc", attrs...)
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logCall(ss.Context(), info.FullMethod, start, err)
	return err
}
