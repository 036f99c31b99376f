package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples/pebblestore"
)

// openAPIDoc is the part of the OpenAPI v2 document the tests read.
type openAPIDoc struct {
	Produces            []string
	Security            []map[string][]string
	SecurityDefinitions map[string]struct{ Type, In, Name string }
	Paths               map[string]map[string]openAPIOp
	Definitions         map[string]openAPISchema
}

type openAPIOp struct {
	OperationID string
	Produces    []string
	Security    *[]map[string][]string // nil: the document's
	Responses   map[string]struct {
		Schema     *openAPISchema
		ErrorLine  *openAPISchema `json:"x-error-line"`
		Definition string
	}
}

type openAPISchema struct {
	Ref        string `json:"$ref"`
	Type       string
	Properties map[string]json.RawMessage
}

// resolve follows a $ref to its definition.
func (d *openAPIDoc) resolve(t *testing.T, s openAPISchema) openAPISchema {
	if s.Ref == "" {
		return s
	}
	def, ok := d.Definitions[strings.TrimPrefix(s.Ref, "#/definitions/")]
	require.True(t, ok, "no definition %s", s.Ref)
	return def
}

// requireShape checks that body (one JSON value) is an object whose top-level fields
// are all properties of schema, and that it has at least one of them.
func (d *openAPIDoc) requireShape(t *testing.T, route string, s openAPISchema, body []byte) {
	t.Helper()
	s = d.resolve(t, s)
	if s.Type == "string" {
		return
	}
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m), "%s: %s", route, body)
	if len(s.Properties) == 0 {
		return // a free-form object (the document itself)
	}
	require.NotEmpty(t, m, "%s: an empty object", route)
	for k := range m {
		require.Contains(t, s.Properties, k, "%s: field %q is not documented: %s", route, k, body)
	}
}

