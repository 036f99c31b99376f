// Package server exposes Relata over gRPC and REST: the relata.v1 PermissionService,
// RelationshipService and SchemaService, gRPC health and reflection, and a
// grpc-gateway REST API (POST /v1/..., GET /healthz, GET /openapi.json) that talks to
// the gRPC server over a loopback client connection.
//
// Handlers are thin: validate the request, convert proto to domain types
// (convert.go), call the engine or the store, convert back. Every error leaves
// through one function, toStatus (errors.go), which assigns the gRPC code and a
// machine-readable google.rpc.ErrorInfo reason; REST maps the code to an HTTP status.
//
// A Server is built with New, which binds both listeners, and run with Serve(ctx),
// which returns after a graceful shutdown once ctx ends. The caller owns the store
// and closes it after Serve returns.
package server
