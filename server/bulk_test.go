package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

func protoTuple(t *testing.T, s string) *relatav1.Tuple {
	t.Helper()
	tup, err := tuples.ParseTuple(s)
	require.NoError(t, err)
	return tupleproto.Tuple(tup)
}

// grants returns n tuples flow:fI#granted@user:uI from first on.
func grants(t *testing.T, first, n int) []*relatav1.Tuple {
	out := make([]*relatav1.Tuple, n)
	for i := range out {
		out[i] = protoTuple(t, fmt.Sprintf("flow:f%d#granted@user:u%d", first+i, first+i))
	}
	return out
}

// bulkErrorInfo returns the code and ErrorInfo of a status error.
func bulkErrorInfo(t *testing.T, err error) (codes.Code, string, *errdetails.ErrorInfo) {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "%v", err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), st.Message(), info
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
	return 0, "", nil
}

func TestImport(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)

	tests := []struct {
		name      string
		batches   [][]*relatav1.Tuple
		imported  uint64
		code      codes.Code
		msg       string
		errIndex  string
		errCommit string
	}{
		{name: "empty stream", imported: 0},
		{name: "two batches", batches: [][]*relatav1.Tuple{grants(t, 0, 2000), grants(t, 2000, 500)}, imported: 2500},
		{
			name:     "duplicates and live tuples are fine (touch)",
			batches:  [][]*relatav1.Tuple{grants(t, 0, 10), grants(t, 5, 10)},
			imported: 20,
		},
		{
			name:      "unknown relation after a committed batch",
			batches:   [][]*relatav1.Tuple{grants(t, 0, 2000), append(grants(t, 2000, 500), protoTuple(t, "flow:x#nope@user:anne"))},
			code:      codes.NotFound,
			msg:       "tuples[2500]: schema: type flow has no relation or permission nope",
			errIndex:  "2500",
			errCommit: "2000",
		},
		{
			name:      "subject type not allowed",
			batches:   [][]*relatav1.Tuple{{protoTuple(t, "flow:x#granted@tenant:acme")}},
			code:      codes.FailedPrecondition,
			msg:       "tuples[0]: schema: subject tenant:acme is not allowed on flow#granted",
			errIndex:  "0",
			errCommit: "0",
		},
		{
			name:      "malformed tuple",
			batches:   [][]*relatav1.Tuple{grants(t, 0, 3), {{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Relation: "granted"}}},
			code:      codes.InvalidArgument,
			msg:       `invalid tuples[3].subject "": required`,
			errIndex:  "3",
			errCommit: "3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := env.rels.Import(env.ctx())
			require.NoError(t, err)
			for _, b := range tt.batches {
				if err := stream.Send(&relatav1.ImportRequest{Tuples: b}); err != nil {
					break // the server ended the call; CloseAndRecv says why
				}
			}
			resp, err := stream.CloseAndRecv()
			if tt.msg == "" {
				require.NoError(t, err)
				require.Equal(t, tt.imported, resp.GetImported())
				head, err := env.store.HeadRevision(env.ctx())
				require.NoError(t, err)
				require.Equal(t, env.srv.Zookie(head), resp.GetWrittenAt())
				return
			}
			code, msg, info := bulkErrorInfo(t, err)
			require.Equal(t, tt.code, code, msg)
			require.Contains(t, msg, tt.msg)
			require.Equal(t, tt.errIndex, info.GetMetadata()[ImportIndexKey])
			require.Equal(t, tt.errCommit, info.GetMetadata()[ImportImportedKey])
		})
	}
}

func TestExportEmpty(t *testing.T) {
	env := newTestEnv(t)
	stream, err := env.rels.Export(env.ctx(), &relatav1.ExportRequest{})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Empty(t, resp.GetTuples())
	require.Equal(t, env.srv.Zookie(0), resp.GetExportedAt())
	require.Empty(t, resp.GetCursor())

	stream, err = env.rels.Export(env.ctx(), &relatav1.ExportRequest{Cursor: "bm90IGEgY3Vyc29y"})
	require.NoError(t, err)
	_, err = stream.Recv()
	code, _, info := bulkErrorInfo(t, err)
	require.Equal(t, codes.InvalidArgument, code)
	require.Equal(t, relatav1.ErrorReason_INVALID_CURSOR.String(), info.GetReason())
}

