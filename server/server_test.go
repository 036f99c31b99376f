package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/check"
	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testSchema is a small workflow-platform schema: tenants, roles and flows.
const testSchema = `
definition user {}

definition role {
    relation member: user | role#member
}

definition tenant {
    relation parent: tenant
    relation admin: user | role#member
    relation viewer: user | role#member | user:*
    permission manage = admin + parent->manage
    permission view = viewer + manage
    relation blocked: user
    permission guarded = (admin + parent->guarded) - blocked
}

definition flow {
    relation tenant: tenant
    relation granted: user | role#member | user:*
    relation denied: user | role#member
    permission execute = (granted + tenant->view) - denied
}
`

var testTuples = []string{
	"role:ops#member@user:anne",
	"flow:f1#granted@role:ops#member",
	"flow:f1#tenant@tenant:acme",
	"tenant:acme#admin@user:bob",
	"tenant:acme#viewer@user:carl",
	"flow:f1#denied@user:carl",
}

// testEnv is a real server on loopback ports over a Pebble store on an in-memory FS.
type testEnv struct {
	srv     *Server
	store   *pebblestore.Store
	fs      vfs.FS
	conn    *grpc.ClientConn
	perms   relatav1.PermissionServiceClient
	rels    relatav1.RelationshipServiceClient
	schemas relatav1.SchemaServiceClient
	baseURL string
	token   string
	stop    func() error // cancels Serve and returns its error
}

type envOption func(*Config)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	fs := vfs.NewMem()
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: fs})
	require.NoError(t, err)
	return startEnv(t, fs, store, opts...)
}

func startEnv(t testing.TB, fs vfs.FS, store *pebblestore.Store, opts ...envOption) *testEnv {
	t.Helper()
	cfg := Config{
		Store:        store,
		Engine:       check.New(check.Options{}),
		GRPCAddr:     "127.0.0.1:0",
		HTTPAddr:     "127.0.0.1:0",
		Quantization: -1, // minimize_latency reads the head unless a test says otherwise
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var stopped bool
	var serveErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			serveErr = <-done
		}
		return serveErr
	}
	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	env := &testEnv{
		srv: srv, store: store, fs: fs, conn: conn,
		perms:   relatav1.NewPermissionServiceClient(conn),
		rels:    relatav1.NewRelationshipServiceClient(conn),
		schemas: relatav1.NewSchemaServiceClient(conn),
		baseURL: "http://" + srv.HTTPAddr().String(),
		token:   cfg.PresharedKey,
		stop:    stop,
	}
	t.Cleanup(func() {
		conn.Close()
		require.NoError(t, stop())
		require.NoError(t, store.Close())
	})
	return env
}

// ctx returns a context carrying the env's token.
func (e *testEnv) ctx() context.Context {
	ctx := context.Background()
	if e.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token)
	}
	return ctx
}

// post sends a REST request with the env's token and returns the status and body.
func (e *testEnv) post(t testing.TB, path, body string) (int, []byte) {
	t.Helper()
	return e.postWithToken(t, path, body, e.token)
}

func (e *testEnv) postWithToken(t testing.TB, path, body, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.baseURL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, b := doHTTP(t, req)
	return resp.StatusCode, b
}

// doHTTP sends req and returns the response, its body read and closed.
func doHTTP(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// seed writes the test schema and tuples and returns the write's zookie.
func (e *testEnv) seed(t testing.TB) string {
	t.Helper()
	_, err := e.schemas.WriteSchema(e.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	return e.write(t, relatav1.Operation_OPERATION_TOUCH, testTuples...)
}

func (e *testEnv) write(t testing.TB, op relatav1.Operation, ts ...string) string {
	t.Helper()
	req := &relatav1.WriteRequest{}
	for _, s := range ts {
		tp, err := tuples.ParseTuple(s)
		require.NoError(t, err)
		req.Updates = append(req.Updates, &relatav1.TupleUpdate{Operation: op, Tuple: tupleproto.Tuple(tp)})
	}
	resp, err := e.rels.Write(e.ctx(), req)
	require.NoError(t, err)
	return resp.GetWrittenAt()
}

func checkReq(object, permission, subject string) *relatav1.CheckRequest {
	o, err := tuples.ParseObject(object)
	if err != nil {
		panic(err)
	}
	s, err := tuples.ParseSubject(subject)
	if err != nil {
		panic(err)
	}
	return &relatav1.CheckRequest{Object: tupleproto.Object(o), Permission: permission, Subject: tupleproto.Subject(s)}
}

func checkJSON(object, permission, subject string, extra string) string {
	o, _ := tuples.ParseObject(object)
	s, _ := tuples.ParseSubject(subject)
	sub := fmt.Sprintf(`{"object":{"type":%q,"id":%q}`, s.Object.Type, s.Object.ID)
	if s.Relation != "" {
		sub += fmt.Sprintf(`,"relation":%q`, s.Relation)
	}
	sub += "}"
	body := fmt.Sprintf(`{"object":{"type":%q,"id":%q},"permission":%q,"subject":%s`, o.Type, o.ID, permission, sub)
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

func TestGRPCAndRESTAgree(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	for _, tc := range []struct {
		object, permission, subject string
		want                        bool
	}{
		{"flow:f1", "execute", "user:anne", true},  // granted through role:ops
		{"flow:f1", "execute", "user:bob", true},   // tenant admin -> manage -> view
		{"flow:f1", "execute", "user:carl", false}, // viewer but denied
		{"flow:f1", "execute", "user:dave", false}, // nothing
		{"flow:f1", "granted", "role:ops#member", true},
		{"tenant:acme", "manage", "user:bob", true},
		{"tenant:acme", "manage", "user:carl", false},
	} {
		t.Run(tc.object+"#"+tc.permission+"@"+tc.subject, func(t *testing.T) {
			resp, err := env.perms.Check(env.ctx(), checkReq(tc.object, tc.permission, tc.subject))
			require.NoError(t, err)
			require.Equal(t, tc.want, resp.GetAllowed())
			require.NotEmpty(t, resp.GetCheckedAt())

			code, body := env.post(t, "/v1/check", checkJSON(tc.object, tc.permission, tc.subject, ""))
			require.Equal(t, http.StatusOK, code, string(body))
			var rest struct {
				Allowed   *bool  `json:"allowed"`
				CheckedAt string `json:"checkedAt"`
			}
			require.NoError(t, json.Unmarshal(body, &rest))
			require.NotNil(t, rest.Allowed, "allowed must always be present: %s", body)
			require.Equal(t, tc.want, *rest.Allowed)
			require.Equal(t, resp.GetCheckedAt(), rest.CheckedAt)
		})
	}

	// Expand and ReadSchema agree too.
	exp, err := env.perms.Expand(env.ctx(), &relatav1.ExpandRequest{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Relation: "granted"})
	require.NoError(t, err)
	code, body := env.post(t, "/v1/expand", `{"object":{"type":"flow","id":"f1"},"relation":"granted"}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"kind":"KIND_LEAF"`)
	require.Equal(t, relatav1.ExpandTree_KIND_LEAF, exp.GetTree().GetKind())
	require.Len(t, exp.GetTree().GetSubjects(), 1)

	sch, err := env.schemas.ReadSchema(env.ctx(), &relatav1.ReadSchemaRequest{})
	require.NoError(t, err)
	require.Equal(t, testSchema, sch.GetSchema())
	code, body = env.post(t, "/v1/schema/read", `{}`)
	require.Equal(t, http.StatusOK, code)
	var rs struct{ Schema string }
	require.NoError(t, json.Unmarshal(body, &rs))
	require.Equal(t, testSchema, rs.Schema)

	// CheckBulk: one revision, one error per bad item.
	bulk, err := env.perms.CheckBulk(env.ctx(), &relatav1.CheckBulkRequest{Items: []*relatav1.CheckBulkRequestItem{
		{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "execute", Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}},
		{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "nope", Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}},
		{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "execute", Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "carl"}}},
	}})
	require.NoError(t, err)
	require.Len(t, bulk.GetResults(), 3)
	require.True(t, bulk.GetResults()[0].GetAllowed())
	require.Equal(t, "NOT_FOUND", bulk.GetResults()[1].GetError().GetCode())
	require.Equal(t, relatav1.ErrorReason_UNKNOWN_RELATION.String(), bulk.GetResults()[1].GetError().GetReason())
	require.False(t, bulk.GetResults()[2].GetAllowed())
	require.Nil(t, bulk.GetResults()[2].GetError())
}

