// Package relatav1 holds the relata.v1 API: the protobuf messages, the gRPC services,
// the grpc-gateway REST handlers and the OpenAPI v2 document, all generated from the
// .proto files beside them by scripts/genproto.sh (do not edit the generated files).
// This file is hand-written.
package relatav1

import _ "embed"

//go:embed relata.swagger.json
var openAPI []byte

// OpenAPI returns the generated OpenAPI v2 (Swagger) document of the REST API as JSON.
// The caller must not modify the returned slice.
func OpenAPI() []byte { return openAPI }