func TestWatchChangesThrough(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	ctx := env.ctx()
	stream, err := env.rels.Watch(ctx, &relatav1.WatchRequest{ObjectTypes: []string{"role"}})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, env.srv.Zookie(1), first.GetChangesThrough())

	// A change of another type only advances changes_through.
	w, err := env.rels.Write(ctx, &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{
		{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: protoTuple(t, "flow:f1#granted@user:anne")}}})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Empty(t, resp.GetChanges())
	require.Equal(t, w.GetWrittenAt(), resp.GetChangesThrough())

	w, err = env.rels.Write(ctx, &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{
		{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: protoTuple(t, "role:ops#member@user:anne")}}})
	require.NoError(t, err)
	resp, err = stream.Recv()
	require.NoError(t, err)
	require.Len(t, resp.GetChanges(), 1)
	require.Equal(t, w.GetWrittenAt(), resp.GetChanges()[0].GetRevision())
	require.Equal(t, w.GetWrittenAt(), resp.GetChangesThrough())

	bad, err := env.rels.Watch(ctx, &relatav1.WatchRequest{ObjectTypes: []string{"Bad Type"}})
	require.NoError(t, err)
	_, err = bad.Recv()
	code, _, _ := bulkErrorInfo(t, err)
	require.Equal(t, codes.InvalidArgument, code)
}

// TestBulkUnknownNames: Watch and Export naming a type or relation the schema does
// not have are NOT_FOUND (404), not an empty stream.
func TestBulkUnknownNames(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	for _, tc := range []struct{ path, body string }{
		{"/v1/watch", `{"objectTypes":["nope"]}`},
		{"/v1/tuples/export", `{"filter":{"objectType":"nope"}}`},
		{"/v1/tuples/export", `{"filter":{"objectType":"flow","relation":"nope"}}`},
	} {
		code, body := env.post(t, tc.path, tc.body)
		require.Equal(t, http.StatusNotFound, code, "%s %s: %s", tc.path, tc.body, body)
		require.Contains(t, string(body), "nope")
	}
	stream, err := env.rels.Watch(env.ctx(), &relatav1.WatchRequest{ObjectTypes: []string{"flow", "nope"}})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Contains(t, err.Error(), "object_types[1]")
}

// TestImportClientCancel: a client that cancels an Import after some of it was
// committed is logged as CANCELED (Info), not as an internal error.
func TestImportClientCancel(t *testing.T) {
	var logs syncBuffer
	env := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	env.seed(t)
	before, err := env.store.HeadRevision(env.ctx())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(env.ctx())
	defer cancel()
	stream, err := env.rels.Import(ctx)
	require.NoError(t, err)
	var batch []*relatav1.Tuple
	for i := range 100 {
		tp, err := tuples.ParseTuple(fmt.Sprintf("role:r%d#member@user:u%d", i, i))
		require.NoError(t, err)
		batch = append(batch, tupleproto.Tuple(tp))
	}
	require.NoError(t, stream.Send(&relatav1.ImportRequest{Tuples: batch}))
	// Wait until the server committed the batch, then cancel the call and wait
	// until the server saw the cancellation: closing the stream earlier could
	// still reach the server first and finish the import.
	_, err = env.store.WaitForRevision(env.ctx(), before)
	require.NoError(t, err)
	cancel()
	require.Eventually(t, func() bool {
		for _, r := range logs.records(t, "rpc") {
			if r["method"] == "/relata.v1.RelationshipService/Import" {
				return true
			}
		}
		return false
	}, time.Minute, 10*time.Millisecond, "the server never logged the canceled import")
	_, err = stream.CloseAndRecv()
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)

	var imports []map[string]any
	for _, r := range env.logsFor(t, &logs, "") {
		require.NotEqual(t, "ERROR", r["level"], "%v", r)
		if r["msg"] == "rpc" && r["method"] == "/relata.v1.RelationshipService/Import" {
			imports = append(imports, r)
		}
	}
	require.Len(t, imports, 1)
	require.Equal(t, "Canceled", imports[0]["code"], "%v", imports[0])
	require.Equal(t, "INFO", imports[0]["level"])
	require.Equal(t, relatav1.ErrorReason_CANCELED.String(), imports[0]["reason"], "%v", imports[0])
}