// errorInfo returns the reason of a status error's ErrorInfo detail.
func errorInfo(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func TestErrorMapping(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Engine = check.New(check.Options{MaxDepth: 3, CacheBytes: -1}) })
	z := env.seed(t)
	// A chain of parent tenants deeper than the depth limit.
	env.write(t, relatav1.Operation_OPERATION_TOUCH,
		"tenant:t1#parent@tenant:t2", "tenant:t2#parent@tenant:t3", "tenant:t3#parent@tenant:t4",
		"tenant:t4#parent@tenant:t5", "tenant:t5#parent@tenant:t6", "tenant:t6#admin@user:zed")

	userAnne := &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}
	tupleOf := func(s string) *relatav1.Tuple {
		tp, err := tuples.ParseTuple(s)
		require.NoError(t, err)
		return tupleproto.Tuple(tp)
	}
	bigUpdates := make([]*relatav1.TupleUpdate, 100_000)
	for i := range bigUpdates {
		bigUpdates[i] = &relatav1.TupleUpdate{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: tupleOf(fmt.Sprintf("flow:f%d#granted@user:u", i))}
	}
	var bigJSON strings.Builder
	bigJSON.WriteString(`{"updates":[`)
	for i := range 100_000 {
		if i > 0 {
			bigJSON.WriteString(",")
		}
		fmt.Fprintf(&bigJSON, `{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f%d"},"relation":"granted","subject":{"object":{"type":"user","id":"u"}}}}`, i)
	}
	bigJSON.WriteString(`]}`)
	tenMB := `{"schema":"` + strings.Repeat("x", 10<<20) + `"}`
	huge := `{"schema":"` + strings.Repeat("x", 17<<20) + `"}`

	for _, tc := range []struct {
		name       string
		grpc       func() error // nil: REST only
		path, body string       // "": gRPC only
		code       codes.Code
		httpStatus int
		reason     string
		contains   string
	}{
		{
			name: "id with a space",
			grpc: func() error {
				req := checkReq("flow:f1", "execute", "user:anne")
				req.Object.Id = "f 1"
				_, err := env.perms.Check(env.ctx(), req)
				return err
			},
			path: "/v1/check",
			body: `{"object":{"type":"flow","id":"f 1"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}`,
			code: codes.InvalidArgument, httpStatus: 400, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), contains: "object.id",
		},
		{
			name: "empty relation",
			grpc: func() error {
				_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: &relatav1.Tuple{Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Subject: userAnne}}}})
				return err
			},
			path: "/v1/tuples/write",
			body: `{"updates":[{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"","subject":{"object":{"type":"user","id":"anne"}}}}]}`,
			code: codes.InvalidArgument, httpStatus: 400, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), contains: "updates[0].tuple.relation",
		},
		{
			name: "unknown type",
			grpc: func() error {
				_, err := env.perms.Check(env.ctx(), checkReq("flowx:f1", "execute", "user:anne"))
				return err
			},
			path: "/v1/check",
			body: checkJSON("flowx:f1", "execute", "user:anne", ""),
			code: codes.NotFound, httpStatus: 404, reason: relatav1.ErrorReason_UNKNOWN_TYPE.String(), contains: "flowx",
		},
		{
			name: "unknown relation",
			grpc: func() error {
				_, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "nope", "user:anne"))
				return err
			},
			path: "/v1/check",
			body: checkJSON("flow:f1", "nope", "user:anne", ""),
			code: codes.NotFound, httpStatus: 404, reason: relatav1.ErrorReason_UNKNOWN_RELATION.String(), contains: "nope",
		},
		{
			name: "tampered zookie",
			grpc: func() error {
				req := checkReq("flow:f1", "execute", "user:anne")
				req.Consistency = &relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: tamper(z)}}
				_, err := env.perms.Check(env.ctx(), req)
				return err
			},
			path: "/v1/check",
			body: checkJSON("flow:f1", "execute", "user:anne", `"consistency":{"atLeastAsFresh":"`+tamper(z)+`"}`),
			code: codes.InvalidArgument, httpStatus: 400, reason: relatav1.ErrorReason_INVALID_ZOOKIE.String(), contains: "zookie",
		},
		{
			name: "zookie from the future",
			grpc: func() error {
				req := checkReq("flow:f1", "execute", "user:anne")
				req.Consistency = &relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: env.srv.Zookie(1 << 40)}}
				_, err := env.perms.Check(env.ctx(), req)
				return err
			},
			code: codes.InvalidArgument, reason: relatav1.ErrorReason_ZOOKIE_IN_FUTURE.String(),
		},
		{
			name:       "unknown JSON field",
			path:       "/v1/check",
			body:       checkJSON("flow:f1", "execute", "user:anne", `"bogus":1`),
			httpStatus: 400, contains: "bogus",
		},
		{
			name:       "malformed JSON",
			path:       "/v1/check",
			body:       `{"object":`,
			httpStatus: 400,
		},
		{
			name: "unknown enum value",
			grpc: func() error {
				_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: relatav1.Operation(42), Tuple: tupleOf("flow:f1#granted@user:anne")}}})
				return err
			},
			path: "/v1/tuples/write",
			body: `{"updates":[{"operation":"OPERATION_UPSERT","tuple":{"object":{"type":"flow","id":"f1"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}}]}`,
			code: codes.InvalidArgument, httpStatus: 400, contains: "operation",
		},
		{
			name: "unspecified operation",
			grpc: func() error {
				_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Tuple: tupleOf("flow:f1#granted@user:anne")}}})
				return err
			},
			code: codes.InvalidArgument, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), contains: "updates[0].operation",
		},
		{
			name: "subject type not allowed",
			grpc: func() error { return writeErr(env, "flow:f1#tenant@user:anne") },
			path: "/v1/tuples/write",
			body: `{"updates":[{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"tenant","subject":{"object":{"type":"user","id":"anne"}}}}]}`,
			code: codes.FailedPrecondition, httpStatus: 412, reason: relatav1.ErrorReason_SUBJECT_TYPE_NOT_ALLOWED.String(),
		},
		{
			name: "write to a permission",
			grpc: func() error { return writeErr(env, "flow:f1#execute@user:anne") },
			code: codes.FailedPrecondition, reason: relatav1.ErrorReason_SUBJECT_TYPE_NOT_ALLOWED.String(),
		},
		{
			name: "create of an existing tuple",
			grpc: func() error {
				_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: relatav1.Operation_OPERATION_CREATE, Tuple: tupleOf("flow:f1#granted@role:ops#member")}}})
				return err
			},
			path: "/v1/tuples/write",
			body: `{"updates":[{"operation":"OPERATION_CREATE","tuple":{"object":{"type":"flow","id":"f1"},"relation":"granted","subject":{"object":{"type":"role","id":"ops"},"relation":"member"}}}]}`,
			code: codes.AlreadyExists, httpStatus: 409, reason: relatav1.ErrorReason_TUPLE_ALREADY_EXISTS.String(),
		},
		{
			name: "failed precondition",
			grpc: func() error {
				_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{
					Updates:       []*relatav1.TupleUpdate{{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: tupleOf("flow:f2#granted@user:anne")}},
					Preconditions: []*relatav1.Precondition{{Operation: relatav1.Precondition_OPERATION_MUST_MATCH, Filter: &relatav1.TupleFilter{ObjectType: "flow", ObjectId: "nope"}}},
				})
				return err
			},
			path: "/v1/tuples/write",
			body: `{"updates":[{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"flow","id":"f2"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}}],"preconditions":[{"operation":"OPERATION_MUST_NOT_MATCH","filter":{"objectType":"flow","objectId":"f1"}}]}`,
			code: codes.FailedPrecondition, httpStatus: 412, reason: relatav1.ErrorReason_PRECONDITION_FAILED.String(),
		},
		{
			name: "schema syntax error",
			grpc: func() error {
				_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: "definition user {"})
				return err
			},
			path: "/v1/schema/write",
			body: `{"schema":"definition user { relation x: nope }"}`,
			code: codes.InvalidArgument, httpStatus: 400, reason: relatav1.ErrorReason_INVALID_SCHEMA.String(), contains: "schema:1:",
		},
		{
			name: "schema change orphaning tuples",
			grpc: func() error {
				_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: strings.Replace(testSchema, "relation denied: user | role#member", "relation denied: role#member", 1)})
				return err
			},
			code: codes.FailedPrecondition, reason: relatav1.ErrorReason_SCHEMA_ORPHANS_TUPLES.String(), contains: "flow:f1#denied@user:carl",
		},
		{
			name: "max depth",
			grpc: func() error {
				_, err := env.perms.Check(env.ctx(), checkReq("tenant:t1", "guarded", "user:zed"))
				return err
			},
			path: "/v1/check",
			body: checkJSON("tenant:t1", "guarded", "user:zed", ""),
			code: codes.ResourceExhausted, httpStatus: 429, reason: relatav1.ErrorReason_MAX_DEPTH_EXCEEDED.String(),
		},
		{
			name: "100k-update write",
			grpc: func() error {
				_, err := env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: bigUpdates})
				return err
			},
			path: "/v1/tuples/write",
			body: bigJSON.String(),
			code: codes.InvalidArgument, httpStatus: 400, reason: relatav1.ErrorReason_LIMIT_EXCEEDED.String(), contains: "updates",
		},
		{
			name: "10 MB schema",
			grpc: func() error {
				_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: strings.Repeat("x", 10<<20)})
				return err
			},
			path: "/v1/schema/write",
			body: tenMB,
			code: codes.InvalidArgument, httpStatus: 400, reason: relatav1.ErrorReason_LIMIT_EXCEEDED.String(), contains: "schema",
		},
		{
			name:       "body over the message limit",
			path:       "/v1/schema/write",
			body:       huge,
			httpStatus: 400, contains: "limit",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, err := env.store.HeadRevision(context.Background())
			require.NoError(t, err)
			if tc.grpc != nil {
				err := tc.grpc()
				require.Error(t, err)
				require.Equal(t, tc.code, status.Code(err), "%v", err)
				if tc.reason != "" {
					require.Equal(t, tc.reason, errorInfo(err), "%v", err)
				}
				require.Contains(t, status.Convert(err).Message(), tc.contains)
			}
			if tc.path != "" {
				code, body := env.post(t, tc.path, tc.body)
				require.Equal(t, tc.httpStatus, code, "%.300s", body)
				require.Contains(t, string(body), tc.contains)
				if tc.reason != "" {
					require.Contains(t, string(body), `"reason":"`+tc.reason+`"`)
				}
			}
			after, err := env.store.HeadRevision(context.Background())
			require.NoError(t, err)
			require.Equal(t, head, after, "nothing may be written")
		})
	}
}

