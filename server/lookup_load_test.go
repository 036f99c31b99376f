package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestBigLookupsLeaveRoom: eight big lookups in flight, each stopped after its first
// result by a client that does not read on (the server's sends block on flow control),
// take nothing /healthz and a check need: both answer while the lookups wait, and
// every lookup then resumes and returns all its results, in order, once each.
func TestBigLookupsLeaveRoom(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	const n = 20000
	var ts []string
	for i := range n {
		ts = append(ts, fmt.Sprintf("flow:big%05d#granted@role:ops#member", i))
	}
	for chunk := range slices.Chunk(ts, 1000) {
		env.write(t, relatav1.Operation_OPERATION_TOUCH, chunk...)
	}
	anne := &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}

	var streams []relatav1.PermissionService_LookupResourcesClient
	for range 8 {
		stream, err := env.perms.LookupResources(env.ctx(), &relatav1.LookupResourcesRequest{
			ResourceType: "flow", Permission: "execute", Subject: anne})
		require.NoError(t, err)
		first, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, "big00000", first.GetObject().GetId())
		streams = append(streams, stream)
	}

	code, body := getStatus(t, env.baseURL+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	resp, err := env.perms.Check(env.ctx(), checkReq("flow:big12345", "execute", "user:anne"))
	require.NoError(t, err)
	require.True(t, resp.GetAllowed())

	for _, stream := range streams {
		got := 1
		last := "big00000"
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			id := resp.GetObject().GetId()
			require.Greater(t, id, last, "in order, once each")
			last = id
			got++
		}
		require.Equal(t, n+1, got) // and flow:f1
	}
}

// TestBigSubjectLookupsLeaveRoom: the same for LookupSubjects over a union
// (tenant#view): eight lookups of a 20,000-user audience stopped after their first
// result leave /healthz and a check answering, then each resumes and returns every
// user, in order, once each.
func TestBigSubjectLookupsLeaveRoom(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	const n = 20000
	var ts []string
	for i := range n {
		ts = append(ts, fmt.Sprintf("tenant:big#viewer@user:u%05d", i))
	}
	for chunk := range slices.Chunk(ts, 1000) {
		env.write(t, relatav1.Operation_OPERATION_TOUCH, chunk...)
	}
	big := &relatav1.ObjectRef{Type: "tenant", Id: "big"}

	var streams []relatav1.PermissionService_LookupSubjectsClient
	for range 8 {
		stream, err := env.perms.LookupSubjects(env.ctx(), &relatav1.LookupSubjectsRequest{
			Object: big, Permission: "view", SubjectType: "user"})
		require.NoError(t, err)
		first, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, "u00000", first.GetSubject().GetObject().GetId())
		streams = append(streams, stream)
	}

	code, body := getStatus(t, env.baseURL+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	resp, err := env.perms.Check(env.ctx(), checkReq("tenant:big", "view", "user:u12345"))
	require.NoError(t, err)
	require.True(t, resp.GetAllowed())

	for _, stream := range streams {
		got := 1
		last := "u00000"
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			id := resp.GetSubject().GetObject().GetId()
			require.Greater(t, id, last, "in order, once each")
			last = id
			got++
		}
		require.Equal(t, n, got)
	}
}
