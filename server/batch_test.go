package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestBatchedStreams: with batch_results, LookupResources, LookupSubjects and Read send
// many results a message in `results`, with the zookie and a cursor resuming after the
// message's last result on the message and the single-result fields empty; the results
// are those of the unbatched stream, in the same order; over gRPC and REST.
func TestBatchedStreams(t *testing.T) {
	// Batches cut by size alone (not by the 20 ms timer), so that the message counts
	// below do not depend on the machine's speed.
	env := newTestEnv(t, func(c *Config) { c.batchDelay = time.Hour })
	env.seed(t)
	const n = 2500 // more than one batch
	var ts []string
	for i := range n {
		ts = append(ts, fmt.Sprintf("flow:g%04d#granted@role:ops#member", i), fmt.Sprintf("flow:g%04d#granted@user:u%04d", i, i))
	}
	for chunk := range slices.Chunk(ts, 1000) {
		env.write(t, relatav1.Operation_OPERATION_TOUCH, chunk...)
	}
	anne := &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: "anne"}}

	t.Run("LookupResources", func(t *testing.T) {
		lookup := func(batch bool, cursor string, limit uint32) (ids []string, msgs int, last string) {
			stream, err := env.perms.LookupResources(env.ctx(), &relatav1.LookupResourcesRequest{
				ResourceType: "flow", Permission: "execute", Subject: anne, BatchResults: batch, Cursor: cursor, Limit: limit})
			require.NoError(t, err)
			for {
				resp, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return ids, msgs, last
				}
				require.NoError(t, err)
				msgs++
				require.NotEmpty(t, resp.GetLookedUpAt())
				require.NotEmpty(t, resp.GetCursor())
				last = resp.GetCursor()
				if !batch {
					require.Empty(t, resp.GetResults())
					ids = append(ids, resp.GetObject().GetId())
					continue
				}
				require.Nil(t, resp.GetObject(), "single-result fields are empty in a batch")
				require.NotEmpty(t, resp.GetResults())
				for _, r := range resp.GetResults() {
					ids = append(ids, r.GetObject().GetId())
				}
			}
		}
		one, msgs, _ := lookup(false, "", 0)
		require.Len(t, one, n+1)
		require.Equal(t, n+1, msgs)
		many, msgs, _ := lookup(true, "", 0)
		require.Equal(t, one, many)
		require.Equal(t, 3, msgs, "1,000 results a message")
		// A message's cursor resumes after its last result, and limit counts results.
		page, msgs, cursor := lookup(true, "", 1200)
		require.Equal(t, one[:1200], page)
		require.Equal(t, 2, msgs)
		rest, _, _ := lookup(true, cursor, 0)
		require.Equal(t, one[1200:], rest)
	})
	t.Run("LookupSubjects", func(t *testing.T) {
		lookup := func(batch bool) (subjects []string) {
			stream, err := env.perms.LookupSubjects(env.ctx(), &relatav1.LookupSubjectsRequest{
				Object: &relatav1.ObjectRef{Type: "tenant", Id: "acme"}, Permission: "view", SubjectType: "user", BatchResults: batch})
			require.NoError(t, err)
			for {
				resp, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return subjects
				}
				require.NoError(t, err)
				require.NotEmpty(t, resp.GetCursor())
				if !batch {
					subjects = append(subjects, resp.GetSubject().GetObject().GetId())
					continue
				}
				require.Nil(t, resp.GetSubject())
				for _, r := range resp.GetResults() {
					subjects = append(subjects, r.GetSubject().GetObject().GetId())
				}
			}
		}
		one := lookup(false)
		require.NotEmpty(t, one)
		require.Equal(t, one, lookup(true))
	})
	t.Run("Read", func(t *testing.T) {
		read := func(batch bool) (got []string, msgs int) {
			stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{
				Filter: &relatav1.TupleFilter{ObjectType: "flow", Relation: "granted"}, BatchResults: batch})
			require.NoError(t, err)
			for {
				resp, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return got, msgs
				}
				require.NoError(t, err)
				msgs++
				require.NotEmpty(t, resp.GetReadAt())
				if !batch {
					got = append(got, tupleFromProtoForTest(resp.GetTuple()))
					continue
				}
				require.Nil(t, resp.GetTuple())
				for _, r := range resp.GetResults() {
					got = append(got, tupleFromProtoForTest(r.GetTuple()))
				}
			}
		}
		one, _ := read(false)
		require.Len(t, one, 2*n+1)
		many, msgs := read(true)
		require.Equal(t, one, many)
		require.Equal(t, 6, msgs)
	})
	t.Run("REST", func(t *testing.T) {
		code, body := env.post(t, "/v1/lookup/resources",
			`{"resourceType":"flow","permission":"execute","subject":{"object":{"type":"user","id":"anne"}},"batchResults":true,"limit":3}`)
		require.Equal(t, http.StatusOK, code, string(body))
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		require.Len(t, lines, 1, "three results in one message")
		var msg struct {
			Object     any    `json:"object"`
			LookedUpAt string `json:"lookedUpAt"`
			Cursor     string `json:"cursor"`
			Results    []struct {
				Object struct{ Type, ID string }
			} `json:"results"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &msg), lines[0])
		require.Nil(t, msg.Object)
		require.NotEmpty(t, msg.LookedUpAt)
		require.NotEmpty(t, msg.Cursor)
		require.Len(t, msg.Results, 3)
		require.Equal(t, "f1", msg.Results[0].Object.ID)

		code, body = env.post(t, "/v1/tuples/read", `{"filter":{"objectType":"flow"},"batchResults":true}`)
		require.Equal(t, http.StatusOK, code, string(body))
		require.Contains(t, string(body), `"results":[{"tuple":`)
		code, body = env.post(t, "/v1/lookup/subjects", `{"object":{"type":"flow","id":"f1"},"permission":"execute","subjectType":"user","batchResults":true}`)
		require.Equal(t, http.StatusOK, code, string(body))
		require.Len(t, strings.Split(strings.TrimSpace(string(body)), "\n"), 1)
		require.Contains(t, string(body), `"results":[{"subject":`)
	})
}
