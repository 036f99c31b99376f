package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// gatewayHeader is the metadata key by which the REST gateway's loopback calls prove
// they come from it (its value is a per-server random secret), so that a REST
// request gets one access line (the HTTP layer's), not two.
const gatewayHeader = "x-relata-gateway"

// reasonOf returns the ErrorInfo reason of a status error, "" when it has none.
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// gatewayMetadata is the metadata the REST gateway sends with each loopback call: the
// request id and the gateway secret.
func (s *Server) gatewayMetadata(ctx context.Context, r *http.Request) metadata.MD {
	md := metadata.Pairs(requestIDKey, RequestID(ctx), gatewayHeader, s.gatewaySecret)
	// W3C trace context travels on to the gRPC server's tracing (tracing.go).
	for _, h := range []string{"traceparent", "tracestate"} {
		if v := r.Header.Get(h); v != "" && len(v) <= 512 {
			md.Set(h, v)
		}
	}
	return md
}

// accessLog wraps the REST handler: it gives each request its id (the caller's
// X-Request-Id when sane, else a new one), returns it in the X-Request-Id response
// header, and writes one access line when the request ends (Info; Debug for
// /healthz and /metrics, which probes and scrapers call all the time).
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := s.requestIDs.id(r.Header.Get(requestIDHeader))
		ctx := withRequestInfo(r.Context(), id)
		w.Header().Set(requestIDHeader, id)
		rw := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rw, r.WithContext(ctx))
		level := slog.LevelInfo
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/metrics":
			level = slog.LevelDebug
		case rw.code >= 500:
			level = slog.LevelWarn
		}
		if !s.log.Enabled(ctx, level) {
			return
		}
		code := rw.code
		if code == 0 {
			code = http.StatusOK
		}
		s.log.LogAttrs(ctx, level, "http",
			slog.String("method", r.Method+" "+r.URL.Path),
			slog.Int("code", code),
			slog.Duration("duration", time.Since(start)),
			slog.String("key_id", KeyID(ctx)),
			slog.String("request_id", id))
	})
}

// statusRecorder remembers the status code written through it. It keeps Flush (the
// gateway streams) through Unwrap, which http.ResponseController follows, and
// directly for callers that assert http.Flusher.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// GRPCLogger adapts log to grpclog.LoggerV2, so that the lines gRPC and grpc-gateway
// write through grpclog (e.g. the gateway's "Failed to send response chunk" when a
// REST client goes away mid-stream) are structured slog records like the others:
// gRPC's Info as Debug, Warning as Warn, Error as Error. Install it once per process
// with grpclog.SetLoggerV2 before serving.
func GRPCLogger(log *slog.Logger) grpclog.LoggerV2 {
	return grpcSlog{log.With("component", "grpc")}
}

type grpcSlog struct{ l *slog.Logger }

func (g grpcSlog) out(level slog.Level, msg string) {
	g.l.Log(context.Background(), level, msg)
}

func (g grpcSlog) Info(args ...any)   { g.out(slog.LevelDebug, fmt.Sprint(args...)) }
func (g grpcSlog) Infoln(args ...any) { g.out(slog.LevelDebug, fmt.Sprint(args...)) }
func (g grpcSlog) Infof(format string, args ...any) {
	g.out(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g grpcSlog) Warning(args ...any)   { g.out(slog.LevelWarn, fmt.Sprint(args...)) }
func (g grpcSlog) Warningln(args ...any) { g.out(slog.LevelWarn, fmt.Sprint(args...)) }
func (g grpcSlog) Warningf(format string, args ...any) {
	g.out(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (g grpcSlog) Error(args ...any)   { g.out(slog.LevelError, fmt.Sprint(args...)) }
func (g grpcSlog) Errorln(args ...any) { g.out(slog.LevelError, fmt.Sprint(args...)) }
func (g grpcSlog) Errorf(format string, args ...any) {
	g.out(slog.LevelError, fmt.Sprintf(format, args...))
}
func (g grpcSlog) Fatal(args ...any) {
	g.out(slog.LevelError, fmt.Sprint(args...))
	os.Exit(1) // grpclog's contract
}
func (g grpcSlog) Fatalln(args ...any)               { g.Fatal(args...) }
func (g grpcSlog) Fatalf(format string, args ...any) { g.Fatal(fmt.Sprintf(format, args...)) }
func (g grpcSlog) V(l int) bool                      { return l <= 0 && g.l.Enabled(context.Background(), slog.LevelDebug) }
