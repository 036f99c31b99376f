package cli

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

func TestParseOTLPEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in        string
		hostport  string
		plaintext bool
		err       string
	}{
		{in: "127.0.0.1:4317", hostport: "127.0.0.1:4317", plaintext: true},
		{in: "localhost:4317", hostport: "localhost:4317", plaintext: true},
		{in: "collector.example:4317", hostport: "collector.example:4317"},
		{in: "http://collector.example:4317", hostport: "collector.example:4317", plaintext: true},
		{in: "https://127.0.0.1:4317", hostport: "127.0.0.1:4317"},
		{in: "collector.example", err: "no port"},
		{in: "grpc://x:1", err: "unknown scheme"},
		{in: "http://x:1/v1/traces", err: "not a URL of a host and port"},
	} {
		hp, plain, err := parseOTLPEndpoint(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.hostport, hp)
		require.Equal(t, tc.plaintext, plain, tc.in)
	}
}

// collector is an OTLP/gRPC trace collector that keeps the trace ids and span names
// it receives.
type collector struct {
	collectorpb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string // trace id (hex) → span names
}

func (c *collector) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				id := hex.EncodeToString(s.GetTraceId())
				c.spans[id] = append(c.spans[id], s.GetName())
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func (c *collector) names(traceID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.spans[traceID]...)
}

// TestServeOTLP runs `relata serve --otlp-endpoint` against a real OTLP/gRPC
// collector: a REST check carrying a traceparent reaches it as spans of that trace
// (the RPC, the check, store reads) once serve stops and flushes.
func TestServeOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	col := &collector{spans: map[string][]string{}}
	gs := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(gs, col)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	p := startServe(t, "--data-dir", t.TempDir(), "--otlp-endpoint", lis.Addr().String())
	require.Contains(t, p.logs.String(), "tracing on")
	base := "http://" + p.httpAddr
	writeTuples(t, base, "", "tenant:acme#developer@user:anne", "workspace:ops#tenant@tenant:acme", "flow:f1#workspace@workspace:ops")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := `{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}},"consistency":{"fullyConsistent":true}}`
	code, body := httpDoHeaders(t, "POST", base+"/v1/check", req, map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"allowed":true`)
	require.Equal(t, 0, p.stop(), "serve stops cleanly and flushes its spans")
	names := strings.Join(col.names(traceID), " ")
	require.Contains(t, names, "relata.v1.PermissionService/Check")
	require.Contains(t, names, "relata.check")
	require.Contains(t, names, "relata.store.")
}

func httpDoHeaders(t *testing.T, method, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
