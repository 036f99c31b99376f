package main

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// dial starts the stand-in server on a loopback port and returns a connection to it.
func dial(t *testing.T, results int) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newServer(results)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestLookupSendsTheCannedResultsInBatches(t *testing.T) {
	for _, tc := range []struct {
		results, messages int
	}{
		{0, 0}, {1, 1}, {1000, 1}, {1001, 2}, {1146, 2}, {5446, 6},
	} {
		conn := dial(t, tc.results)
		stream, err := relatav1.NewPermissionServiceClient(conn).LookupResources(context.Background(),
			&relatav1.LookupResourcesRequest{ResourceType: "flow", Permission: "execute", BatchResults: true})
		require.NoError(t, err)
		ids := map[string]bool{}
		messages := 0
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			messages++
			require.NotEmpty(t, m.GetResults(), "a batched message holds at least one result")
			require.LessOrEqual(t, len(m.GetResults()), maxBatch)
			for _, r := range m.GetResults() {
				require.Equal(t, "flow", r.GetObject().GetType())
				ids[r.GetObject().GetId()] = true
			}
		}
		require.Len(t, ids, tc.results, "distinct ids for --results %d", tc.results)
		require.Equal(t, tc.messages, messages, "messages for --results %d", tc.results)
	}
}

func TestCheckAndReflection(t *testing.T) {
	conn := dial(t, 1)
	perms := relatav1.NewPermissionServiceClient(conn)
	for id, want := range map[string]bool{"u1": true, "u12": false} {
		resp, err := perms.Check(context.Background(), &relatav1.CheckRequest{
			Object: &relatav1.ObjectRef{Type: "flow", Id: "f"}, Permission: "execute",
			Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: id}}})
		require.NoError(t, err)
		require.Equal(t, want, resp.GetAllowed(), "subject %s", id)
	}

	// peerbench loads the descriptors of these three services by reflection.
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	require.NoError(t, err)
	defer stream.CloseSend()
	for _, svc := range []string{"relata.v1.PermissionService", "relata.v1.RelationshipService", "relata.v1.SchemaService"} {
		require.NoError(t, stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc}}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		require.Nil(t, resp.GetErrorResponse(), "reflection of %s", svc)
		require.NotEmpty(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto(), "reflection of %s", svc)
	}
}

func TestImportCountsAndSchemaAccepts(t *testing.T) {
	conn := dial(t, 0)
	_, err := relatav1.NewSchemaServiceClient(conn).WriteSchema(context.Background(), &relatav1.WriteSchemaRequest{Schema: "definition user {}"})
	require.NoError(t, err)

	stream, err := relatav1.NewRelationshipServiceClient(conn).Import(context.Background())
	require.NoError(t, err)
	tuple := &relatav1.Tuple{Object: &relatav1.ObjectRef{Type: "flow", Id: "f"}, Relation: "owner",
		Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "u"}}}
	for _, n := range []int{3, 0, 5} {
		msg := &relatav1.ImportRequest{}
		for range n {
			msg.Tuples = append(msg.Tuples, tuple)
		}
		require.NoError(t, stream.Send(msg))
	}
	resp, err := stream.CloseAndRecv()
	require.NoError(t, err)
	require.Equal(t, uint64(8), resp.GetImported())
}
