package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// TestTracing checks over a real server that a check carrying a W3C traceparent (gRPC
// metadata or the REST header) produces, in that trace, the RPC span, a relata.check
// span under it with what the engine did, and store-read spans under that.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	env := newTestEnv(t, func(c *Config) { c.TracerProvider = tp })
	env.seed(t)

	spansOf := func(traceID string) map[string]tracetest.SpanStub {
		out := map[string]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID().String() == traceID {
				if _, dup := out[s.Name]; !dup {
					out[s.Name] = s
				}
			}
		}
		return out
	}
	attrs := func(s tracetest.SpanStub) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}

	for _, tc := range []struct {
		name, traceID, parent string
		call                  func(traceparent string)
	}{
		{
			name: "gRPC metadata", traceID: "4bf92f3577b34da6a3ce929d0e0e4736", parent: "00f067aa0ba902b7",
			call: func(tp string) {
				ctx := metadata.AppendToOutgoingContext(env.ctx(), "traceparent", tp)
				resp, err := env.perms.Check(ctx, checkReq("flow:f1", "execute", "user:anne"))
				require.NoError(t, err)
				require.True(t, resp.GetAllowed())
			},
		},
		{
			name: "REST header", traceID: "0af7651916cd43dd8448eb211c80319c", parent: "b7ad6b7169203331",
			call: func(tp string) {
				req, err := http.NewRequest(http.MethodPost, env.baseURL+"/v1/check", strings.NewReader(checkJSON("flow:f1", "execute", "user:anne", "")))
				require.NoError(t, err)
				req.Header.Set("traceparent", tp)
				resp, body := doHTTP(t, req)
				require.Equal(t, 200, resp.StatusCode, "%s", body)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			tc.call("00-" + tc.traceID + "-" + tc.parent + "-01")
			spans := spansOf(tc.traceID)
			rpc, ok := spans["relata.v1.PermissionService/Check"]
			require.True(t, ok, "spans: %v", exp.GetSpans().Snapshots())
			require.Equal(t, tc.parent, rpc.Parent.SpanID().String(), "the RPC span continues the caller's trace")
			require.True(t, rpc.Parent.IsRemote())
			require.Equal(t, trace.SpanKindServer, rpc.SpanKind)

			chk, ok := spans["relata.check"]
			require.True(t, ok)
			require.Equal(t, rpc.SpanContext.SpanID(), chk.Parent.SpanID())
			a := attrs(chk)
			require.Equal(t, "execute", a["relata.permission"])
			require.Equal(t, "flow", a["relata.object_type"])
			require.Equal(t, "true", a["relata.allowed"])
			require.NotEmpty(t, a["relata.depth"])
			require.NotEmpty(t, a["relata.dispatches"])
			require.Contains(t, a, "relata.cache_hit")

			var reads int
			for _, s := range exp.GetSpans() {
				if s.SpanContext.TraceID().String() == tc.traceID && strings.HasPrefix(s.Name, "relata.store.") && s.Parent.SpanID() == chk.SpanContext.SpanID() {
					reads++
				}
			}
			if a["relata.reads"] != "0" {
				require.Positive(t, reads, "store reads are spans under the check")
			}
		})
	}
}

// TestTracingOff: without a TracerProvider, a traceparent changes nothing and readers
// are not wrapped.
func TestTracingOff(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	require.Nil(t, env.srv.tracer)
	ctx := metadata.AppendToOutgoingContext(env.ctx(), "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := env.perms.Check(ctx, checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	require.True(t, resp.GetAllowed())
	r, err := env.store.ReaderAt(t.Context(), 1)
	require.NoError(t, err)
	require.Same(t, r, env.srv.traced(ctx, r))
}
