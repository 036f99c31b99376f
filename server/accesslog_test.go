package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the JSON log records whose msg is msg.
func (s *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.b.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestAccessLog(t *testing.T) {
	var logs syncBuffer
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	writeKeysFile(t, keys, [3]string{"flow-runtime", "reader-key-secret", "read, write, schema"})
	env := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.KeysFile = keys
	})
	env.token = "reader-key-secret"
	env.seed(t)

	// gRPC: the caller's request id is kept and returned in the response header.
	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(env.ctx(), "x-request-id", "req-grpc-1")
	_, err := env.perms.Check(ctx, checkReq("flow:f1", "execute", "user:anne"), grpc.Header(&header))
	require.NoError(t, err)
	require.Equal(t, []string{"req-grpc-1"}, header.Get("x-request-id"))
	// Calls that fail before any message still carry it: a refused credential, a bad
	// request, and a stream that fails.
	for name, call := range map[string]func(ctx context.Context, h *metadata.MD) error{
		"unauthenticated": func(_ context.Context, h *metadata.MD) error {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "req-fail-1", "authorization", "Bearer wrong")
			_, err := env.perms.Check(ctx, checkReq("flow:f1", "execute", "user:anne"), grpc.Header(h))
			return err
		},
		"unknown permission": func(ctx context.Context, h *metadata.MD) error {
			_, err := env.perms.Check(ctx, checkReq("flow:f1", "nosuchperm", "user:anne"), grpc.Header(h))
			return err
		},
		"failing stream": func(ctx context.Context, h *metadata.MD) error {
			stream, err := env.perms.LookupResources(ctx, &relatav1.LookupResourcesRequest{ResourceType: "nosuchtype", Permission: "execute",
				Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}})
			require.NoError(t, err)
			_, err = stream.Recv()
			*h, _ = stream.Header()
			return err
		},
	} {
		var h metadata.MD
		ctx := metadata.AppendToOutgoingContext(env.ctx(), "x-request-id", "req-fail-1")
		require.Error(t, call(ctx, &h), name)
		require.Equal(t, []string{"req-fail-1"}, h.Get("x-request-id"), name)
	}
	// Without one the server makes one up.
	header = nil
	_, err = env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"), grpc.Header(&header))
	require.NoError(t, err)
	require.Len(t, header.Get("x-request-id"), 1)
	require.Len(t, header.Get("x-request-id")[0], 24)
	// A client error: the line has the reason but not the message (it quotes tuples).
	_, err = env.perms.Check(env.ctx(), checkReq("flow:f1", "nosuchperm", "user:secretive"))
	require.Error(t, err)

	// REST: X-Request-Id in the response, one line (the HTTP layer's, not the
	// gateway's gRPC call too).
	req, err := http.NewRequest(http.MethodPost, env.baseURL+"/v1/check", strings.NewReader(checkJSON("flow:f1", "execute", "user:anne", "")))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer reader-key-secret")
	req.Header.Set("X-Request-Id", "req-rest-1")
	resp, body := doHTTP(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "req-rest-1", resp.Header.Get("X-Request-Id"))
	code, _ := env.postWithToken(t, "/v1/check", checkJSON("flow:f1", "execute", "user:anne", ""), "wrong")
	require.Equal(t, http.StatusUnauthorized, code)

	rpcs := env.logsFor(t, &logs, "rpc")
	byID := map[string]map[string]any{}
	for _, r := range rpcs {
		byID[r["request_id"].(string)] = r
	}
	line := byID["req-grpc-1"]
	require.NotNil(t, line, "%v", rpcs)
	require.Equal(t, "INFO", line["level"])
	require.Equal(t, "/relata.v1.PermissionService/Check", line["method"])
	require.Equal(t, "OK", line["code"])
	require.Equal(t, "flow-runtime", line["key_id"])
	require.Contains(t, line, "duration")
	var failed map[string]any
	for _, r := range rpcs {
		if r["code"] == "NotFound" {
			failed = r
		}
	}
	require.NotNil(t, failed, "%v", rpcs)
	require.Equal(t, "INFO", failed["level"])
	require.NotEmpty(t, failed["reason"])
	for _, r := range env.logsFor(t, &logs, "") {
		b, _ := json.Marshal(r)
		require.NotContains(t, string(b), "secretive", "no tuple data at info")
		require.NotContains(t, string(b), "reader-key-secret", "never the key")
	}
	for _, r := range rpcs {
		require.NotEqual(t, "req-rest-1", r["request_id"], "a REST request gets one line")
	}
	https := env.logsFor(t, &logs, "http")
	var rest, unauth map[string]any
	for _, r := range https {
		switch r["code"] {
		case float64(200):
			if r["request_id"] == "req-rest-1" {
				rest = r
			}
		case float64(401):
			unauth = r
		}
	}
	require.NotNil(t, rest, "%v", https)
	require.Equal(t, "POST /v1/check", rest["method"])
	require.Equal(t, "flow-runtime", rest["key_id"])
	require.NotNil(t, unauth, "%v", https)
	require.Equal(t, "", unauth["key_id"])
}

// logsFor returns the records with msg (every record when msg is ""), after the
// server wrote them: the access line follows the response, so it waits for it.
func (e *testEnv) logsFor(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	// Stopping the server finishes every in-flight request and its access line.
	require.NoError(t, e.stop())
	if msg == "" {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		var out []map[string]any
		for line := range strings.Lines(logs.b.String()) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m))
			out = append(out, m)
		}
		return out
	}
	return logs.records(t, msg)
}
