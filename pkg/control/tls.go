package control

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"
)

// peerName is the DNS name in every leaf and the name clients verify: peers
// are dialled by IP address, and holding the secret is what identifies them.
const peerName = "swarm-ingress-control"

// Leaf lifetimes: a leaf is replaced after leafRenew and valid for leafLife,
// starting leafSkew in the past to tolerate clocks a little behind.
const (
	leafLife  = 24 * time.Hour
	leafRenew = 12 * time.Hour
	leafSkew  = 5 * time.Minute
)

// authority is the certificate authority derived from the secret, and the
// short-lived leaf this process presents.
type authority struct {
	secret *Secret
	cert   *x509.Certificate
	pool   *x509.CertPool

	mu   sync.Mutex
	leaf *tls.Certificate
	made time.Time
}

// newAuthority builds the CA certificate. It is deterministic (fixed fields,
// ed25519 signatures), so every holder of the secret builds the same one,
// though only its public key and name matter for verification.
func newAuthority(s *Secret) (*authority, error) {
	pub := s.ca.Public()
	ski := sha256.Sum256(s.ca.Public().(ed25519.PublicKey))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "swarm-ingress control CA"},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
		SubjectKeyId:          ski[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, s.ca)
	if err != nil {
		return nil, fmt.Errorf("create the control CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the control CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{secret: s, cert: cert, pool: pool}, nil
}

// current returns this process's leaf, making a new one when none is
// younger than leafRenew. Its key is a fresh P-256 key that never leaves
// the process.
func (a *authority) current() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.leaf != nil && now.Sub(a.made) < leafRenew {
		return a.leaf, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("leaf serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: peerName},
		DNSNames:     []string{peerName},
		NotBefore:    now.Add(-leafSkew),
		NotAfter:     now.Add(leafLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.secret.ca)
	if err != nil {
		return nil, fmt.Errorf("sign the leaf: %w", err)
	}
	a.leaf = &tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key}
	a.made = now
	return a.leaf, nil
}

// serverConfig requires TLS 1.3 and a client leaf signed by the CA.
func (a *authority) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  a.pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.current()
		},
	}
}

// clientConfig requires TLS 1.3 and a server leaf signed by the CA.
func (a *authority) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    a.pool,
		ServerName: peerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.current()
		},
	}
}

// explainHandshake turns a failed handshake into an operator's message: a
// peer holding another secret (or none) is the likely cause, and the fix is
// the same secret on both sides.
func (a *authority) explainHandshake(err error) error {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var op *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown), errors.As(err, &verify):
		return fmt.Errorf("the peer's certificate is not signed with this process's control secret: "+
			"the peer mounts a different secret; mount the same secret on both sides (%s): %w", a.secret.setting, err)
	case errors.As(err, &op) && op.Op == "remote error" &&
		(strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority") ||
			strings.Contains(msg, "certificate required")):
		return fmt.Errorf("the peer refused this process's certificate: "+
			"the peer mounts a different control secret; mount the same secret on both sides (%s): %w", a.secret.setting, err)
	case strings.Contains(msg, "didn't provide a certificate"):
		return fmt.Errorf("the peer presented no certificate: it holds no control secret (%s); "+
			"only ingress edges that mount the secret may connect: %w", a.secret.setting, err)
	}
	return fmt.Errorf("TLS handshake: %w", err)
}