// TestZookieErrorsNameTheField: a hand-edited zookie, and a zookie of another Relata
// store, are INVALID_ARGUMENT with reason INVALID_ZOOKIE, and the ErrorInfo names the
// request field that carried it.
func TestZookieErrorsNameTheField(t *testing.T) {
	env := newTestEnv(t)
	own := env.seed(t)
	// Another store with the same history: its zookies name the same revisions.
	other := newTestEnv(t)
	foreign := other.seed(t)
	require.NotEqual(t, own, foreign)
	for _, kind := range []struct{ name, bad, message string }{
		{"tampered", tamper(own), "checksum"},
		{"another store", foreign, "names another store"},
	} {
		t.Run(kind.name, func(t *testing.T) {
			testZookieErrorsNameTheField(t, env, kind.bad, kind.message)
			// Over REST too.
			code, body := env.post(t, "/v1/check", checkJSON("flow:f1", "execute", "user:anne", `"consistency":{"atExactSnapshot":"`+kind.bad+`"}`))
			require.Equal(t, http.StatusBadRequest, code, "%s", body)
			require.Contains(t, string(body), `"reason":"INVALID_ZOOKIE"`)
			require.Contains(t, string(body), kind.message)
		})
	}
	// Each store takes its own.
	for _, e := range []*testEnv{env, other} {
		req := checkReq("flow:f1", "execute", "user:anne")
		req.Consistency = &relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: map[*testEnv]string{env: own, other: foreign}[e]}}
		resp, err := e.perms.Check(e.ctx(), req)
		require.NoError(t, err)
		require.True(t, resp.GetAllowed())
	}
}

