// Command openapipatch completes the generated OpenAPI v2 document with what the REST
// gateway does and protoc-gen-openapiv2 cannot know. scripts/genproto.sh runs it after
// buf generate:
//
//	go run ./scripts/openapipatch FILE.swagger.json
//
// It
//   - rewrites the streaming responses: protoc-gen-openapiv2 describes each line of a
//     stream as grpc-gateway's {"result": message, "error": status} envelope; Relata's
//     gateway sends the bare message on each line as application/x-ndjson,
//     an error after the first line as a line {"error": Status}, and an error before
//     the first line as that same {"error": Status} body with the error's HTTP status;
//   - declares the bearer security scheme ("Authorization: Bearer KEY") and applies it
//     to every route but the health checks and the web console;
//   - adds the routes the server serves beside the gateway: GET /healthz, /readyz,
//     /openapi.json, /metrics and /ui/.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapipatch FILE.swagger.json")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapipatch:", err)
		os.Exit(1)
	}
}

// obj is a JSON object of the document.
type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/definitions/" + name} }

// rewrite rewrites the file in place.
func rewrite(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc obj
	if err := json.Unmarshal(in, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := patch(doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

func patch(doc obj) error {
	paths, _ := doc["paths"].(obj)
	defs, _ := doc["definitions"].(obj)
	if paths == nil || defs == nil {
		return fmt.Errorf("no paths or definitions")
	}
	if _, ok := defs["Status"]; !ok {
		return fmt.Errorf("no Status definition")
	}
	defs["StreamError"] = obj{
		"type":        "object",
		"description": "How a stream reports an error: as the whole body (with the error's HTTP status) when it fails before its first message, else as its last line (the status stays 200).",
		"properties":  obj{"error": ref("Status")},
	}
	if err := patchStreams(paths); err != nil {
		return err
	}

	doc["securityDefinitions"] = obj{"bearer": obj{
		"type": "apiKey",
		"in":   "header",
		"name": "Authorization",
		"description": `"Bearer KEY", where KEY is the server's --preshared-key, a key of its --keys-file, ` +
			`or a JWT of its OIDC issuer. Needed when the server has credentials configured; a call without a valid ` +
			`one is 401 UNAUTHENTICATED, a call outside the key's scopes 403 MISSING_SCOPE.`,
	}}
	doc["security"] = []any{obj{"bearer": []any{}}}

	defs["HealthStatus"] = obj{
		"type": "object",
		"properties": obj{
			"status": obj{"type": "string", "enum": []any{"SERVING", "NOT_SERVING"}},
			"error":  obj{"type": "string", "description": "Why the store does not answer (with NOT_SERVING)."},
		},
	}
	defs["ReadyStatus"] = obj{
		"type": "object",
		"properties": obj{
			"status": obj{"type": "string", "enum": []any{"READY", "NOT_READY"}},
			"error":  obj{"type": "string", "description": "Why the server is not ready (with NOT_READY): shutting down, no schema loaded, the store failing, writes unable to commit."},
		},
	}
	open := []any{} // no security requirement
	errResp := obj{"description": "An error (401 without a valid token).", "schema": ref("Status")}
	paths["/healthz"] = obj{"get": obj{
		"operationId": "Health",
		"summary":     "Liveness: 200 while the store answers, else 503. Needs no token.",
		"tags":        []any{"Operations"},
		"produces":    []any{"application/json"},
		"security":    open,
		"responses": obj{
			"200": obj{"description": "The store answers.", "schema": ref("HealthStatus")},
			"503": obj{"description": "The store does not answer.", "schema": ref("HealthStatus")},
		},
	}}
	paths["/readyz"] = obj{"get": obj{
		"operationId": "Ready",
		"summary":     "Readiness: 200 when the server can serve (store answering, a schema loaded, writes able to commit, not shutting down), else 503. Needs no token.",
		"tags":        []any{"Operations"},
		"produces":    []any{"application/json"},
		"security":    open,
		"responses": obj{
			"200": obj{"description": "Ready.", "schema": ref("ReadyStatus")},
			"503": obj{"description": "Not ready, and why.", "schema": ref("ReadyStatus")},
		},
	}}
	paths["/openapi.json"] = obj{"get": obj{
		"operationId": "OpenAPI",
		"summary":     "This document.",
		"tags":        []any{"Operations"},
		"produces":    []any{"application/json"},
		"responses": obj{
			"200":     obj{"description": "The OpenAPI v2 document of the REST API.", "schema": obj{"type": "object"}},
			"default": errResp,
		},
	}}
	paths["/metrics"] = obj{"get": obj{
		"operationId": "Metrics",
		"summary":     "Prometheus metrics (relata_*, Pebble's, the Go runtime's) in the text exposition format.",
		"tags":        []any{"Operations"},
		"produces":    []any{"text/plain"},
		"responses": obj{
			"200":     obj{"description": "The metrics.", "schema": obj{"type": "string"}},
			"default": errResp,
		},
	}}
	paths["/ui/"] = obj{"get": obj{
		"operationId": "Console",
		"summary":     "The web console (when the server runs with --ui, the default; 404 otherwise). Its assets need no token; it calls the API with the token its user gives it.",
		"tags":        []any{"Operations"},
		"produces":    []any{"text/html"},
		"security":    open,
		"responses": obj{
			"200": obj{"description": "The console's page.", "schema": obj{"type": "string"}},
			"404": obj{"description": "The console is off."},
		},
	}}
	tags, _ := doc["tags"].([]any)
	doc["tags"] = append(tags, obj{"name": "Operations", "description": "Health, readiness, this document, metrics and the web console."})
	return nil
}

// patchStreams describes the streaming routes as the gateway serves them.
func patchStreams(paths obj) error {
	n := 0
	for route, methods := range paths {
		for _, op := range methods.(obj) {
			op := op.(obj)
			responses := op["responses"].(obj)
			ok, _ := responses["200"].(obj)
			schema, _ := ok["schema"].(obj)
			title, _ := schema["title"].(string)
			if !strings.HasPrefix(title, "Stream result of ") {
				continue
			}
			result, _ := schema["properties"].(obj)["result"].(obj)
			if result == nil {
				return fmt.Errorf("%s: a stream without a result property", route)
			}
			ok["schema"] = result
			ok["description"] = "A stream of " + strings.TrimPrefix(title, "Stream result of ") +
				" messages as newline-delimited JSON (application/x-ndjson), one message a line. An error after the first line ends the stream with a line {\"error\": Status} (StreamError)."
			ok["x-error-line"] = ref("StreamError")
			op["produces"] = []any{"application/x-ndjson", "application/json"} // json: an error before the first line
			responses["default"] = obj{
				"description": "An error before the first line: the error's HTTP status, and the body {\"error\": Status} as application/json.",
				"schema":      ref("StreamError"),
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no streaming response found")
	}
	return nil
}
