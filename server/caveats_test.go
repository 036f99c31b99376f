package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCaveatsOverREST writes a caveated schema and tuples over REST and checks with
// and without the context the caveat needs.
func TestCaveatsOverREST(t *testing.T) {
	env := newTestEnv(t)
	code, body := env.post(t, "/v1/schema/write", `{"schema":"definition user {}\ncaveat on_net(ip ipaddress, cidr string) { ip.in_cidr(cidr) }\ndefinition flow {\n relation runner: user with on_net | user with expiration\n permission run = runner\n}"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = env.post(t, "/v1/tuples/write", `{"updates":[
		{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"runner","subject":{"object":{"type":"user","id":"anne"}},"caveat":{"name":"on_net","context":{"cidr":"10.0.0.0/8"}}}},
		{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"runner","subject":{"object":{"type":"user","id":"old"}},"expiresAt":"2023-12-01T00:00:00Z"}}]}`)
	require.Equal(t, http.StatusOK, code, "%s", body)

	check := func(ctx string) map[string]any {
		req := `{"object":{"type":"flow","id":"f1"},"permission":"run","subject":{"object":{"type":"user","id":"anne"}},"consistency":{"fullyConsistent":true}` + ctx + `}`
		code, body := env.post(t, "/v1/check", req)
		require.Equal(t, http.StatusOK, code, "%s", body)
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		return m
	}
	m := check("")
	require.Equal(t, false, m["allowed"])
	require.Equal(t, true, m["conditional"])
	require.Equal(t, []any{"ip"}, m["missingContext"])
	m = check(`,"context":{"ip":"10.1.2.3"}`)
	require.Equal(t, true, m["allowed"])
	require.NotEqual(t, true, m["conditional"])
	m = check(`,"context":{"ip":"11.1.2.3"}`)
	require.NotEqual(t, true, m["allowed"])
	require.NotEqual(t, true, m["conditional"])

	// A context value of the wrong type is INVALID_ARGUMENT naming the caveat.
	code, body = env.post(t, "/v1/check", `{"object":{"type":"flow","id":"f1"},"permission":"run","subject":{"object":{"type":"user","id":"anne"}},"context":{"ip":"nope"}}`)
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, string(body), "INVALID_CAVEAT_CONTEXT")
	require.Contains(t, string(body), "on_net")

	// A caveat where none is allowed is FAILED_PRECONDITION.
	code, body = env.post(t, "/v1/tuples/write", `{"updates":[{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"runner","subject":{"object":{"type":"user","id":"bob"}}}}]}`)
	require.Equal(t, http.StatusPreconditionFailed, code, "%s", body)
	require.Contains(t, string(body), "SUBJECT_TYPE_NOT_ALLOWED")

	// Reads return the caveat; the expired tuple is invisible.
	code, body = env.post(t, "/v1/tuples/read", `{"filter":{"objectType":"flow"},"consistency":{"fullyConsistent":true}}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Contains(t, string(body), `"caveat":{"name":"on_net","context":{"cidr":"10.0.0.0/8"}}`)
	require.NotContains(t, string(body), `"old"`)
}
