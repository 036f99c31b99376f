package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by ca: a server certificate for
// 127.0.0.1 and localhost, or a client certificate.
func (ca *testCA) issue(t *testing.T, name string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses, tmpl.DNSNames = nil, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, b, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// tlsCheck makes one Check over a new connection with creds.
func tlsCheck(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = relatav1.NewPermissionServiceClient(conn).Check(ctx, checkReq("flow:f1", "execute", "user:anne"))
	return err
}

func TestTLSCertFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "relata test CA")
	certPEM, keyPEM := ca.issue(t, "relata", false)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeTestFile(t, certFile, certPEM)
	writeTestFile(t, keyFile, keyPEM)
	certs, err := NewCertFiles(certFile, keyFile, "")
	require.NoError(t, err)
	env := newTestEnv(t, func(c *Config) { c.Certs = certs })
	addr := env.srv.GRPCAddr().String()
	good := credentials.NewTLS(&tls.Config{RootCAs: ca.pool()})

	// gRPC over TLS works (the schema write and the check).
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(good))
	require.NoError(t, err)
	defer conn.Close()
	_, err = relatav1.NewSchemaServiceClient(conn).WriteSchema(context.Background(), &relatav1.WriteSchemaRequest{Schema: testSchema})
	require.NoError(t, err)
	require.NoError(t, tlsCheck(t, addr, good))

	// REST over TLS works, through the gateway.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	resp, err := hc.Post("https://"+env.srv.HTTPAddr().String()+"/v1/check", "application/json",
		strings.NewReader(checkJSON("flow:f1", "execute", "user:anne", "")))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Plaintext to a TLS server fails.
	err = tlsCheck(t, addr, insecure.NewCredentials())
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	// A client that trusts another CA fails, saying why.
	other := newTestCA(t, "another CA")
	err = tlsCheck(t, addr, credentials.NewTLS(&tls.Config{RootCAs: other.pool()}))
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, err.Error(), "certificate signed by unknown authority")
	resp, err = http.Post("http://"+env.srv.HTTPAddr().String()+"/v1/check", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "Go's TLS server answers plaintext HTTP with 400")
	}

	// Reload: a certificate of a new CA serves new connections; open ones stay.
	ca2 := newTestCA(t, "rotated CA")
	certPEM, keyPEM = ca2.issue(t, "relata", false)
	writeTestFile(t, certFile, certPEM)
	writeTestFile(t, keyFile, keyPEM)
	require.NoError(t, env.srv.ReloadTLS())
	_, err = relatav1.NewPermissionServiceClient(conn).Check(context.Background(), checkReq("flow:f1", "execute", "user:anne"))
	require.NotEqual(t, codes.Unavailable, status.Code(err), "the open connection survives the reload: %v", err)
	err = tlsCheck(t, addr, good)
	require.Contains(t, err.Error(), "certificate signed by unknown authority")
	require.NotEqual(t, codes.Unavailable, status.Code(tlsCheck(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca2.pool()}))))
	// A reload that fails keeps the certificate in use.
	writeTestFile(t, keyFile, []byte("not a key"))
	require.Error(t, env.srv.ReloadTLS())
	require.NotEqual(t, codes.Unavailable, status.Code(tlsCheck(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca2.pool()}))))
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "server CA")
	clientCA := newTestCA(t, "client CA")
	certPEM, keyPEM := ca.issue(t, "relata", false)
	files := map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "clients.pem": clientCA.pem}
	for name, b := range files {
		writeTestFile(t, filepath.Join(dir, name), b)
	}
	certs, err := NewCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients.pem"))
	require.NoError(t, err)
	env := newTestEnv(t, func(c *Config) { c.Certs = certs })
	addr := env.srv.GRPCAddr().String()

	// Without a client certificate: refused.
	err = tlsCheck(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.pool()}))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	// With one of another CA: refused.
	strangerPEM, strangerKey := newTestCA(t, "stranger").issue(t, "mallory", true)
	stranger, err := tls.X509KeyPair(strangerPEM, strangerKey)
	require.NoError(t, err)
	err = tlsCheck(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{stranger}}))
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	// With a client certificate of the client CA: served.
	cPEM, cKey := clientCA.issue(t, "flow-runtime", true)
	clientCert, err := tls.X509KeyPair(cPEM, cKey)
	require.NoError(t, err)
	withCert := &tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{clientCert}}
	err = tlsCheck(t, addr, credentials.NewTLS(withCert))
	require.NotEqual(t, codes.Unavailable, status.Code(err), "%v", err)

	// REST needs the client certificate too, and the gateway still reaches gRPC.
	url := "https://" + env.srv.HTTPAddr().String() + "/v1/schema/write"
	body := `{"schema":"definition user {}"}`
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}).Post(url, "application/json", strings.NewReader(body))
	require.Error(t, err)
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: withCert}}).Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
