package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// The fuzz targets drive a real server (gRPC and REST on loopback, Pebble on an
// in-memory file system) with arbitrary requests. Whatever the input: no panic (the
// process would die), no 5xx over REST and no INTERNAL/UNKNOWN/DATA_LOSS over gRPC,
// and a request that fails writes nothing (the store's head revision is unchanged).
// CI runs each for 10 s (.ci/run):
//
//	go test -run '^$' -fuzz '^FuzzRESTBody$' -fuzztime 10s ./server
//	go test -run '^$' -fuzz '^FuzzGRPCRequest$' -fuzztime 10s ./server
//
// Seeds are in testdata/fuzz/FUZZNAME (regenerate them with
// RELATA_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./server). AdminService
// (backups, which write files on the server) is left out.

// fuzzRoutes are the REST routes FuzzRESTBody posts to; the route argument picks one.
var fuzzRoutes = []string{
	"/v1/check", "/v1/check/bulk", "/v1/expand", "/v1/lookup/resources", "/v1/lookup/subjects",
	"/v1/tuples/write", "/v1/tuples/read", "/v1/tuples/delete", "/v1/tuples/export", "/v1/watch",
	"/v1/schema/write", "/v1/schema/read", "/v1/schema/diff", "/v1/schema/revisions",
}

// fuzzMethod is a gRPC method FuzzGRPCRequest calls with raw request bytes.
type fuzzMethod struct {
	name string // full method name
	desc *grpc.StreamDesc
	seed proto.Message // a valid request, for the seed corpus
}

var fuzzMethods = []fuzzMethod{
	{"/relata.v1.PermissionService/Check", nil, &relatav1.CheckRequest{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "execute",
		Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}}},
	{"/relata.v1.PermissionService/CheckBulk", nil, &relatav1.CheckBulkRequest{Items: []*relatav1.CheckBulkRequestItem{{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "execute",
		Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}}}}},
	{"/relata.v1.PermissionService/Expand", nil, &relatav1.ExpandRequest{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Relation: "execute"}},
	{"/relata.v1.PermissionService/LookupResources", &grpc.StreamDesc{ServerStreams: true}, &relatav1.LookupResourcesRequest{ResourceType: "flow", Permission: "execute",
		Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}, Limit: 3, BatchResults: true}},
	{"/relata.v1.PermissionService/LookupSubjects", &grpc.StreamDesc{ServerStreams: true}, &relatav1.LookupSubjectsRequest{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"},
		Permission: "execute", SubjectType: "user"}},
	{"/relata.v1.RelationshipService/Write", nil, &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: relatav1.Operation_OPERATION_TOUCH,
		Tuple: &relatav1.Tuple{Object: &relatav1.ObjectRef{Type: "flow", Id: "f9"}, Relation: "granted", Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "zed"}}}}}}},
	{"/relata.v1.RelationshipService/Read", &grpc.StreamDesc{ServerStreams: true}, &relatav1.ReadRequest{Filter: &relatav1.TupleFilter{ObjectType: "flow"}, Limit: 5}},
	{"/relata.v1.RelationshipService/Delete", nil, &relatav1.DeleteRequest{Filter: &relatav1.TupleFilter{ObjectType: "flow", ObjectId: "f9"}}},
	{"/relata.v1.RelationshipService/Import", &grpc.StreamDesc{ClientStreams: true}, &relatav1.ImportRequest{Tuples: []*relatav1.Tuple{
		{Object: &relatav1.ObjectRef{Type: "flow", Id: "f8"}, Relation: "granted", Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "zoe"}}}}}},
	{"/relata.v1.RelationshipService/Export", &grpc.StreamDesc{ServerStreams: true}, &relatav1.ExportRequest{}},
	{"/relata.v1.RelationshipService/Watch", &grpc.StreamDesc{ServerStreams: true}, &relatav1.WatchRequest{ObjectTypes: []string{"flow"}}},
	{"/relata.v1.SchemaService/WriteSchema", nil, &relatav1.WriteSchemaRequest{Schema: testSchema}},
	{"/relata.v1.SchemaService/ReadSchema", nil, &relatav1.ReadSchemaRequest{}},
	{"/relata.v1.SchemaService/DiffSchema", nil, &relatav1.DiffSchemaRequest{Schema: testSchema}},
	{"/relata.v1.SchemaService/ListSchemaRevisions", nil, &relatav1.ListSchemaRevisionsRequest{Limit: 2}},
}

// fuzzRESTSeeds are valid (and a few invalid) bodies, by route.
var fuzzRESTSeeds = map[string][]string{
	"/v1/check":            {checkJSON("flow:f1", "execute", "user:anne", ""), `{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}},"explain":true}`},
	"/v1/check/bulk":       {`{"items":[{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}]}`},
	"/v1/expand":           {`{"object":{"type":"flow","id":"f1"},"relation":"execute"}`},
	"/v1/lookup/resources": {`{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"anne"}},"limit":2,"batchResults":true}`},
	"/v1/lookup/subjects":  {`{"object":{"type":"flow","id":"f1"},"permission":"execute","subjectType":"user"}`},
	"/v1/tuples/write":     {`{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f9"},"relation":"granted","subject":{"object":{"type":"user","id":"zed"}}}}]}`, `{"updates":[{"operation":"CREATE"}]}`},
	"/v1/tuples/read":      {`{"filter":{"objectType":"flow"},"limit":2}`, `{"cursor":"!!"}`},
	"/v1/tuples/delete":    {`{"filter":{"objectType":"flow","objectId":"f9"}}`},
	"/v1/tuples/export":    {`{}`},
	"/v1/watch":            {`{"objectTypes":["flow"]}`},
	"/v1/schema/write":     {`{"schema":"definition user {}"}`},
	"/v1/schema/read":      {`{}`},
	"/v1/schema/diff":      {`{"schema":"definition user {}"}`},
	"/v1/schema/revisions": {`{"limit":1}`},
}

