package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/client"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRecoverAndLog(t *testing.T) {
	logs := &lockedBuffer{}
	env := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	env.seed(t)

	// A panicking handler becomes INTERNAL, and its stack is logged.
	info := &grpc.UnaryServerInfo{FullMethod: "/relata.v1.PermissionService/Check"}
	_, err := env.srv.recoverUnary(context.Background(), nil, info, func(context.Context, any) (any, error) {
		panic("boom")
	})
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "internal error", status.Convert(err).Message())
	require.Contains(t, logs.String(), "panic in handler")
	require.Contains(t, logs.String(), "boom")

	// Every call is logged with its method and code.
	_, err = env.perms.Check(env.ctx(), checkReq("flow:f1", "nope", "user:anne"))
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Contains(t, logs.String(), "method=/relata.v1.PermissionService/Check code=NotFound")
	_, err = env.perms.Check(env.ctx(), checkReq("flow:f1", "execute", "user:anne"))
	require.NoError(t, err)
	require.Contains(t, logs.String(), "method=/relata.v1.PermissionService/Check code=OK")
}

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relata test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	env := newTestEnv(t, func(c *Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		c.PresharedKey = "sekret"
	})
	ctx := context.Background()
	c, err := client.New(env.srv.GRPCAddr().String(), client.WithToken("sekret"),
		client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.WriteSchema(ctx, testSchema)
	require.NoError(t, err)
	ups, err := client.Touch(testTuples...)
	require.NoError(t, err)
	z, err := c.Write(ctx, ups)
	require.NoError(t, err)
	res, err := c.Check(ctx, "flow:f1", "execute", "user:anne", client.AtLeastAsFresh(z))
	require.NoError(t, err)
	require.True(t, res.Allowed)

	// REST over TLS, through the gateway's TLS loopback connection.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest("POST", "https://"+env.srv.HTTPAddr().String()+"/v1/check",
		strings.NewReader(checkJSON("flow:f1", "execute", "user:anne", `"consistency":{"fullyConsistent":true}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sekret")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}

func TestReflection(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PresharedKey = "sekret" })
	stream, err := reflectionpb.NewServerReflectionClient(env.conn).ServerReflectionInfo(env.ctx())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	require.Subset(t, names, []string{
		"relata.v1.PermissionService", "relata.v1.RelationshipService", "relata.v1.SchemaService",
		"grpc.health.v1.Health",
	})
}
