package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// TestDiffSchema diffs over gRPC and REST against the seeded store: additions,
// removals with their orphan counts and examples, nothing written.
func TestDiffSchema(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)
	env.write(t, relatav1.Operation_OPERATION_TOUCH, "flow:f2#denied@user:dan", "flow:f3#denied@user:eve")
	next := strings.Replace(testSchema, "    relation denied: user | role#member\n", "", 1)
	next = strings.Replace(next, "permission execute = (granted + tenant->view) - denied", "permission execute = granted + tenant->view", 1)
	next = strings.Replace(next, "relation granted: user | role#member | user:*", "relation granted: user | user:*", 1)
	next += "\ndefinition team {\n    relation member: user\n}\n"
	headBefore, err := env.store.HeadRevision(env.ctx())
	require.NoError(t, err)

	resp, err := env.schemas.DiffSchema(env.ctx(), &relatav1.DiffSchemaRequest{Schema: next})
	require.NoError(t, err)
	require.True(t, resp.GetRefused())
	require.Equal(t, int64(4), resp.GetOrphanedTuples())
	require.Contains(t, resp.GetRefusal(), "relation flow#denied removed, but 3 tuples still use it (e.g. flow:f1#denied@user:carl)")
	require.Contains(t, resp.GetRefusal(), "subject type role#member removed from flow#granted, but 1 tuple still uses it (e.g. flow:f1#granted@role:ops#member)")

	changes := map[string]*relatav1.SchemaChange{}
	for list, cs := range map[string][]*relatav1.SchemaChange{"added": resp.GetAdded(), "removed": resp.GetRemoved(), "changed": resp.GetChanged()} {
		for _, c := range cs {
			name := c.GetName()
			if c.GetDefinition() != "" {
				name = c.GetDefinition() + "#" + name
			}
			changes[list+" "+c.GetKind()+" "+name] = c
		}
	}
	require.Contains(t, changes, "added definition team")
	require.Contains(t, changes, "added relation team#member")
	require.Contains(t, changes, "changed definition flow")
	require.Contains(t, changes, "changed permission flow#execute")
	denied := changes["removed relation flow#denied"]
	require.NotNil(t, denied, "%v", changes)
	require.Equal(t, int64(3), denied.GetOrphanedTuples())
	require.Equal(t, "flow:f1#denied@user:carl", tupleFromProtoForTest(denied.GetOrphanExample()))
	granted := changes["changed relation flow#granted"]
	require.NotNil(t, granted, "%v", changes)
	require.Equal(t, int64(1), granted.GetOrphanedTuples())
	require.Equal(t, "user | role#member | user:* → user | user:*", granted.GetDescription())

	headAfter, err := env.store.HeadRevision(env.ctx())
	require.NoError(t, err)
	require.Equal(t, headBefore, headAfter, "a diff writes nothing")

	// The write is refused, naming every relation with its count.
	_, err = env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: next})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Contains(t, err.Error(), "3 tuples")
	require.Contains(t, err.Error(), "flow#granted")
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	require.NotNil(t, info)
	require.Equal(t, relatav1.ErrorReason_SCHEMA_ORPHANS_TUPLES.String(), info.GetReason())
	require.Equal(t, map[string]string{"tuple": "flow:f1#granted@role:ops#member", "relations": "flow#granted=1,flow#denied=3", "orphaned_tuples": "4"}, info.GetMetadata())

	// Over REST, the same answer in lowerCamelCase.
	body, err := json.Marshal(map[string]string{"schema": next})
	require.NoError(t, err)
	code, out := env.post(t, "/v1/schema/diff", string(body))
	require.Equal(t, 200, code, "%s", out)
	var rest struct {
		Refused        bool
		OrphanedTuples string
		Removed        []struct {
			Kind, Definition, Name string
			OrphanedTuples         string
			OrphanExample          struct{ Relation string }
		}
	}
	require.NoError(t, json.Unmarshal(out, &rest))
	require.True(t, rest.Refused)
	require.Equal(t, "4", rest.OrphanedTuples)
	require.Len(t, rest.Removed, 1)
	require.Equal(t, "relation", rest.Removed[0].Kind)
	require.Equal(t, "3", rest.Removed[0].OrphanedTuples)
	require.Equal(t, "denied", rest.Removed[0].OrphanExample.Relation)

	// A schema with errors fails as a write does; the schema in force is unchanged.
	_, err = env.schemas.DiffSchema(env.ctx(), &relatav1.DiffSchemaRequest{Schema: "definition user {"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	resp, err = env.schemas.DiffSchema(env.ctx(), &relatav1.DiffSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	require.True(t, resp.GetUnchanged())
	require.False(t, resp.GetRefused())
	require.Empty(t, resp.GetAdded())
	require.Empty(t, resp.GetRemoved())
	require.Empty(t, resp.GetChanged())
}

// TestDiffSchemaCaveats: dropping `with CAVEAT` from a relation that keeps the plain
// type, removing a caveat, or changing its parameters while tuples use it is refused,
// in the diff and in the write.
func TestDiffSchemaCaveats(t *testing.T) {
	env := newTestEnv(t)
	const base = "definition user {}\ncaveat on_net(cidr string) { cidr == \"10.0.0.0/8\" }\ndefinition doc {\n relation viewer: user | user with on_net\n}\n"
	_, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: base})
	require.NoError(t, err)
	code, out := env.post(t, "/v1/tuples/write", `{"updates":[
		{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"doc","id":"1"},"relation":"viewer","subject":{"object":{"type":"user","id":"anne"}},"caveat":{"name":"on_net"}}},
		{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"doc","id":"2"},"relation":"viewer","subject":{"object":{"type":"user","id":"bob"}}}}]}`)
	require.Equal(t, 200, code, "%s", out)

	for name, next := range map[string]string{
		"with dropped, plain type kept": "definition user {}\ncaveat on_net(cidr string) { cidr == \"10.0.0.0/8\" }\ndefinition doc {\n relation viewer: user\n}\n",
		"caveat removed":                "definition user {}\ndefinition doc {\n relation viewer: user\n}\n",
		"parameters changed":            "definition user {}\ncaveat on_net(cidr int) { cidr == 8 }\ndefinition doc {\n relation viewer: user | user with on_net\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := env.schemas.DiffSchema(env.ctx(), &relatav1.DiffSchemaRequest{Schema: next})
			require.NoError(t, err)
			require.True(t, resp.GetRefused(), "%v", resp)
			require.Equal(t, int64(1), resp.GetOrphanedTuples())
			require.Contains(t, resp.GetRefusal(), "doc:1#viewer@user:anne[on_net]")
			_, err = env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: next})
			require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
			require.Contains(t, err.Error(), "doc:1#viewer@user:anne")
		})
	}
	// Only the expression changed: allowed.
	resp, err := env.schemas.DiffSchema(env.ctx(), &relatav1.DiffSchemaRequest{Schema: strings.Replace(base, `cidr == "10.0.0.0/8"`, `cidr != ""`, 1)})
	require.NoError(t, err)
	require.False(t, resp.GetRefused())
	require.Len(t, resp.GetChanged(), 1)
	require.Equal(t, "caveat", resp.GetChanged()[0].GetKind())
}

