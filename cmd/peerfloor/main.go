// Command peerfloor is a stand-in Relata server that does no work: its Check answers at
// once, its LookupResources sends the same canned --results flow ids in batched
// messages of up to 1,000 (as the real server does for batch_results), its Import
// decodes and counts the tuples and stores nothing, and its WriteSchema accepts
// anything. It serves gRPC reflection, so ../shared/tools/peerbench (which builds
// dynamic messages from the server's descriptors) drives it like a real server.
//
// It measures the floor a load generator puts under its own figures on this machine:
// what a call costs the client (building the request, decoding the answer) and the
// transport, with the server's share near zero. peerbench's answers against it are
// all "mismatches" (the ids are not the ground truth); the rates and latencies are the
// point. BENCHMARKS.md, "The peer workload's floor", has the commands and figures.
//
//	peerfloor --addr 127.0.0.1:50999 --results 1146
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// maxBatch is the most results one batched message holds (the server's maxBatchResults).
const maxBatch = 1000

func main() {
	addr := flag.String("addr", "127.0.0.1:50999", "gRPC listen address")
	results := flag.Int("results", 1146, "flow ids every LookupResources answers (peerbench's 230k workload averages 1,146; its 1M one 5,446)")
	flag.Parse()
	if *results < 0 {
		fmt.Fprintln(os.Stderr, "peerfloor: --results must be 0 or more")
		os.Exit(2)
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerfloor:", err)
		os.Exit(1)
	}
	slog.Info("peerfloor listening", "addr", lis.Addr().String(), "results", *results)
	if err := newServer(*results).Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "peerfloor:", err)
		os.Exit(1)
	}
}

// newServer returns a gRPC server with the stand-in services and reflection registered.
func newServer(results int) *grpc.Server {
	// 64 stream workers, as the real server runs (server.streamWorkers): without them
	// each call starts a goroutine whose stack grows, and the stand-in costs more a
	// call than the server it stands in for.
	g := grpc.NewServer(grpc.NumStreamWorkers(64))
	relatav1.RegisterPermissionServiceServer(g, &permissions{batches: cannedBatches(results)})
	// peerbench asks reflection for these services' files, so they must be registered.
	relatav1.RegisterSchemaServiceServer(g, schemas{})
	relatav1.RegisterRelationshipServiceServer(g, relationships{})
	reflection.Register(g)
	return g
}

// cannedBatches builds n flow results in messages of at most maxBatch, each with a
// zookie and a cursor as the real server's batched messages carry.
func cannedBatches(n int) []*relatav1.LookupResourcesResponse {
	var out []*relatav1.LookupResourcesResponse
	for i := range n {
		if i%maxBatch == 0 {
			out = append(out, &relatav1.LookupResourcesResponse{LookedUpAt: "GAE", Cursor: fmt.Sprintf("c%d", i)})
		}
		last := out[len(out)-1]
		id := fmt.Sprintf("tenant%d_flow%d", i%110, i)
		last.Results = append(last.Results, &relatav1.LookupResourcesResult{Object: &relatav1.ObjectRef{Type: "flow", Id: id}})
	}
	return out
}

// permissions answers Check and LookupResources without reading anything.
type permissions struct {
	relatav1.UnimplementedPermissionServiceServer
	batches []*relatav1.LookupResourcesResponse
}

// Check answers allowed for subjects whose id has an even length: a fixed, cheap rule.
func (p *permissions) Check(_ context.Context, req *relatav1.CheckRequest) (*relatav1.CheckResponse, error) {
	return &relatav1.CheckResponse{Allowed: len(req.GetSubject().GetObject().GetId())%2 == 0, CheckedAt: "GAE"}, nil
}

// LookupResources sends the canned batches, whatever the request.
func (p *permissions) LookupResources(_ *relatav1.LookupResourcesRequest, stream grpc.ServerStreamingServer[relatav1.LookupResourcesResponse]) error {
	for _, b := range p.batches {
		if err := stream.Send(b); err != nil {
			return err
		}
	}
	return nil
}

// schemas accepts every schema and keeps none: peerbench's load writes one first.
type schemas struct {
	relatav1.UnimplementedSchemaServiceServer
}

// WriteSchema answers success without parsing the schema.
func (schemas) WriteSchema(context.Context, *relatav1.WriteSchemaRequest) (*relatav1.WriteSchemaResponse, error) {
	return &relatav1.WriteSchemaResponse{WrittenAt: "GAE"}, nil
}

// relationships counts imported tuples and stores nothing.
type relationships struct {
	relatav1.UnimplementedRelationshipServiceServer
}

// Import receives (decodes) every message and answers how many tuples they held.
func (relationships) Import(stream grpc.ClientStreamingServer[relatav1.ImportRequest, relatav1.ImportResponse]) error {
	var n uint64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&relatav1.ImportResponse{Imported: n, WrittenAt: "GAE"})
		}
		if err != nil {
			return err
		}
		n += uint64(len(m.GetTuples()))
	}
}
