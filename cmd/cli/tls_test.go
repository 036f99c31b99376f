package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeTestCA writes, under dir, a CA certificate (ca.pem) and a server certificate
// for 127.0.0.1 signed by it (tls.crt, tls.key), and returns their paths.
func writeTestCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relata"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return caFile, certFile, keyFile
}

// TestServeTLS: `relata serve --tls-cert-file --tls-key-file` serves TLS; a client
// with --ca-file works, a plaintext client is told the server may require TLS, and a
// client trusting another CA is told to give the right one.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestCA(t, filepath.Join(dir))
	otherDir := filepath.Join(dir, "other")
	require.NoError(t, os.Mkdir(otherDir, 0o700))
	otherCA, _, _ := writeTestCA(t, otherDir)
	p := startServe(t, "--data-dir", filepath.Join(dir, "data"), "--tls-cert-file", certFile, "--tls-key-file", keyFile)

	out := runCLI("check flow:f1 execute user:anne --endpoint "+p.grpcAddr+" --ca-file "+caFile, "")
	require.Contains(t, out, "exit 3", "denied: served over TLS\n%s", out)
	out = runCLI("check flow:f1 execute user:anne --endpoint "+p.grpcAddr, "")
	require.Contains(t, out, "exit 1")
	require.Contains(t, out, "the server may require TLS")
	out = runCLI("check flow:f1 execute user:anne --endpoint "+p.grpcAddr+" --ca-file "+otherCA, "")
	require.Contains(t, out, "exit 1")
	require.Contains(t, out, "not signed by a CA this client trusts")
	out = runCLI("check flow:f1 execute user:anne --endpoint "+p.grpcAddr+" --ca-file "+caFile+" --insecure", "")
	require.Contains(t, out, "exit 2", out)

	require.Equal(t, 0, p.stop())
	// Half a TLS configuration is a usage error.
	out = runCLI("serve --data-dir "+filepath.Join(dir, "data")+" --tls-cert-file "+certFile, "")
	require.Contains(t, out, "exit 2", out)
}
