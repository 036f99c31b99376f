package server

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// rawCodec sends and receives raw bytes, to put malformed protobuf on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

// TestMalformedProtobuf: a request message that does not unmarshal is
// INVALID_ARGUMENT INVALID_REQUEST naming the message, on unary calls and on client
// and server streams, after auth.
func TestMalformedProtobuf(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PresharedKey = "sekret" })
	env.seed(t)
	bad := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f} // field 1, length far past the end
	raw := grpc.ForceCodecV2(rawCodec{})

	var out []byte
	err := env.conn.Invoke(env.ctx(), "/relata.v1.PermissionService/Check", bad, &out, raw)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, relatav1.ErrorReason_INVALID_REQUEST.String(), errorInfo(err))
	require.Contains(t, status.Convert(err).Message(), "malformed protobuf relata.v1.CheckRequest")

	// Without the token: UNAUTHENTICATED, not a word about the body.
	err = env.conn.Invoke(withToken("guess"), "/relata.v1.PermissionService/Check", bad, &out, raw)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	// Server stream.
	stream, err := env.conn.NewStream(env.ctx(), &grpc.StreamDesc{ServerStreams: true}, "/relata.v1.PermissionService/LookupResources", raw)
	require.NoError(t, err)
	require.NoError(t, stream.SendMsg(bad))
	require.NoError(t, stream.CloseSend())
	err = stream.RecvMsg(&out)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, relatav1.ErrorReason_INVALID_REQUEST.String(), errorInfo(err))

	// Client stream: Import's second message is malformed; nothing is imported.
	stream, err = env.conn.NewStream(env.ctx(), &grpc.StreamDesc{ClientStreams: true}, "/relata.v1.RelationshipService/Import", raw)
	require.NoError(t, err)
	require.NoError(t, stream.SendMsg(bad))
	require.NoError(t, stream.CloseSend())
	err = stream.RecvMsg(&out)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, relatav1.ErrorReason_INVALID_REQUEST.String(), errorInfo(err))
	require.Contains(t, status.Convert(err).Message(), "relata.v1.ImportRequest")
}

// TestEchoedValues: an invalid-UTF-8 value keeps the error's reason (escaped), and a
// long value is cut to 256 bytes with its length stated, in the message and the
// metadata alike.
func TestEchoedValues(t *testing.T) {
	env := newTestEnv(t)
	env.seed(t)

	cursor := base64.RawURLEncoding.EncodeToString([]byte("v1 2 \x00\xff"))
	code, body := env.post(t, "/v1/tuples/read", `{"cursor":"`+cursor+`"}`)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), relatav1.ErrorReason_INVALID_CURSOR.String(), "the reason survives an invalid-UTF-8 value")
	require.NotContains(t, string(body), `"details":[]`)

	long := strings.Repeat("a", 1<<20)
	code, body = env.post(t, "/v1/check", checkJSON("flow:f1", "execute", "user:anne", ""))
	require.Equal(t, 200, code, string(body))
	code, body = env.post(t, "/v1/check", strings.Replace(checkJSON("flow:f1", "execute", "user:anne", ""), `"flow"`, `"`+long+`"`, 1))
	require.Equal(t, http.StatusBadRequest, code, "%.300s", body)
	require.Less(t, len(body), 4096, "a 1 MiB name is not echoed in full: %.300s", body)
	require.Contains(t, string(body), "(1048576 bytes)")
	require.Contains(t, string(body), relatav1.ErrorReason_INVALID_REQUEST.String())

	// gRPC: the same.
	_, err := env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	req := checkReq("flow:f1", "execute", "user:anne")
	req.Object.Type = long
	_, err = env.perms.Check(env.ctx(), req)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Less(t, len(status.Convert(err).Message()), 1024)
	require.Contains(t, status.Convert(err).Message(), "(1048576 bytes)")
	require.Contains(t, errorMetadata(err)["value"], "(1048576 bytes)")
}

func TestCutEchoes(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, tc := range []struct{ in, want string }{
		{`short "x"`, `short "x"`},
		{`bad "` + "\xff" + `"`, `bad "` + "\uFFFD" + `"`},
		{`id "` + long + `" is bad`, `id "` + strings.Repeat("é", 128) + `"… (400 bytes) is bad`},
		{`unbalanced "` + long, `unbalanced "` + long},
	} {
		require.Equal(t, tc.want, cutEchoes(tc.in))
	}
	require.Equal(t, `"\xff"`, quoteValue("\xff"))
	require.Equal(t, `\xffa`, echoValue("\xffa"))
}

// TestClassifyStatusErrors: a gRPC status error met inside a handler (a client stream's
// Recv after the client canceled) keeps its code instead of becoming INTERNAL.
func TestClassifyStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{status.Error(codes.Canceled, "context canceled"), codes.Canceled, relatav1.ErrorReason_CANCELED.String()},
		{status.Error(codes.DeadlineExceeded, "deadline"), codes.DeadlineExceeded, relatav1.ErrorReason_DEADLINE_EXCEEDED.String()},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), codes.ResourceExhausted, relatav1.ErrorReason_LIMIT_EXCEEDED.String()},
		{newStatus(codes.InvalidArgument, relatav1.ErrorReason_INVALID_CURSOR, "bad", nil), codes.InvalidArgument, relatav1.ErrorReason_INVALID_CURSOR.String()},
		{io.ErrUnexpectedEOF, codes.Internal, relatav1.ErrorReason_INTERNAL.String()},
	} {
		code, reason, _ := classify(tc.err)
		require.Equal(t, tc.code, code, "%v", tc.err)
		require.Equal(t, tc.reason, reason.String(), "%v", tc.err)
	}
}
