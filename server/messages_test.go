package server

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// internalPrefix matches a name of the code's packages used as a message prefix
// ("pebblestore: "), which means nothing to a user: at the start of a message, after
// another ": " or after "(". "schema: " is not one: it says
// the schema refused.
var internalPrefix = regexp.MustCompile(`(^|: |\(|"message":")(tuples|check|pebblestore|pgstore|server|writes|validation|validationfile|client|models|console|cli): `)

// TestMessagesHaveNoPackagePrefixes sends bad requests over gRPC and REST: every error
// message a user sees names the problem without internal package prefixes. The
// messages are built so at their sources; nothing strips them afterwards.
func TestMessagesHaveNoPackagePrefixes(t *testing.T) {
	env := newTestEnv(t)
	zookie := env.seed(t)
	perms, rels, schemas := env.perms, env.rels, env.schemas
	type call func(context.Context, []byte) error
	unary := func(m proto.Message, fn func(context.Context, proto.Message) error) call {
		return func(ctx context.Context, body []byte) error {
			req := proto.Clone(m)
			if err := protojson.Unmarshal(body, req); err != nil {
				return err
			}
			return fn(ctx, req)
		}
	}
	check := unary(&relatav1.CheckRequest{}, func(ctx context.Context, m proto.Message) error {
		_, err := perms.Check(ctx, m.(*relatav1.CheckRequest))
		return err
	})
	write := unary(&relatav1.WriteRequest{}, func(ctx context.Context, m proto.Message) error {
		_, err := rels.Write(ctx, m.(*relatav1.WriteRequest))
		return err
	})
	del := unary(&relatav1.DeleteRequest{}, func(ctx context.Context, m proto.Message) error {
		_, err := rels.Delete(ctx, m.(*relatav1.DeleteRequest))
		return err
	})
	writeSchema := unary(&relatav1.WriteSchemaRequest{}, func(ctx context.Context, m proto.Message) error {
		_, err := schemas.WriteSchema(ctx, m.(*relatav1.WriteSchemaRequest))
		return err
	})
	read := unary(&relatav1.ReadRequest{}, func(ctx context.Context, m proto.Message) error {
		stream, err := rels.Read(ctx, m.(*relatav1.ReadRequest))
		if err != nil {
			return err
		}
		for {
			if _, err := stream.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	})
	const anne = `{"object":{"type":"user","id":"anne"}}`
	for _, tc := range []struct {
		name, path, body string
		grpc             call
	}{
		{"unknown type", "/v1/check", `{"object":{"type":"nope","id":"x"},"permission":"execute","subject":` + anne + `}`, check},
		{"unknown permission", "/v1/check", `{"object":{"type":"flow","id":"f1"},"permission":"nope","subject":` + anne + `}`, check},
		{"bad zookie", "/v1/check", `{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":` + anne + `,"consistency":{"atExactSnapshot":"bogus"}}`, check},
		{"future zookie", "/v1/check", `{"object":{"type":"flow","id":"f1"},"permission":"execute","subject":` + anne + `,"consistency":{"atLeastAsFresh":"` + zookie + `x"}}`, check},
		{"create existing", "/v1/tuples/write", `{"updates":[{"operation":"CREATE","tuple":{"object":{"type":"role","id":"ops"},"relation":"member","subject":` + anne + `}}]}`, write},
		{"relation not in schema", "/v1/tuples/write", `{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f1"},"relation":"nope","subject":` + anne + `}}]}`, write},
		{"subject type not allowed", "/v1/tuples/write", `{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"role","id":"ops"},"relation":"member","subject":{"object":{"type":"flow","id":"f1"}}}}]}`, write},
		{"precondition failed", "/v1/tuples/write", `{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"role","id":"x"},"relation":"member","subject":` + anne + `}}],"preconditions":[{"operation":"MUST_MATCH","filter":{"objectType":"flow","objectId":"nope"}}]}`, write},
		{"delete precondition failed", "/v1/tuples/delete", `{"filter":{"objectType":"flow","objectId":"f1"},"preconditions":[{"operation":"MUST_NOT_MATCH","filter":{"objectType":"flow","objectId":"f1"}}]}`, del},
		{"delete unknown type", "/v1/tuples/delete", `{"filter":{"objectType":"nope"}}`, del},
		{"read bad cursor", "/v1/tuples/read", `{"filter":{"objectType":"flow"},"cursor":"bogus"}`, read},
		{"read unknown type", "/v1/tuples/read", `{"filter":{"objectType":"nope"}}`, read},
		{"schema syntax", "/v1/schema/write", `{"schema":"definition user {"}`, writeSchema},
		{"schema orphans tuples", "/v1/schema/write", `{"schema":"definition user {}"}`, writeSchema},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.grpc(env.ctx(), []byte(tc.body))
			require.Error(t, err)
			msg := status.Convert(err).Message()
			require.NotEmpty(t, msg)
			require.NotRegexp(t, internalPrefix, msg, "gRPC message")

			code, body := env.post(t, tc.path, tc.body)
			require.GreaterOrEqual(t, code, http.StatusBadRequest, string(body))
			require.NotRegexp(t, internalPrefix, string(body), "REST body")
		})
	}
}
