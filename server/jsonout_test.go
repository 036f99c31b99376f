package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestRESTJSONSpelling writes over REST with the short operation names, then watches
// over REST: the changes print the operations as requests spell them (TOUCH, DELETE)
// and the tuples without empty fields, as export does; no response says OPERATION_.
func TestRESTJSONSpelling(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	write := func(body string) string {
		t.Helper()
		code, b := env.post(t, "/v1/tuples/write", body)
		require.Equal(t, http.StatusOK, code, string(b))
		var resp struct{ WrittenAt string }
		require.NoError(t, json.Unmarshal(b, &resp))
		require.NotEmpty(t, resp.WrittenAt, string(b))
		return resp.WrittenAt
	}
	from := write(`{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f0"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}}]}`)
	write(`{"updates":[{"operation":"CREATE","tuple":{"object":{"type":"flow","id":"f1"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}}]}`)
	write(`{"updates":[{"operation":"DELETE","tuple":{"object":{"type":"flow","id":"f0"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}}]}`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.baseURL+"/v1/watch", strings.NewReader(`{"from":"`+from+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if env.token != "" {
		req.Header.Set("Authorization", "Bearer "+env.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var watched strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for !strings.Contains(watched.String(), `"DELETE"`) {
		require.True(t, sc.Scan(), "watch ended early: %v (so far %s)", sc.Err(), watched.String())
		watched.WriteString(sc.Text() + "\n")
	}
	require.Contains(t, watched.String(), `{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}},"revision":`)
	require.Contains(t, watched.String(), `{"operation":"DELETE","tuple":{"object":{"type":"flow","id":"f0"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}},"revision":`)

	code, exported := env.post(t, "/v1/tuples/export", `{}`)
	require.Equal(t, http.StatusOK, code, string(exported))
	require.Contains(t, string(exported), `{"object":{"type":"flow","id":"f1"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}`)

	// A denied check still says so; the counts of a delete are printed even when 0.
	code, b := env.post(t, "/v1/check", checkJSON("flow:f0", "execute", "user:anne", ""))
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"allowed":false`)
	code, b = env.post(t, "/v1/tuples/delete", `{"filter":{"objectType":"flow","objectId":"nope"}}`)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"deleted":0`)
	for _, out := range []string{watched.String(), string(exported), string(b)} {
		require.NotContains(t, out, "OPERATION_")
		require.NotContains(t, out, `"relation":""`)
	}
}