func testZookieErrorsNameTheField(t *testing.T, env *testEnv, bad, message string) {
	for _, tc := range []struct {
		field string
		call  func() error
	}{
		{"consistency.at_exact_snapshot", func() error {
			req := checkReq("flow:f1", "execute", "user:anne")
			req.Consistency = &relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: bad}}
			_, err := env.perms.Check(env.ctx(), req)
			return err
		}},
		{"consistency.at_least_as_fresh", func() error {
			stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{Consistency: &relatav1.Consistency{Requirement: &relatav1.Consistency_AtLeastAsFresh{AtLeastAsFresh: bad}}})
			require.NoError(t, err)
			_, err = stream.Recv()
			return err
		}},
		{"at", func() error {
			stream, err := env.rels.Export(env.ctx(), &relatav1.ExportRequest{At: bad})
			require.NoError(t, err)
			_, err = stream.Recv()
			return err
		}},
		{"from", func() error {
			stream, err := env.rels.Watch(env.ctx(), &relatav1.WatchRequest{From: bad})
			require.NoError(t, err)
			_, err = stream.Recv()
			return err
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			err := tc.call()
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			var info *errdetails.ErrorInfo
			for _, d := range status.Convert(err).Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			require.NotNil(t, info, "%v", err)
			require.Equal(t, relatav1.ErrorReason_INVALID_ZOOKIE.String(), info.GetReason())
			require.Equal(t, tc.field, info.GetMetadata()["field"])
			require.True(t, strings.HasPrefix(status.Convert(err).Message(), tc.field+": "), "%v", err)
			require.Contains(t, status.Convert(err).Message(), message)
		})
	}
}

// restError is the JSON body of a REST error, unary ({"code":…}) or streamed
// ({"error":{"code":…}}).
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Reason   string            `json:"reason"`
		Metadata map[string]string `json:"metadata"`
	} `json:"details"`
	Error *restError `json:"error"`
}

func parseRESTError(t *testing.T, body []byte) restError {
	t.Helper()
	var e restError
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	if e.Error != nil {
		e = *e.Error
	}
	require.Len(t, e.Details, 1, "%s", body)
	return e
}

// TestRESTBodyErrors sends REST bodies that do not decode (malformed JSON, unknown
// fields, values of the wrong kind, unknown enum names, a body over the limit sent
// without a length): each is 400 with a machine-readable reason naming the JSON path
// of the offending field, and nothing is written.
func TestRESTBodyErrors(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxMessageBytes = 64 << 10 })
	env.seed(t)
	touch := `{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f9"},"relation":"granted","subject":{"object":{"type":"user","id":"anne"}}}}`
	for _, tc := range []struct {
		name, path, body string
		chunked          bool // sent without a Content-Length
		reason           string
		field, value     string
		contains         string
	}{
		{name: "truncated JSON", path: "/v1/check", body: `{"object":`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "body", contains: "malformed JSON"},
		{name: "not JSON", path: "/v1/check", body: `not json`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "body", contains: "malformed JSON"},
		{name: "not an object", path: "/v1/check", body: `[]`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "body", contains: "not an object"},
		{name: "unknown top-level field", path: "/v1/check", body: checkJSON("flow:f1", "execute", "user:anne", `"bogus":1`), reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "bogus", contains: `unknown field "bogus"`},
		{name: "unknown nested field", path: "/v1/tuples/read", body: `{"filter":{"objectTyp":"flow"}}`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "filter.objectTyp", contains: "filter.objectTyp: unknown field"},
		{name: "unknown enum name", path: "/v1/tuples/write", body: `{"updates":[` + touch + `,{"operation":"UPSERT"}]}`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "updates[1].operation", value: "UPSERT", contains: "updates[1].operation"},
		{name: "unknown precondition enum", path: "/v1/tuples/write", body: `{"updates":[` + touch + `],"preconditions":[{"operation":"MAYBE"}]}`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "preconditions[0].operation", value: "MAYBE"},
		{name: "number for a string", path: "/v1/check", body: `{"object":{"type":"flow","id":7}}`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "object.id", value: "7"},
		{name: "string for a bool", path: "/v1/check", body: checkJSON("flow:f1", "execute", "user:anne", `"explain":"yes"`), reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "explain", value: "yes"},
		{name: "two consistencies", path: "/v1/check", body: checkJSON("flow:f1", "execute", "user:anne", `"consistency":{"fullyConsistent":true,"minimizeLatency":true}`), reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "consistency.minimizeLatency"},
		{name: "on a second line", path: "/v1/tuples/write", body: "{\"updates\":[\n" + touch + ",\n{\"operation\":\"TOUCH\",\"tuple\":{\"relation\":[]}}]}", reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "updates[1].tuple.relation"},
		{name: "unknown field on a stream", path: "/v1/lookup/resources", body: `{"resourceType":"flow","permision":"execute"}`, reason: relatav1.ErrorReason_INVALID_REQUEST.String(), field: "permision"},
		{name: "body over the limit without a length", path: "/v1/tuples/write", chunked: true, body: `{"updates":[` + strings.Repeat(touch+",", 1000) + touch + `]}`, reason: relatav1.ErrorReason_LIMIT_EXCEEDED.String(), field: "body", contains: "at most 1000 updates"},
		{name: "body over the limit", path: "/v1/tuples/write", body: `{"updates":[` + strings.Repeat(touch+",", 1000) + touch + `]}`, reason: relatav1.ErrorReason_LIMIT_EXCEEDED.String(), field: "body", contains: "at most 1000 updates"},
		{name: "bulk check over the limit", path: "/v1/check/bulk", body: `{"items":[` + strings.Repeat(`{"permission":"execute"},`, 3000) + `{}]}`, reason: relatav1.ErrorReason_LIMIT_EXCEEDED.String(), field: "body", contains: "at most 1000 items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, err := env.store.HeadRevision(context.Background())
			require.NoError(t, err)
			var r io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				r = io.MultiReader(r) // hides the length from net/http
			}
			req, err := http.NewRequest(http.MethodPost, env.baseURL+tc.path, r)
			require.NoError(t, err)
			resp, body := doHTTP(t, req)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", body)
			e := parseRESTError(t, body)
			require.Equal(t, int(codes.InvalidArgument), e.Code)
			require.Equal(t, tc.reason, e.Details[0].Reason, "%s", body)
			require.Equal(t, tc.field, e.Details[0].Metadata["field"], "%s", body)
			require.Equal(t, tc.value, e.Details[0].Metadata["value"], "%s", body)
			require.Contains(t, e.Message, tc.contains)
			after, err := env.store.HeadRevision(context.Background())
			require.NoError(t, err)
			require.Equal(t, head, after, "nothing may be written")
		})
	}
}

