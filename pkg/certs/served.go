package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// Served is a certificate the manager serves now, as data another process
// can serve: its private key and chain in PEM.
type Served struct {
	Host      string // a host of a tls=auto route: exact, or "*.example.com"
	PEM       []byte
	NotBefore time.Time
}

// Served lists, for every host of a tls=auto route of the table, the
// certificate the manager would serve for it now, without ordering: a user
// certificate that covers it, else the ACME certificate it holds. Hosts with
// no certificate yet are left out.
func (m *Manager) Served(ctx context.Context) []Served {
	t, files := m.table.Load(), m.files.Load()
	if t == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []Served
	for _, r := range t.Routes {
		if !r.TLSAuto() {
			continue
		}
		for _, h := range r.Hosts {
			if seen[h] {
				continue
			}
			seen[h] = true
			var cert *tls.Certificate
			if c := files.cover(h); c != nil {
				cert = c.cert
			} else if m.ready(h) {
				cert, _ = m.acme.GetCertificate(ecdsaHello(h))
			}
			if cert == nil {
				continue
			}
			data, leaf, err := encodeCert(cert)
			if err != nil {
				m.log.Error().Err(err).Str(fieldHost, h).Msg("encode a certificate for the edges")
				continue
			}
			out = append(out, Served{Host: h, PEM: data, NotBefore: leaf.NotBefore})
		}
	}
	return out
}

// ready reports whether an ACME certificate for host is held.
func (m *Manager) ready(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.hosts[host]
	return st != nil && st.ready && time.Now().Before(st.notAfter)
}

// Changed is closed the next time a certificate is obtained, renewed or
// reloaded from CertsDir.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.updated
}

// encodeCert writes a certificate's private key (PKCS #8) and chain as PEM.
func encodeCert(c *tls.Certificate) ([]byte, *x509.Certificate, error) {
	if len(c.Certificate) == 0 {
		return nil, nil, fmt.Errorf("empty chain")
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("parse leaf: %w", err)
		}
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("private key: %w", err)
	}
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: key})
	for _, der := range c.Certificate {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return buf.Bytes(), leaf, nil
}

// cover returns the user certificate for a route host: for "*.example.com"
// a wildcard certificate of example.com, for an exact host what match finds.
func (s *fileSet) cover(host string) *fileCert {
	if s == nil {
		return nil
	}
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		return s.wildcard[suffix]
	}
	return s.match(host)
}
