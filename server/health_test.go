package server

import (
	"net/http"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
)

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, b := doHTTP(t, req)
	return resp.StatusCode, string(b)
}

// TestDiskFull: with the disk below the store's reserve, writes are RESOURCE_EXHAUSTED
// STORAGE_FULL (REST 507) naming the cause, checks and /healthz go on, /readyz says
// not ready; once space is freed writes succeed and /readyz is ready again.
func TestDiskFull(t *testing.T) {
	env := newTestEnv(t)
	code, body := getStatus(t, env.baseURL+"/readyz")
	require.Equal(t, 503, code, "no schema yet")
	require.Contains(t, body, "no schema loaded")
	env.seed(t)
	code, body = getStatus(t, env.baseURL+"/readyz")
	require.Equal(t, 200, code, body)

	mem := env.fs.(*vfs.MemFS)
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 20, TotalBytes: 64 << 20, UsedBytes: 63 << 20})
	_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{
		Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: tupleproto.Tuple(mustTuple(t, "tenant:acme#viewer@user:zed")),
	}}})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Equal(t, relatav1.ErrorReason_STORAGE_FULL.String(), errorInfo(err))
	require.Contains(t, status.Convert(err).Message(), "bytes free")
	code, raw := env.post(t, "/v1/tuples/write",
		`{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"tenant","id":"acme"},"relation":"viewer","subject":{"object":{"type":"user","id":"zed"}}}}]}`)
	require.Equal(t, http.StatusInsufficientStorage, code, string(raw))
	require.Contains(t, string(raw), relatav1.ErrorReason_STORAGE_FULL.String())

	resp, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	require.True(t, resp.GetAllowed())
	code, _ = getStatus(t, env.baseURL+"/healthz")
	require.Equal(t, 200, code)
	code, body = getStatus(t, env.baseURL+"/readyz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "NOT_READY")
	require.Contains(t, body, "below the reserve")

	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 60 << 20, TotalBytes: 64 << 20, UsedBytes: 4 << 20})
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "tenant:acme#viewer@user:zed")
	code, body = getStatus(t, env.baseURL+"/readyz")
	require.Equal(t, 200, code, body)
}
