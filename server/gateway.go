package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// httpHandler builds the REST side: the grpc-gateway mux (registered on conn, a
// loopback connection to our own gRPC server, because the in-process registration
// cannot stream), GET /healthz and GET /openapi.json.
//
// JSON uses the proto's lowerCamelCase names, prints false/0/"" fields (so a denied
// check says "allowed":false), and rejects unknown fields with 400. Streams are
// newline-delimited JSON, one response message a line, as design §6 shows them
// (`{"object":…,"lookedUpAt":…,"cursor":…}`, not grpc-gateway's {"result":{…}}
// envelope); an error mid-stream is an {"error":{…}} line. gRPC codes map to HTTP statuses as grpc-gateway does
// (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, NOT_FOUND 404, ALREADY_EXISTS 409,
// RESOURCE_EXHAUSTED 429), except FAILED_PRECONDITION, which is 412.
func (s *Server) httpHandler(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &compactJSONPb{runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithErrorHandler(httpErrorHandler),
	)
	for name, register := range map[string]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		"PermissionService":   relatav1.RegisterPermissionServiceHandler,
		"RelationshipService": relatav1.RegisterRelationshipServiceHandler,
		"SchemaService":       relatav1.RegisterSchemaServiceHandler,
	} {
		if err := register(ctx, gw, conn); err != nil {
			return nil, fmt.Errorf("server: registering the %s gateway: %w", name, err)
		}
	}
	limit := int64(s.cfg.MaxMessageBytes)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(relatav1.OpenAPI())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			_, m := runtime.MarshalerForRequest(gw, r)
			runtime.HTTPError(r.Context(), gw, m, w, r, newStatus(codes.InvalidArgument, ReasonLimitExceeded,
				fmt.Sprintf("server: request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, limit),
				map[string]string{"field": "body"}))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		gw.ServeHTTP(w, r)
	})
	return mux, nil
}

// serveHealthz answers 200 {"status":"SERVING"} while the store answers, else 503.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if _, err := s.cfg.Store.HeadRevision(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "NOT_SERVING", "error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "SERVING"})
}

// httpErrorHandler is grpc-gateway's default error handler with FAILED_PRECONDITION
// answered as 412 Precondition Failed instead of 400.
func httpErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.FailedPrecondition {
		w = &statusOverride{ResponseWriter: w, code: http.StatusPreconditionFailed}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// statusOverride replaces the status code written through it.
type statusOverride struct {
	http.ResponseWriter
	code int
}

func (w *statusOverride) WriteHeader(int) { w.ResponseWriter.WriteHeader(w.code) }

func (w *statusOverride) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// compactJSONPb is the gateway's JSONPb marshaler with its output compacted: protojson
// varies its white space from build to build on purpose, and REST callers deserve
// stable bytes.
type compactJSONPb struct {
	runtime.JSONPb
}

// Marshal marshals v and removes insignificant white space. A stream chunk, which the
// gateway hands over as {"result": message}, is marshalled as the bare message.
func (j *compactJSONPb) Marshal(v any) ([]byte, error) {
	if chunk, ok := v.(map[string]any); ok && len(chunk) == 1 {
		if m, ok := chunk["result"].(proto.Message); ok {
			v = m
		}
	}
	b, err := j.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b, nil
	}
	return buf.Bytes(), nil
}
