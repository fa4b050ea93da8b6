package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA signs user certificates in tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes <dir>/<name>.crt and .key for names, valid until notAfter,
// and returns the certificate.
func (ca *testCA) issue(t *testing.T, dir, name string, notAfter time.Time, names ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter.Truncate(time.Second),
		DNSNames: names, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestUserCertificates: a user wildcard certificate is served for its names
// and ACME is not asked for them; bad pairs are listed with their error; a
// changed file is picked up; a removed one hands its names back to ACME.
func TestUserCertificates(t *testing.T) {
	t.Parallel()
	const acmeHost = "acme.other.test"
	r := newRig(t, rigConfig{tlsALPN01: true})
	ca := newTestCA(t)
	dir := t.TempDir()
	first := ca.issue(t, dir, "wild", time.Now().Add(24*time.Hour), "*.example.test")
	writeFile(t, filepath.Join(dir, "bad.crt"), []byte("not a certificate"))
	writeFile(t, filepath.Join(dir, "bad.key"), []byte("not a key"))
	writeFile(t, filepath.Join(dir, "lonely.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: first.Raw}))

	cfg := r.config()
	cfg.CertsDir = dir
	cfg.ReloadInterval = 20 * time.Millisecond
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTable(r.table("a.example.test", "b.example.test", acmeHost))
	r.start(m)

	// The pass that obtains acmeHost is the one that skipped the others.
	st := waitStatus(t, m, "ACME certificate for the uncovered host", issued(acmeHost))
	for _, host := range []string{"a.example.test", "b.example.test"} {
		chain, err := r.handshake(host)
		if err != nil {
			t.Fatalf("handshake %s: %v", host, err)
		}
		if chain[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("%s served serial %v, want the user certificate's %v", host, chain[0].SerialNumber, first.SerialNumber)
		}
		verify(t, chain, host, ca.pool)
		if s := st[host]; s.Source != SourceFile || !s.NotAfter.Equal(first.NotAfter) || s.Error != "" {
			t.Errorf("Status[%s] = %+v, want source file, not_after %v", host, s, first.NotAfter)
		}
	}
	if n := r.pebble.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders, want 1 (for %s only)", n, acmeHost)
	}
	for _, name := range []string{"bad", "lonely"} {
		if s := st[name]; s.Source != SourceFile || s.Error == "" {
			t.Errorf("Status[%s] = %+v, want a file entry with an error", name, s)
		}
	}
	if s := st["*.example.test"]; s.Source != SourceFile || s.Error != "" {
		t.Errorf("Status[*.example.test] = %+v, want the wildcard listed", s)
	}

	// A renewed file is served without a restart.
	second := ca.issue(t, dir, "wild", time.Now().Add(36*time.Hour), "*.example.test")
	waitStatus(t, m, "reloaded user certificate", func(st map[string]Status) bool {
		return st["a.example.test"].NotAfter.Equal(second.NotAfter)
	})
	chain, err := r.handshake("a.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if chain[0].SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("after reload serial %v, want %v", chain[0].SerialNumber, second.SerialNumber)
	}

	// Without the file the names go to ACME.
	for _, f := range []string{"wild.crt", "wild.key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, m, "ACME certificate once the user certificate is gone", issued("a.example.test"))
	chain, err = r.handshake("a.example.test")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, chain, "a.example.test", r.pebble.IssuerRoots(t))
}

func TestFileSetMatch(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	soon, later := time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	ca.issue(t, dir, "wild", soon, "*.example.test", "example.test")
	ca.issue(t, dir, "wild-later", later, "*.example.test")
	ca.issue(t, dir, "exact", soon, "Exact.Other.Test")
	s, err := loadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want string // pair name; "" for none
	}{
		{host: "a.example.test", want: "wild-later"},
		{host: "A.EXAMPLE.TEST.", want: "wild-later"},
		{host: "example.test", want: "wild"},
		{host: "a.b.example.test", want: ""},
		{host: "exact.other.test", want: "exact"},
		{host: "x.other.test", want: ""},
		{host: "", want: ""},
	}
	for _, tc := range tests {
		got := ""
		if c := s.match(tc.host); c != nil {
			got = c.name
		}
		if got != tc.want {
			t.Errorf("match(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}