// TestRESTMethodNotAllowed: an API route answers another method than POST with 405
// and "Allow: POST"; unknown routes are 404.
func TestRESTMethodNotAllowed(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/v1/check", http.StatusMethodNotAllowed},
		{http.MethodPut, "/v1/tuples/write", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/v1/tuples/delete", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/watch", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/nope", http.StatusNotFound},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, env.baseURL+tc.path, strings.NewReader("{}"))
			require.NoError(t, err)
			resp, body := doHTTP(t, req)
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			if tc.status == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
				e := parseRESTError(t, body)
				require.Equal(t, relatav1.ErrorReason_METHOD_NOT_ALLOWED.String(), e.Details[0].Reason)
				require.Contains(t, e.Message, tc.method+" "+tc.path)
			}
		})
	}
}

func writeErr(env *testEnv, s string) error {
	tp, err := tuples.ParseTuple(s)
	if err != nil {
		return err
	}
	_, err = env.rels.Write(env.ctx(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: tupleproto.Tuple(tp)}}})
	return err
}

// tamper changes one character of a zookie.
func tamper(z string) string {
	b := []byte(z)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}

func TestAuth(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PresharedKey = "sekret" })
	env.seed(t)
	req := checkReq("flow:f1", "execute", "user:anne")
	for _, tc := range []struct {
		name  string
		token string
		code  codes.Code
		http  int
	}{
		{"no token", "", codes.Unauthenticated, 401},
		{"wrong token", "guess", codes.Unauthenticated, 401},
		{"right token", "sekret", codes.OK, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.token)
			}
			_, err := env.perms.Check(ctx, req)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			stream, err := env.rels.Read(ctx, &relatav1.ReadRequest{})
			require.NoError(t, err)
			_, err = stream.Recv()
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			if tc.code != codes.OK {
				require.Equal(t, relatav1.ErrorReason_UNAUTHENTICATED.String(), errorInfo(err))
			}
			code, body := env.postWithToken(t, "/v1/check", checkJSON("flow:f1", "execute", "user:anne", ""), tc.token)
			require.Equal(t, tc.http, code, string(body))
			// The token is checked before the body is read: a caller without it gets
			// 401 for a malformed body, a body over the limit and a stream alike.
			for _, req := range []struct{ path, body string }{
				{"/v1/check", `{"object":`},
				{"/v1/check", checkJSON("flow:f1", "execute", "user:anne", `"bogus":1`)},
				{"/v1/schema/write", `{"schema":"` + strings.Repeat("x", 17<<20) + `"}`},
				{"/v1/tuples/read", `{}`},
			} {
				code, body := env.postWithToken(t, req.path, req.body, tc.token)
				if tc.code == codes.OK {
					require.NotEqual(t, http.StatusUnauthorized, code, "%.300s", body)
					continue
				}
				require.Equal(t, http.StatusUnauthorized, code, "%s %.300s", req.path, body)
				require.Contains(t, string(body), relatav1.ErrorReason_UNAUTHENTICATED.String())
			}
		})
	}
	// Health needs no token; the OpenAPI document does (TestOpenWithoutCredentials).
	h, err := healthpb.NewHealthClient(env.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	for _, svc := range []string{"relata.v1.PermissionService", "relata.v1.RelationshipService", "relata.v1.SchemaService"} {
		h, err := healthpb.NewHealthClient(env.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, svc)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus(), svc)
	}
	for _, path := range []string{"/healthz", "/openapi.json"} {
		req, err := http.NewRequest(http.MethodGet, env.baseURL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer sekret")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, path)
		if path == "/openapi.json" {
			require.Contains(t, string(b), `"/v1/check"`)
			require.Contains(t, string(b), `"/v1/tuples/write"`)
		}
	}
}