// TestSchemaHistory lists schema writes newest first and reads each at its zookie,
// over gRPC and REST.
func TestSchemaHistory(t *testing.T) {
	env := newTestEnv(t)
	v1 := "definition user {}\n"
	v2 := "definition user {}\ndefinition doc {\n relation viewer: user\n}\n"
	w1, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: v1})
	require.NoError(t, err)
	w2, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: v2})
	require.NoError(t, err)

	list, err := env.schemas.ListSchemaRevisions(env.ctx(), &relatav1.ListSchemaRevisionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetRevisions(), 2)
	require.Equal(t, w2.GetWrittenAt(), list.GetRevisions()[0].GetWrittenAt())
	require.Equal(t, w1.GetWrittenAt(), list.GetRevisions()[1].GetWrittenAt())
	require.Equal(t, uint32(2), list.GetRevisions()[0].GetDefinitions())
	require.Equal(t, uint32(len(v1)), list.GetRevisions()[1].GetSize())
	require.Greater(t, list.GetRevisions()[0].GetRevision(), list.GetRevisions()[1].GetRevision())
	limited, err := env.schemas.ListSchemaRevisions(env.ctx(), &relatav1.ListSchemaRevisionsRequest{Limit: 1})
	require.NoError(t, err)
	require.Len(t, limited.GetRevisions(), 1)

	r2, err := tuples.ParseZookie(w2.GetWrittenAt())
	require.NoError(t, err)
	for _, tc := range []struct{ at, want string }{{w1.GetWrittenAt(), v1}, {env.srv.Zookie(r2 - 1), v1}, {w2.GetWrittenAt(), v2}} {
		r, err := env.schemas.ReadSchema(env.ctx(), &relatav1.ReadSchemaRequest{At: tc.at})
		require.NoError(t, err)
		require.Equal(t, tc.want, r.GetSchema())
		require.Equal(t, tc.at, r.GetReadAt())
	}
	_, err = env.schemas.ReadSchema(env.ctx(), &relatav1.ReadSchemaRequest{At: "nonsense"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, err.Error(), "at:")
	_, err = env.schemas.ReadSchema(env.ctx(), &relatav1.ReadSchemaRequest{At: w1.GetWrittenAt(), Consistency: &relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	code, out := env.post(t, "/v1/schema/revisions", `{}`)
	require.Equal(t, 200, code, "%s", out)
	require.Contains(t, string(out), `"writtenAt":"`+w1.GetWrittenAt()+`"`)
	code, out = env.post(t, "/v1/schema/read", `{"at":"`+w1.GetWrittenAt()+`"}`)
	require.Equal(t, 200, code, "%s", out)
	require.Contains(t, string(out), `"schema":"definition user {}\n"`)
}
