package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// CertFiles serves a TLS certificate and key (and, for mutual TLS, a client CA
// bundle) from files, and reloads them on Reload (relata serve calls it on SIGHUP).
// New connections use the files loaded last; open connections keep theirs, so a
// reload drops nothing. A reload that fails keeps the files loaded before.
type CertFiles struct {
	certFile, keyFile, clientCAFile string
	cur                             atomic.Pointer[loadedCert]
}

type loadedCert struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil without a client CA file
}

// NewCertFiles loads certFile and keyFile (PEM) and, when clientCAFile is not empty,
// the CA certificates (PEM) that client certificates must chain to.
func NewCertFiles(certFile, keyFile, clientCAFile string) (*CertFiles, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, errors.New("TLS needs a certificate file and a key file")
	case certFile == "":
		return nil, errors.New("a TLS key file needs its certificate file (--tls-cert-file)")
	case keyFile == "":
		return nil, errors.New("a TLS certificate file needs its key file (--tls-key-file)")
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, clientCAFile: clientCAFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On error the files loaded before stay in use.
func (c *CertFiles) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading the TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	l := &loadedCert{cert: &cert}
	if c.clientCAFile != "" {
		pool, err := LoadCertPool(c.clientCAFile)
		if err != nil {
			return fmt.Errorf("client CA file: %w", err)
		}
		l.clientCAs = pool
	}
	c.cur.Store(l)
	return nil
}

// LoadCertPool reads PEM certificates from file into a new pool.
func LoadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// MutualTLS reports whether clients must present a certificate.
func (c *CertFiles) MutualTLS() bool { return c.clientCAFile != "" }

// TLSConfig returns a server configuration that picks up the files loaded last at each
// handshake, offering the given ALPN protocols.
func (c *CertFiles) TLSConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			l := c.cur.Load()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*l.cert},
			}
			if l.clientCAs != nil {
				cfg.ClientCAs = l.clientCAs
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
			}
			return cfg, nil
		},
	}
}