func TestConsistency(t *testing.T) {
	// A quantization window far longer than the test: between writes, minimize_latency
	// keeps reading the revision it first saw.
	env := newTestEnv(t, func(c *Config) { c.Quantization = time.Hour })
	before := env.seed(t)
	req := checkReq("flow:f1", "execute", "user:dave")
	first, err := env.perms.Check(env.ctx(), req)
	require.NoError(t, err)
	require.False(t, first.GetAllowed())
	again, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	require.Equal(t, first.GetCheckedAt(), again.GetCheckedAt(), "reads between writes share a revision")

	z := env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:f1#granted@user:dave")
	withConsistency := func(c *relatav1.Consistency) *relatav1.CheckResponse {
		r := checkReq("flow:f1", "execute", "user:dave")
		r.Consistency = c
		resp, err := env.perms.Check(env.ctx(), r)
		require.NoError(t, err)
		return resp
	}
	// minimize_latency: a write acknowledged by this server moves the shared revision
	// to it, so the writer reads its write without passing the zookie.
	mine := withConsistency(nil)
	require.True(t, mine.GetAllowed())
	require.Equal(t, z, mine.GetCheckedAt())
	// at_least_as_fresh the write's zookie sees the write, and says where it read.
	fresh := withConsistency(&relatav1.Consistency{Requirement: &relatav1.Consistency_AtLeastAsFresh{AtLeastAsFresh: z}})
	require.True(t, fresh.GetAllowed())
	require.Equal(t, z, fresh.GetCheckedAt())
	// at_exact_snapshot before the write does not.
	exact := withConsistency(&relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: before}})
	require.False(t, exact.GetAllowed())
	require.Equal(t, before, exact.GetCheckedAt())
	// fully_consistent reads the head.
	full := withConsistency(&relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}})
	require.True(t, full.GetAllowed())
	require.Equal(t, z, full.GetCheckedAt())
	// REST spells it in lowerCamelCase.
	code, body := env.post(t, "/v1/check", checkJSON("flow:f1", "execute", "user:dave", `"consistency":{"atLeastAsFresh":"`+z+`"}`))
	require.Equal(t, 200, code, string(body))
	require.JSONEq(t, `{"allowed":true,"checkedAt":"`+z+`"}`, string(body))
	// A delete over REST, then a check with no consistency at all: the delete is seen,
	// while at_exact_snapshot of the write still sees the tuple.
	code, body = env.post(t, "/v1/tuples/delete", `{"filter":{"objectType":"flow","objectId":"f1","relation":"granted","subject":{"type":"user","id":"dave"}}}`)
	require.Equal(t, 200, code, string(body))
	code, body = env.post(t, "/v1/check", checkJSON("flow:f1", "execute", "user:dave", ""))
	require.Equal(t, 200, code, string(body))
	require.Contains(t, string(body), `"allowed":false`)
	code, body = env.post(t, "/v1/check", checkJSON("flow:f1", "execute", "user:dave", `"consistency":{"atExactSnapshot":"`+z+`"}`))
	require.Equal(t, 200, code, string(body))
	require.JSONEq(t, `{"allowed":true,"checkedAt":"`+z+`"}`, string(body))
}

func TestReadPagination(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("flow:p%02d#granted@user:u%d", i, i))
	}
	z := env.write(t, relatav1.Operation_OPERATION_TOUCH, want...)
	filter := &relatav1.TupleFilter{Relation: "granted", Subject: &relatav1.SubjectFilter{Type: "user"}}
	var got []string
	cursor := ""
	pages := 0
	for {
		stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{Filter: filter, Limit: 10, Cursor: cursor})
		require.NoError(t, err)
		n := 0
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			require.Equal(t, z, resp.GetReadAt())
			got = append(got, tupleFromProtoForTest(resp.GetTuple()))
			cursor = resp.GetCursor()
			n++
		}
		pages++
		if n < 10 {
			break
		}
	}
	require.Equal(t, 3, pages)
	require.Equal(t, want, got)

	// A later write does not show on a page resumed from a cursor: the cursor pins the
	// revision.
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:p99#granted@user:late")
	stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{Filter: filter, Cursor: cursor})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF)

	// REST: newline-delimited JSON, one ReadResponse a line.
	code, body := env.post(t, "/v1/tuples/read", `{"filter":{"relation":"granted","subject":{"type":"user"}},"limit":5}`)
	require.Equal(t, 200, code, string(body))
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, 5)
	var line struct {
		Tuple struct {
			Object struct{ Type, ID string }
		}
		ReadAt, Cursor string
	}
	require.NoError(t, json.Unmarshal([]byte(lines[4]), &line))
	require.NotEmpty(t, line.Cursor)
	require.NotEmpty(t, line.ReadAt)
	require.Equal(t, "flow", line.Tuple.Object.Type)

	// A broken cursor is INVALID_ARGUMENT.
	stream, err = env.rels.Read(env.ctx(), &relatav1.ReadRequest{Cursor: "!!"})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, relatav1.ErrorReason_INVALID_CURSOR.String(), errorInfo(err))
}

func tupleFromProtoForTest(t *relatav1.Tuple) string {
	return tuples.Tuple{
		Object:   tuples.ObjectRef{Type: t.GetObject().GetType(), ID: t.GetObject().GetId()},
		Relation: t.GetRelation(),
		Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: t.GetSubject().GetObject().GetType(), ID: t.GetSubject().GetObject().GetId()}, Relation: t.GetSubject().GetRelation()},
	}.String()
}

func TestDelete(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	resp, err := env.rels.Delete(env.ctx(), &relatav1.DeleteRequest{Filter: &relatav1.TupleFilter{ObjectType: "flow", ObjectId: "f1"}})
	require.NoError(t, err)
	require.EqualValues(t, 3, resp.GetDeleted())
	// Over REST the count is a JSON number.
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:f7#granted@user:anne")
	code, body := env.post(t, "/v1/tuples/delete", `{"filter":{"objectType":"flow","objectId":"f7"}}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"deleted":1`)
	_, err = env.rels.Delete(env.ctx(), &relatav1.DeleteRequest{Filter: &relatav1.TupleFilter{}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	c, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	require.False(t, c.GetAllowed())
}

// TestGracefulShutdown writes concurrently while the server shuts down, then reopens
// the store: every acknowledged write is there.
func TestGracefulShutdown(t *testing.T) {
	fs := vfs.NewMem()
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: fs})
	require.NoError(t, err)
	cfg := Config{Store: store, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 10 * time.Second}
	srv, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = relatav1.NewSchemaServiceClient(conn).WriteSchema(context.Background(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	rels := relatav1.NewRelationshipServiceClient(conn)

	const writers = 8
	acked := make(chan string, 100_000)
	writersDone := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { writersDone <- struct{}{} }()
			for i := 0; ; i++ {
				tp := fmt.Sprintf("flow:w%d-%d#granted@user:u", w, i)
				parsed, _ := tuples.ParseTuple(tp)
				_, err := rels.Write(context.Background(), &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: tupleproto.Tuple(parsed)}}})
				if err != nil {
					return // the server is gone
				}
				acked <- tp
			}
		}()
	}
	for len(acked) < 200 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	for range writers {
		<-writersDone
	}
	close(acked)
	require.NoError(t, store.Close())

	reopened, err := pebblestore.Open("db", &pebblestore.Options{FS: fs})
	require.NoError(t, err)
	defer reopened.Close()
	head, err := reopened.HeadRevision(context.Background())
	require.NoError(t, err)
	r, err := reopened.ReaderAt(context.Background(), head)
	require.NoError(t, err)
	n := 0
	for tp := range acked {
		parsed, err := tuples.ParseTuple(tp)
		require.NoError(t, err)
		ok, err := r.Contains(context.Background(), parsed)
		require.NoError(t, err)
		require.True(t, ok, "acknowledged write %s lost", tp)
		n++
	}
	require.GreaterOrEqual(t, n, 200)
}

