package relatav1_test

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestOpenAPIRoutes pins the REST routes: every RPC but Import is a POST,
// beside GET /healthz, /readyz, /openapi.json, /metrics and the console's /ui/.
func TestOpenAPIRoutes(t *testing.T) {
	var doc struct {
		Info  struct{ Title string }
		Paths map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(relatav1.OpenAPI(), &doc))
	require.Equal(t, "Relata API", doc.Info.Title)
	var routes []string
	for path, methods := range doc.Paths {
		for m := range methods {
			routes = append(routes, m+" "+path)
		}
	}
	sort.Strings(routes)
	require.Equal(t, []string{
		"get /healthz",
		"get /metrics",
		"get /openapi.json",
		"get /readyz",
		"get /ui/",
		"post /v1/admin/backup",
		"post /v1/check",
		"post /v1/check/bulk",
		"post /v1/expand",
		"post /v1/lookup/resources",
		"post /v1/lookup/subjects",
		"post /v1/schema/diff",
		"post /v1/schema/read",
		"post /v1/schema/revisions",
		"post /v1/schema/write",
		"post /v1/tuples/delete",
		"post /v1/tuples/export",
		"post /v1/tuples/read",
		"post /v1/tuples/write",
		"post /v1/watch",
	}, routes)
}

// TestOpenAPIStreams checks that streaming routes are described as the gateway sends
// them: one bare response message a line, not grpc-gateway's {"result": …} envelope.
func TestOpenAPIStreams(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Produces  []string
			Responses map[string]struct {
				Description string
				Schema      map[string]any
			}
		}
	}
	require.NoError(t, json.Unmarshal(relatav1.OpenAPI(), &doc))
	for route, want := range map[string]string{
		"/v1/lookup/resources": "LookupResourcesResponse",
		"/v1/lookup/subjects":  "LookupSubjectsResponse",
		"/v1/tuples/read":      "ReadResponse",
		"/v1/tuples/export":    "ExportResponse",
		"/v1/watch":            "WatchResponse",
	} {
		op := doc.Paths[route]["post"]
		ok := op.Responses["200"]
		require.Equal(t, "#/definitions/"+want, ok.Schema["$ref"], route)
		require.Contains(t, ok.Description, "newline-delimited JSON", route)
		require.Equal(t, []string{"application/x-ndjson", "application/json"}, op.Produces, route)
		require.Equal(t, "#/definitions/StreamError", op.Responses["default"].Schema["$ref"], route)
	}
	require.NotContains(t, string(relatav1.OpenAPI()), "Stream result of")
}
