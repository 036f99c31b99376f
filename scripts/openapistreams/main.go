// Command openapistreams rewrites the streaming responses of the generated OpenAPI v2
// document to what the REST gateway sends. protoc-gen-openapiv2 describes each line
// of a stream as grpc-gateway's {"result": message, "error": status} envelope; Relata's
// gateway sends the bare message on each line (design §6) and only an error mid-stream
// as {"error": status}. scripts/genproto.sh runs it after buf generate:
//
//	go run ./scripts/openapistreams FILE.swagger.json
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
		fmt.Fprintln(os.Stderr, "usage: openapistreams FILE.swagger.json")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapistreams:", err)
		os.Exit(1)
	}
}

// rewrite rewrites the file in place.
func rewrite(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(in, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	paths, _ := doc["paths"].(map[string]any)
	n := 0
	for route, methods := range paths {
		for _, op := range methods.(map[string]any) {
			ok, _ := op.(map[string]any)["responses"].(map[string]any)["200"].(map[string]any)
			schema, _ := ok["schema"].(map[string]any)
			title, _ := schema["title"].(string)
			if !strings.HasPrefix(title, "Stream result of ") {
				continue
			}
			result, _ := schema["properties"].(map[string]any)["result"].(map[string]any)
			if result == nil {
				return fmt.Errorf("%s: %s: a stream without a result property", path, route)
			}
			ok["schema"] = result
			ok["description"] = "A stream of " + strings.TrimPrefix(title, "Stream result of ") +
				" messages as newline-delimited JSON, one message a line. An error after the first line ends the stream with a line {\"error\": Status}."
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no streaming response found", path)
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
