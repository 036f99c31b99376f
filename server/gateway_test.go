package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

func TestJSONFieldPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"filter.object_type", "filter.objectType"},
		{"updates[1].tuple.object.id", "updates[1].tuple.object.id"},
		{"consistency.at_least_as_fresh", "consistency.atLeastAsFresh"},
		{"object_types[1]", "objectTypes[1]"},
		{"items[2].subject.object.type", "items[2].subject.object.type"},
		{"filter.subject_filter.subject_relation", "filter.subjectFilter.subjectRelation"},
	} {
		require.Equal(t, tc.want, jsonFieldPath(tc.in), tc.in)
	}
}

// TestRESTFieldPaths: a REST error names the field as the request spelled it in JSON
// (the ErrorInfo field and the message), unary and streamed; gRPC keeps the proto's
// names.
func TestRESTFieldPaths(t *testing.T) {
	env := newTestEnv(t)
	z := env.seed(t)
	for _, tc := range []struct {
		name, path, body, field, proto string
	}{
		{"stream", "/v1/tuples/read", `{"filter":{"objectType":"Flow"}}`, "filter.objectType", "object_type"},
		{"unary, nested", "/v1/tuples/write",
			`{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"granted","subject":{"object":{"type":"user","id":"ok"}}}},` +
				`{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"bad id"},"relation":"granted","subject":{"object":{"type":"user","id":"ok"}}}}]}`,
			"updates[1].tuple.object.id", "updates[1].tuple.object.id"},
		{"unary, zookie", "/v1/check", checkJSON("flow:f1", "execute", "user:anne", `"consistency":{"atExactSnapshot":"`+tamper(z)+`"}`),
			"consistency.atExactSnapshot", "at_exact_snapshot"},
		{"stream, zookie", "/v1/tuples/export", `{"at":"` + tamper(z) + `"}`, "at", "at"},
		{"watch", "/v1/watch", `{"objectTypes":["flow","Nope"]}`, "objectTypes[1]", "object_types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := env.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%s", body)
			require.Contains(t, string(body), `"field":"`+tc.field+`"`)
			var e restError
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			if e.Message == "" {
				var streamed struct{ Error restError }
				require.NoError(t, json.Unmarshal(body, &streamed), "%s", body)
				e = streamed.Error
			}
			require.Contains(t, e.Message, tc.field)
			if tc.proto != tc.field {
				require.NotContains(t, string(body), tc.proto)
			}
		})
	}

	// gRPC keeps the proto's names.
	stream, err := env.rels.Read(env.ctx(), &relatav1.ReadRequest{Filter: &relatav1.TupleFilter{ObjectType: "Flow"}})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	require.NotNil(t, info)
	require.Equal(t, "filter.object_type", info.GetMetadata()["field"])
	require.Contains(t, status.Convert(err).Message(), "filter.object_type")
}