func TestRESTBodyHelpers(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	// A GET on a POST route is refused; an unknown route is 404.
	resp, err := http.Get(env.baseURL + "/v1/check")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, 200, resp.StatusCode)
	resp, err = http.Post(env.baseURL+"/v1/nope", "application/json", bytes.NewReader([]byte(`{}`)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode)
}

// TestRESTStreamsAreNDJSON: a streaming route answers application/x-ndjson, one
// response message a line, with the proto fields in lowerCamelCase.
func TestRESTStreamsAreNDJSON(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	for _, tc := range []struct {
		path, body string
		lines      int
		keys       []string
	}{
		{"/v1/tuples/read", `{"filter":{"objectType":"flow"}}`, 3, []string{"tuple", "readAt", "cursor"}},
		{"/v1/lookup/resources", `{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}`, 1, []string{"object", "lookedUpAt", "cursor"}},
		{"/v1/lookup/subjects", `{"object":{"type":"flow","id":"f1"},"permission":"execute","subjectType":"user"}`, 2, []string{"subject", "excluded", "lookedUpAt", "cursor"}},
		{"/v1/tuples/export", `{}`, 1, []string{"tuples", "exportedAt", "cursor"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Post(env.baseURL+tc.path, "application/json", strings.NewReader(tc.body))
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			require.Len(t, lines, tc.lines, "%s", body)
			for _, line := range lines {
				var m map[string]json.RawMessage
				require.NoError(t, json.Unmarshal([]byte(line), &m), line)
				for _, k := range tc.keys {
					require.Contains(t, m, k, line)
				}
			}
		})
	}
}

func TestLookups(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	var ts []string
	want := []string{"flow:f1"}
	for i := range 24 {
		ts = append(ts, fmt.Sprintf("flow:g%02d#granted@role:ops#member", i))
		want = append(want, fmt.Sprintf("flow:g%02d", i))
	}
	env.write(t, relatav1.Operation_OPERATION_TOUCH, ts...)
	anne := &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}

	// LookupResources in pages of 10, resumed by cursor.
	var got []string
	cursor, pages := "", 0
	for {
		stream, err := env.perms.LookupResources(env.ctx(), &relatav1.LookupResourcesRequest{
			ResourceType: "flow", Permission: "execute", Subject: anne, Limit: 10, Cursor: cursor,
		})
		require.NoError(t, err)
		n := 0
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			got = append(got, resp.GetObject().GetType()+":"+resp.GetObject().GetId())
			cursor = resp.GetCursor()
			n++
		}
		pages++
		if n < 10 {
			break
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, 3, pages)

	// Every result agrees with Check.
	for _, o := range got {
		resp, err := env.perms.Check(env.ctx(), checkReq(o, "execute", "user:anne"))
		require.NoError(t, err)
		require.True(t, resp.GetAllowed(), o)
	}

	// REST streams the same objects as NDJSON.
	code, body := env.post(t, "/v1/lookup/resources", `{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}`)
	require.Equal(t, 200, code, string(body))
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, len(want))
	require.Contains(t, lines[0], `"object":{"type":"flow","id":"f1"}`)

	// LookupSubjects: anne (role) and bob (tenant admin), not carl (denied).
	stream, err := env.perms.LookupSubjects(env.ctx(), &relatav1.LookupSubjectsRequest{
		Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "execute", SubjectType: "user",
	})
	require.NoError(t, err)
	var subjects []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		subjects = append(subjects, resp.GetSubject().GetObject().GetId())
	}
	require.Equal(t, []string{"anne", "bob"}, subjects)
	code, body = env.post(t, "/v1/lookup/subjects", `{"object":{"type":"flow","id":"f1"},"permission":"execute","subjectType":"user"}`)
	require.Equal(t, 200, code, string(body))
	require.Len(t, strings.Split(strings.TrimSpace(string(body)), "\n"), 2)

	// A wildcard grant is reported as user:* with its exclusions.
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:f1#granted@user:*")
	stream, err = env.perms.LookupSubjects(env.ctx(), &relatav1.LookupSubjectsRequest{
		Object: &relatav1.ObjectRef{Type: "flow", Id: "f1"}, Permission: "execute", SubjectType: "user",
	})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, "*", first.GetSubject().GetObject().GetId())
	require.Len(t, first.GetExcluded(), 1)
	require.Equal(t, "carl", first.GetExcluded()[0].GetObject().GetId())
}

