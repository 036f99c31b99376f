package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestCursorBoundToQuery: a cursor resumes only the lookup or read that returned it; given
// to another one (another method, type, permission, subject, object or filter) it is
// INVALID_ARGUMENT INVALID_CURSOR naming the field cursor, over gRPC and REST alike.
func TestCursorBoundToQuery(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	var ts []string
	for i := range 5 {
		ts = append(ts, fmt.Sprintf("flow:g%02d#granted@role:ops#member", i), fmt.Sprintf("flow:g%02d#granted@user:u%d", i, i))
	}
	env.write(t, relatav1.Operation_OPERATION_TOUCH, ts...)
	anne := &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}
	bob := &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "bob"}}
	f1 := &relatav1.ObjectRef{Type: "flow", Id: "f1"}
	g00 := &relatav1.ObjectRef{Type: "flow", Id: "g00"}

	lr := func(req *relatav1.LookupResourcesRequest) (cursors []string, err error) {
		stream, err := env.perms.LookupResources(env.ctx(), req)
		require.NoError(t, err)
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return cursors, nil
			}
			if err != nil {
				return cursors, err
			}
			cursors = append(cursors, resp.GetCursor())
		}
	}
	ls := func(req *relatav1.LookupSubjectsRequest) (cursors []string, err error) {
		stream, err := env.perms.LookupSubjects(env.ctx(), req)
		require.NoError(t, err)
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return cursors, nil
			}
			if err != nil {
				return cursors, err
			}
			cursors = append(cursors, resp.GetCursor())
		}
	}
	read := func(req *relatav1.ReadRequest) (cursors []string, err error) {
		stream, err := env.rels.Read(env.ctx(), req)
		require.NoError(t, err)
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return cursors, nil
			}
			if err != nil {
				return cursors, err
			}
			cursors = append(cursors, resp.GetCursor())
		}
	}
	invalid := func(t *testing.T, err error) {
		t.Helper()
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.Equal(t, relatav1.ErrorReason_INVALID_CURSOR.String(), errorInfo(err))
		require.Equal(t, "cursor", errorMetadata(err)["field"])
	}

	lrReq := func() *relatav1.LookupResourcesRequest {
		return &relatav1.LookupResourcesRequest{ResourceType: "flow", Permission: "execute", Subject: anne, Limit: 1}
	}
	lrCursors, err := lr(lrReq())
	require.NoError(t, err)
	require.Len(t, lrCursors, 1)
	lrCursor := lrCursors[0]
	lsReq := func() *relatav1.LookupSubjectsRequest {
		return &relatav1.LookupSubjectsRequest{Object: g00, Permission: "execute", SubjectType: "user", Limit: 1}
	}
	lsCursors, err := ls(lsReq())
	require.NoError(t, err)
	require.Len(t, lsCursors, 1)
	lsCursor := lsCursors[0]
	readReq := func() *relatav1.ReadRequest {
		return &relatav1.ReadRequest{Filter: &relatav1.TupleFilter{ObjectType: "flow", Relation: "granted"}, Limit: 1}
	}
	readCursors, err := read(readReq())
	require.NoError(t, err)
	readCursor := readCursors[0]

	t.Run("same query resumes", func(t *testing.T) {
		req := lrReq()
		req.Cursor, req.Limit = lrCursor, 0
		cursors, err := lr(req)
		require.NoError(t, err)
		require.NotEmpty(t, cursors)
		sreq := lsReq()
		sreq.Cursor = lsCursor
		_, err = ls(sreq)
		require.NoError(t, err)
		rreq := readReq()
		rreq.Cursor = readCursor
		_, err = read(rreq)
		require.NoError(t, err)
	})
	t.Run("LookupResources", func(t *testing.T) {
		for name, edit := range map[string]func(*relatav1.LookupResourcesRequest){
			"permission":    func(r *relatav1.LookupResourcesRequest) { r.Permission = "view" },
			"subject":       func(r *relatav1.LookupResourcesRequest) { r.Subject = bob },
			"resource_type": func(r *relatav1.LookupResourcesRequest) { r.ResourceType, r.Permission = "tenant", "view" },
			"read cursor":   func(r *relatav1.LookupResourcesRequest) { r.Cursor = readCursor },
			"subjects":      func(r *relatav1.LookupResourcesRequest) { r.Cursor = lsCursor },
		} {
			t.Run(name, func(t *testing.T) {
				req := lrReq()
				req.Cursor = lrCursor
				edit(req)
				_, err := lr(req)
				invalid(t, err)
			})
		}
	})
	t.Run("LookupSubjects", func(t *testing.T) {
		for _, edit := range []func(*relatav1.LookupSubjectsRequest){
			func(r *relatav1.LookupSubjectsRequest) { r.Object = f1 },
			func(r *relatav1.LookupSubjectsRequest) { r.Permission = "view" },
			func(r *relatav1.LookupSubjectsRequest) { r.SubjectType, r.SubjectRelation = "role", "member" },
			func(r *relatav1.LookupSubjectsRequest) { r.Cursor = lrCursor },
		} {
			req := lsReq()
			req.Cursor = lsCursor
			edit(req)
			_, err := ls(req)
			invalid(t, err)
		}
	})
	t.Run("Read", func(t *testing.T) {
		for _, edit := range []func(*relatav1.ReadRequest){
			func(r *relatav1.ReadRequest) { r.Filter.Relation = "tenant" },
			func(r *relatav1.ReadRequest) { r.Filter.ObjectId = "g01" },
			func(r *relatav1.ReadRequest) { r.Filter = &relatav1.TupleFilter{ObjectType: "flow"} },
			func(r *relatav1.ReadRequest) { r.Cursor = lrCursor },
		} {
			req := readReq()
			req.Cursor = readCursor
			edit(req)
			_, err := read(req)
			invalid(t, err)
		}
	})
	t.Run("REST", func(t *testing.T) {
		code, body := env.post(t, "/v1/lookup/resources",
			`{"resourceType":"flow","permission":"view","subject":{"object":{"type":"user","id":"anne"}},"cursor":"`+lrCursor+`"}`)
		require.Equal(t, http.StatusBadRequest, code, string(body))
		require.Contains(t, string(body), relatav1.ErrorReason_INVALID_CURSOR.String())
		require.Contains(t, string(body), `"field":"cursor"`)
		code, body = env.post(t, "/v1/tuples/read", `{"filter":{"objectType":"tenant"},"cursor":"`+readCursor+`"}`)
		require.Equal(t, http.StatusBadRequest, code, string(body))
		require.Contains(t, string(body), relatav1.ErrorReason_INVALID_CURSOR.String())
		// The same query resumes over REST too.
		code, body = env.post(t, "/v1/lookup/resources",
			`{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"anne"}},"cursor":"`+lrCursor+`"}`)
		require.Equal(t, http.StatusOK, code, string(body))
		require.NotContains(t, string(body), `"id":"f1"`, "resumed after the first result")
		require.Contains(t, string(body), `"id":"g00"`)
	})
}
