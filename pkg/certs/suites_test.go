package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// TestTLSConfigSuites: a TLS 1.2 client that offers only a CBC suite with a
// SHA-1 MAC is refused; AEAD suites and TLS 1.3 are accepted.
func TestTLSConfigSuites(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, "suites.test")
	srvCfg := m.TLSConfig()
	srvCfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }

	tests := []struct {
		name   string
		max    uint16
		suites []uint16
		ok     bool
	}{
		{name: "TLS 1.2 ECDHE-ECDSA AES-128-CBC-SHA", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
		{name: "TLS 1.2 ECDHE-ECDSA AES-256-CBC-SHA", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}},
		{name: "TLS 1.2 ECDHE-ECDSA AES-128-GCM", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, ok: true},
		{name: "TLS 1.2 ECDHE-ECDSA ChaCha20", max: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, ok: true},
		{name: "TLS 1.3", max: tls.VersionTLS13, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			defer s.Close()
			srv := tls.Server(s, srvCfg)
			done := make(chan error, 1)
			go func() { done <- srv.Handshake() }()
			cli := tls.Client(c, &tls.Config{
				ServerName: "suites.test", InsecureSkipVerify: true, // only the suite is under test
				MaxVersion: tc.max, CipherSuites: tc.suites,
			})
			cerr := cli.Handshake()
			if cerr != nil {
				c.Close() // unblock the server's read
			}
			serr := <-done
			if tc.ok && (cerr != nil || serr != nil) {
				t.Fatalf("handshake failed: client %v, server %v", cerr, serr)
			}
			if !tc.ok && cerr == nil {
				t.Fatalf("handshake succeeded with %s, want it refused", tls.CipherSuiteName(cli.ConnectionState().CipherSuite))
			}
		})
	}
}

func selfSigned(t *testing.T, name string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
