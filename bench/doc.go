// Package bench is Relata's load generator: the workload behind `relata bench`.
//
// It generates a deterministic (seeded) data set on the default model
// (schema/models/workflow-platform.zed): a tree of tenants, users with tenant roles,
// nested custom roles, workspaces with per-role flow levels, flows with owners, shares,
// versions and catalog entries, and a share of flows with per-flow grant and deny
// overrides. The generator keeps the structures it generated, and Truth evaluates the
// model's rules over them directly (plain Go, written from the schema's comment, not
// from the engine), so every answer the server gives can be verified.
//
// Run loads the data set into a server over gRPC (the Import RPC, or Write batches when
// the server has no Import) and runs the phases: Check at several concurrencies with
// minimize_latency and fully_consistent, CheckBulk, LookupResources, LookupSubjects, a
// mixed phase with writes, and a caveated phase: per-flow grants under the flow-overrides
// model's from_network IP allow-list caveat, added beside the data set for that phase
// only, and checks that give the caller's address as context (see caveats.go). Each phase is bounded in time and in operations and
// reports throughput, latency percentiles, errors and mismatches; a mismatch is a
// failure, reported with its request.
package bench
