package server

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestWriteSchemaUnchanged: writing the schema already in force writes nothing and
// answers the head revision, over gRPC and REST alike.
func TestWriteSchemaUnchanged(t *testing.T) {
	env := newTestEnv(t)
	first, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	head, err := env.store.HeadRevision(env.ctx())
	require.NoError(t, err)

	again, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	require.Equal(t, first.GetWrittenAt(), again.GetWrittenAt())
	after, err := env.store.HeadRevision(env.ctx())
	require.NoError(t, err)
	require.Equal(t, head, after, "no new revision")

	req, err := json.Marshal(map[string]string{"schema": testSchema})
	require.NoError(t, err)
	status, body := env.post(t, "/v1/schema/write", string(req))
	require.Equal(t, 200, status, string(body))
	require.JSONEq(t, `{"writtenAt":"`+first.GetWrittenAt()+`"}`, string(body))
	after, err = env.store.HeadRevision(env.ctx())
	require.NoError(t, err)
	require.Equal(t, head, after, "no new revision over REST either")

	// A different schema is written at a new revision.
	changed, err := env.schemas.WriteSchema(env.ctx(), &relatav1.WriteSchemaRequest{Schema: testSchema + "\ndefinition extra {}\n"})
	require.NoError(t, err)
	require.NotEqual(t, first.GetWrittenAt(), changed.GetWrittenAt())
}