// TestOpenAPIServed checks the OpenAPI document a real server serves at
// /openapi.json against the server: every documented route is served and every
// served route is documented, and one real request per route answers with a
// documented status, media type and shape (top-level fields), the token required
// exactly where the document says.
func TestOpenAPIServed(t *testing.T) {
	dir := t.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "db"), nil)
	require.NoError(t, err)
	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>Relata</title>"))
	})
	env := startEnv(t, vfs.Default, store, func(c *Config) { c.PresharedKey = "sekret"; c.Console = console })
	z := env.seed(t)
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:f3#granted@user:eve") // for the watch from z

	get := func(route, token string) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, env.baseURL+route, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return doHTTP(t, req)
	}
	resp, raw := get("/openapi.json", "sekret")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(raw, &doc))

	// The bearer scheme, applied by default.
	require.Equal(t, "apiKey", doc.SecurityDefinitions["bearer"].Type)
	require.Equal(t, "header", doc.SecurityDefinitions["bearer"].In)
	require.Equal(t, "Authorization", doc.SecurityDefinitions["bearer"].Name)
	require.Equal(t, []map[string][]string{{"bearer": {}}}, doc.Security)

	// Documented routes = served routes. The gateway serves a route for every
	// relata.v1 method but the client-streaming ones (Import), named
	// Service_Method in the document.
	documented := map[string]string{} // "METHOD path" → operationId
	byID := map[string]string{}
	for path, methods := range doc.Paths {
		for m, op := range methods {
			route := strings.ToUpper(m) + " " + path
			documented[route] = op.OperationID
			byID[op.OperationID] = route
		}
	}
	served := map[string]bool{}
	for pattern := range env.srv.plainRoutes(nil) {
		served[pattern] = true
	}
	for name, svc := range env.srv.grpc.GetServiceInfo() {
		short, ok := strings.CutPrefix(name, "relata.v1.")
		if !ok {
			continue
		}
		for _, m := range svc.Methods {
			route, ok := byID[short+"_"+m.Name]
			if m.IsClientStream {
				require.False(t, ok, "%s.%s is gRPC-only but documented", short, m.Name)
				continue
			}
			require.True(t, ok, "%s.%s has no route in the document", short, m.Name)
			served[route] = true
		}
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(served)), slices.Collect(maps.Keys(documented)))

	// One real request per route.
	schemaJSON, err := json.Marshal(testSchema)
	require.NoError(t, err)
	requests := map[string]string{ // "METHOD path" → body
		"POST /v1/check":            `{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}`,
		"POST /v1/check/bulk":       `{"items":[{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}]}`,
		"POST /v1/expand":           `{"object":{"type":"flow","id":"f1"},"relation":"execute"}`,
		"POST /v1/lookup/resources": `{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}`,
		"POST /v1/lookup/subjects":  `{"object":{"type":"flow","id":"f1"},"permission":"execute","subjectType":"user"}`,
		"POST /v1/tuples/write":     `{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f2"},"relation":"granted","subject":{"object":{"type":"user","id":"dan"}}}}]}`,
		"POST /v1/tuples/read":      `{"filter":{"objectType":"flow"}}`,
		"POST /v1/tuples/delete":    `{"filter":{"objectType":"flow","objectId":"f2"}}`,
		"POST /v1/tuples/export":    `{}`,
		"POST /v1/watch":            `{"from":"` + z + `"}`,
		"POST /v1/schema/write":     `{"schema":` + string(schemaJSON) + `}`,
		"POST /v1/schema/read":      `{}`,
		"POST /v1/schema/diff":      `{"schema":` + string(schemaJSON) + `}`,
		"POST /v1/schema/revisions": `{}`,
		"POST /v1/admin/backup":     `{"dir":"` + filepath.Join(dir, "backup") + `"}`,
		"GET /healthz":              "",
		"GET /readyz":               "",
		"GET /openapi.json":         "",
		"GET /metrics":              "",
		"GET /ui/":                  "",
	}
	routes := slices.Sorted(maps.Keys(documented))
	for _, route := range routes {
		body, ok := requests[route]
		require.True(t, ok, "%s is documented but this test sends it no request: add one", route)
		method, path, _ := strings.Cut(route, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		produces := op.Produces
		if produces == nil {
			produces = doc.Produces
		}
		open := op.Security != nil && len(*op.Security) == 0
		t.Run(route, func(t *testing.T) {
			send := func(token string) (*http.Response, []byte) {
				req, err := http.NewRequest(method, env.baseURL+path, strings.NewReader(body))
				require.NoError(t, err)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				if route != "POST /v1/watch" {
					return doHTTP(t, req)
				}
				// Watch never ends: read its first line.
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
				if !errors.Is(err, io.EOF) || len(line) == 0 { // an error body has no newline
					require.NoError(t, err)
				}
				return resp, line
			}

			resp, b := send("sekret")
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
			ok, documented := op.Responses["200"]
			require.True(t, documented)
			mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			require.NoError(t, err)
			require.Contains(t, produces, mt)
			require.NotNil(t, ok.Schema)
			switch {
			case mt == "application/x-ndjson":
				require.Equal(t, "application/x-ndjson", produces[0], "a stream's first media type")
				require.NotNil(t, ok.ErrorLine, "a stream documents its error line")
				lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				require.NotEmpty(t, lines)
				for _, line := range lines {
					doc.requireShape(t, route, *ok.Schema, []byte(line))
				}
			case mt == "application/json":
				doc.requireShape(t, route, *ok.Schema, b)
			default:
				require.NotEmpty(t, b)
			}

			// The token: required unless the document says the route is open.
			resp, b = send("")
			if open {
				require.NotEqual(t, http.StatusUnauthorized, resp.StatusCode, "%s", b)
				return
			}
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", b)
			errResp, ok2 := op.Responses["default"]
			require.True(t, ok2, "the 401 is documented (default)")
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &m))
			if _, wrapped := m["error"]; wrapped {
				doc.requireShape(t, route, *errResp.Schema, b)
			} else {
				doc.requireShape(t, route, openAPISchema{Ref: "#/definitions/Status"}, b)
			}
		})
	}

	// Errors have the documented shapes: a unary route's is a Status; a stream's before
	// its first line is {"error": Status} (StreamError) with the error's status.
	code, b := env.post(t, "/v1/check", `{}`)
	require.Equal(t, http.StatusBadRequest, code)
	doc.requireShape(t, "POST /v1/check", *doc.Paths["/v1/check"]["post"].Responses["default"].Schema, b)
	code, b = env.post(t, "/v1/tuples/read", `{"filter":{"objectType":"nope"}}`)
	require.Equal(t, http.StatusNotFound, code)
	streamErr := *doc.Paths["/v1/tuples/read"]["post"].Responses["default"].Schema
	require.Equal(t, "#/definitions/StreamError", streamErr.Ref)
	doc.requireShape(t, "POST /v1/tuples/read", streamErr, b)
	var wrapped struct{ Error json.RawMessage }
	require.NoError(t, json.Unmarshal(b, &wrapped))
	doc.requireShape(t, "POST /v1/tuples/read", openAPISchema{Ref: "#/definitions/Status"}, wrapped.Error)

	// An empty stream is an empty newline-delimited JSON body.
	req, err := http.NewRequest(http.MethodPost, env.baseURL+"/v1/tuples/read", strings.NewReader(`{"filter":{"objectType":"flow","objectId":"none"}}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sekret")
	resp, b = doHTTP(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	require.Empty(t, b)
}