func TestZookieExpired(t *testing.T) {
	env := newTestEnv(t)
	before := env.seed(t)
	z := env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:f1#granted@user:dave")
	zrev, err := tuples.ParseZookie(z)
	require.NoError(t, err)
	_, err = env.store.CollectGarbage(context.Background(), zrev)
	require.NoError(t, err)

	req := checkReq("flow:f1", "execute", "user:dave")
	req.Consistency = &relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: before}}
	_, err = env.perms.Check(env.ctx(), req)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Equal(t, relatav1.ErrorReason_ZOOKIE_EXPIRED.String(), errorInfo(err))
	require.Contains(t, status.Convert(err).Message(), "zookie expired")

	// REST answers 412 on unary and streaming routes alike, also when a stream fails
	// before its first message.
	exact := `"consistency":{"atExactSnapshot":"` + before + `"}`
	for _, tc := range []struct{ path, body string }{
		{"/v1/check", checkJSON("flow:f1", "execute", "user:dave", exact)},
		{"/v1/check/bulk", `{"items":[{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":{"object":{"type":"user","id":"dave"}}}],` + exact + `}`},
		{"/v1/expand", `{"object":{"type":"flow","id":"f1"},"relation":"granted",` + exact + `}`},
		{"/v1/schema/read", `{` + exact + `}`},
		{"/v1/tuples/read", `{"filter":{"objectType":"flow"},` + exact + `}`},
		{"/v1/lookup/resources", `{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"dave"}},` + exact + `}`},
		{"/v1/lookup/subjects", `{"object":{"type":"flow","id":"f1"},"permission":"execute","subjectType":"user",` + exact + `}`},
		{"/v1/tuples/export", `{"at":"` + before + `"}`},
		{"/v1/watch", `{"from":"` + before + `"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := env.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusPreconditionFailed, code, string(body))
			require.Contains(t, string(body), relatav1.ErrorReason_ZOOKIE_EXPIRED.String())
		})
	}

	// at_least_as_fresh an expired zookie is fine: a newer revision satisfies it.
	req.Consistency = &relatav1.Consistency{Requirement: &relatav1.Consistency_AtLeastAsFresh{AtLeastAsFresh: before}}
	resp, err := env.perms.Check(env.ctx(), req)
	require.NoError(t, err)
	require.True(t, resp.GetAllowed())
}

// TestWriteRetriesSchemaChange writes tuples while the schema is rewritten: a write
// validated against a schema that changed before it committed is retried, never lost
// or refused.
func TestWriteRetriesSchemaChange(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	ctx, cancel := context.WithCancel(env.ctx())
	schemaWrites := make(chan int, 1)
	go func() {
		n := 0
		defer func() { schemaWrites <- n }()
		for ctx.Err() == nil {
			if _, err := env.schemas.WriteSchema(ctx, &relatav1.WriteSchemaRequest{Schema: testSchema}); err != nil {
				return
			}
			n++
		}
	}()
	for i := range 100 {
		env.write(t, relatav1.Operation_OPERATION_TOUCH, fmt.Sprintf("flow:s%d#granted@user:u%d", i, i))
	}
	cancel()
	require.Positive(t, <-schemaWrites)
	stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{Filter: &relatav1.TupleFilter{ObjectType: "flow", Relation: "granted", Subject: &relatav1.SubjectFilter{Type: "user"}}})
	require.NoError(t, err)
	n := 0
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		n++
	}
	require.Equal(t, 100, n)
}

func TestFilterNamesChecked(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	for _, tc := range []struct {
		filter *relatav1.TupleFilter
		reason string
	}{
		{&relatav1.TupleFilter{ObjectType: "flw"}, relatav1.ErrorReason_UNKNOWN_TYPE.String()},
		{&relatav1.TupleFilter{ObjectType: "flow", Relation: "grnted"}, relatav1.ErrorReason_UNKNOWN_RELATION.String()},
		{&relatav1.TupleFilter{Subject: &relatav1.SubjectFilter{Type: "usr"}}, relatav1.ErrorReason_UNKNOWN_TYPE.String()},
		{&relatav1.TupleFilter{ObjectType: "flow", Subject: &relatav1.SubjectFilter{Type: "role", Relation: "membr"}}, relatav1.ErrorReason_UNKNOWN_RELATION.String()},
	} {
		stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{Filter: tc.filter})
		require.NoError(t, err)
		_, err = stream.Recv()
		require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
		require.Equal(t, tc.reason, errorInfo(err))
		if tc.filter.GetObjectType() != "" {
			_, err = env.rels.Delete(env.ctx(), &relatav1.DeleteRequest{Filter: tc.filter})
			require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
		}
	}
	code, body := env.post(t, "/v1/tuples/read", `{"filter":{"objectType":"flw"}}`)
	require.Equal(t, 404, code, string(body))
}

// TestRESTShortOperationNames: the REST API spells the operations CREATE, TOUCH, DELETE
// (and MUST_MATCH, MUST_NOT_MATCH); REST accepts them beside the prefixed proto names.
func TestRESTShortOperationNames(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"updates":[{"operation":"CREATE","tuple":{"object":{"type":"flow","id":"f9"},"relation":"granted","subject":{"object":{"type":"user","id":"zoe"}}}}]}`, http.StatusOK},
		{`{"updates":[{"operation":"CREATE","tuple":{"object":{"type":"flow","id":"f9"},"relation":"granted","subject":{"object":{"type":"user","id":"zoe"}}}}]}`, http.StatusConflict},
		{`{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f9"},"relation":"granted","subject":{"object":{"type":"user","id":"zoe"}}}}],"preconditions":[{"operation":"MUST_MATCH","filter":{"objectType":"flow","objectId":"f9"}}]}`, http.StatusOK},
		{`{"updates":[{"operation":"DELETE","tuple":{"object":{"type":"flow","id":"f9"},"relation":"granted","subject":{"object":{"type":"user","id":"zoe"}}}}],"preconditions":[{"operation":"MUST_NOT_MATCH","filter":{"objectType":"flow","objectId":"nope"}}]}`, http.StatusOK},
	} {
		code, body := env.post(t, "/v1/tuples/write", tc.body)
		require.Equal(t, tc.want, code, string(body))
	}
	c, err := env.perms.Check(env.ctx(), &relatav1.CheckRequest{
		Object: &relatav1.ObjectRef{Type: "flow", Id: "f9"}, Permission: "granted",
		Subject:     &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "zoe"}},
		Consistency: &relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}},
	})
	require.NoError(t, err)
	require.False(t, c.GetAllowed(), "the DELETE removed the tuple")
}

// TestFilterSubjectRefSpelling: a filter's subject may be written like a tuple's
// SubjectRef ({"object":{"type","id"}}) as well as flat ({"type","id"}).
func TestFilterSubjectRefSpelling(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	for _, filter := range []string{
		`{"subject":{"object":{"type":"user","id":"carl"}}}`,
		`{"subject":{"type":"user","id":"carl"}}`,
		`{"subject":{"type":"user","object":{"id":"carl"}}}`,
	} {
		code, body := env.post(t, "/v1/tuples/read", `{"filter":`+filter+`}`)
		require.Equal(t, http.StatusOK, code, string(body))
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		require.Len(t, lines, 2, "%s: %s", filter, body)
		for _, l := range lines {
			require.Contains(t, l, `"subject":{"object":{"type":"user","id":"carl"}`)
		}
	}
	code, body := env.post(t, "/v1/tuples/read", `{"filter":{"subject":{"type":"user","object":{"type":"role"}}}}`)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), "subject.object.type")
}

// TestSchemaErrorMetadata: an INVALID_SCHEMA error carries the first error's position
// as ErrorInfo metadata (file, line, column, problem) and how many errors there are,
// so that clients never read positions out of the message.
func TestSchemaErrorMetadata(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: "definition flow {\n relation a: nope\n relation b: nada\n}\n"})
	require.Error(t, err)
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	require.NotNil(t, info, "%v", err)
	require.Equal(t, relatav1.ErrorReason_INVALID_SCHEMA.String(), info.GetReason())
	require.Equal(t, map[string]string{
		MetadataFile: "schema", MetadataLine: "2", MetadataColumn: "14",
		MetadataProblem: "unknown type nope in relation flow#a", MetadataErrors: "2",
	}, info.GetMetadata())
}