// headRevision is the store's head, for "nothing written".
func (e *testEnv) headRevision(t testing.TB) tuples.Revision {
	t.Helper()
	rev, err := e.store.HeadRevision(context.Background())
	require.NoError(t, err)
	return rev
}

func FuzzRESTBody(f *testing.F) {
	env := newTestEnv(f)
	env.seed(f)
	for i, route := range fuzzRoutes {
		for _, body := range fuzzRESTSeeds[route] {
			f.Add(i, body)
		}
	}
	httpc := &http.Client{}
	f.Fuzz(func(t *testing.T, route int, body string) {
		if route < 0 || route >= len(fuzzRoutes) {
			return
		}
		path := fuzzRoutes[route]
		before := env.headRevision(t)
		// Watch follows the log until the deadline ends it.
		ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline(path))
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.baseURL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpc.Do(req)
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded, "%s %q", path, body)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			require.NoError(t, err, "%s %q", path, body)
		}
		require.Less(t, resp.StatusCode, 500, "%s %q: %s", path, body, b)
		if resp.StatusCode != http.StatusOK {
			require.Equal(t, before, env.headRevision(t), "%s %q failed (%d) but wrote: %s", path, body, resp.StatusCode, b)
		}
	})
}

func FuzzGRPCRequest(f *testing.F) {
	env := newTestEnv(f)
	env.seed(f)
	for i, m := range fuzzMethods {
		b, err := proto.Marshal(m.seed)
		require.NoError(f, err)
		f.Add(i, b)
	}
	raw := grpc.ForceCodecV2(rawCodec{})
	f.Fuzz(func(t *testing.T, method int, msg []byte) {
		if method < 0 || method >= len(fuzzMethods) {
			return
		}
		m := fuzzMethods[method]
		before := env.headRevision(t)
		ctx, cancel := context.WithTimeout(env.ctx(), fuzzDeadline(m.name))
		defer cancel()
		var err error
		if m.desc == nil {
			var out []byte
			err = env.conn.Invoke(ctx, m.name, msg, &out, raw)
		} else {
			err = fuzzStream(ctx, env, m, msg, raw)
		}
		code := status.Code(err)
		switch code {
		case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
			t.Fatalf("%s %x: %v", m.name, msg, err)
		}
		if err != nil && code != codes.DeadlineExceeded {
			require.Equal(t, before, env.headRevision(t), "%s %x failed (%v) but wrote", m.name, msg, err)
		}
	})
}

// fuzzDeadline bounds one fuzzed call: Watch, which follows the log until the
// deadline, briefly; the others generously (a loaded machine).
func fuzzDeadline(route string) time.Duration {
	if strings.HasSuffix(route, "watch") || strings.HasSuffix(route, "/Watch") {
		return 100 * time.Millisecond
	}
	return 10 * time.Second
}

// fuzzStream sends msg on a stream of m and reads the answer to its end (or the
// deadline, for Watch), returning the first error.
func fuzzStream(ctx context.Context, env *testEnv, m fuzzMethod, msg []byte, raw grpc.CallOption) error {
	stream, err := env.conn.NewStream(ctx, m.desc, m.name, raw)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(msg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		var out []byte
		if err := stream.RecvMsg(&out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestWriteFuzzSeeds writes the seed corpora of the fuzz targets into testdata/fuzz,
// when RELATA_WRITE_FUZZ_SEEDS=1; otherwise it checks that they are there.
func TestWriteFuzzSeeds(t *testing.T) {
	type seed struct {
		name string
		args []string // in the corpus file's syntax
	}
	var rest, grpcSeeds []seed
	for i, route := range fuzzRoutes {
		for j, body := range fuzzRESTSeeds[route] {
			rest = append(rest, seed{fmt.Sprintf("%s-%d", strings.ReplaceAll(strings.TrimPrefix(route, "/v1/"), "/", "-"), j),
				[]string{"int(" + strconv.Itoa(i) + ")", "string(" + strconv.Quote(body) + ")"}})
		}
	}
	for i, m := range fuzzMethods {
		b, err := proto.Marshal(m.seed)
		require.NoError(t, err)
		grpcSeeds = append(grpcSeeds, seed{m.name[strings.LastIndex(m.name, "/")+1:],
			[]string{"int(" + strconv.Itoa(i) + ")", "[]byte(" + strconv.Quote(string(b)) + ")"}})
	}
	write := os.Getenv("RELATA_WRITE_FUZZ_SEEDS") == "1"
	for target, seeds := range map[string][]seed{"FuzzRESTBody": rest, "FuzzGRPCRequest": grpcSeeds} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			text := "go test fuzz v1\n" + strings.Join(s.args, "\n") + "\n"
			path := filepath.Join(dir, s.name)
			if write {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
				continue
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err, "seed %s missing: RELATA_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./server", path)
			require.Equal(t, text, string(got), "seed %s is stale: RELATA_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./server", path)
		}
	}
}
