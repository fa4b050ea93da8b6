package control

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/net/idna"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TLSConfig is the edge's HTTPS listener config: the received certificates
// by SNI, TLS-ALPN-01 answers, h2 and http/1.1, TLS 1.2 minimum with the
// same AEAD suites as every listener (certs.CipherSuites). A name the edge
// holds no certificate for is refused.
func (e *Edge) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   certs.CipherSuites,
		NextProtos:     []string{"h2", "http/1.1", acme.ALPNProto},
		GetCertificate: e.getCertificate,
	}
}

func (e *Edge) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		return nil, errors.New("missing server name (SNI)")
	}
	name, err := idna.Lookup.ToASCII(hello.ServerName)
	if err != nil {
		return nil, fmt.Errorf("server name %q: %w", hello.ServerName, err)
	}
	name = route.NormalizeHost(name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		data := e.challenge(certs.TLSALPN01Key(name))
		if data == nil {
			return nil, fmt.Errorf("no pending TLS-ALPN-01 challenge for %q", name)
		}
		return parsePEM(data)
	}
	if c := e.certs[name]; c != nil {
		return c.tls, nil
	}
	if _, suffix, ok := strings.Cut(name, "."); ok {
		if c := e.certs["*."+suffix]; c != nil {
			return c.tls, nil
		}
	}
	return nil, fmt.Errorf("no certificate for %q", name)
}

// challenge returns the answer any connected controller sent under key, or
// nil. Call with e.mu held.
func (e *Edge) challenge(key string) []byte {
	for _, a := range sortedKeys(e.links) {
		if data := e.links[a].challenges[key]; data != nil {
			return data
		}
	}
	return nil
}

// HTTPHandler answers HTTP-01 validations from the received challenges
// (404 for an unknown token) and passes every other request to next.
func (e *Edge) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := certs.HTTP01Token(r.URL.Path)
		if !strings.HasPrefix(r.URL.Path, certs.HTTP01Path) {
			next.ServeHTTP(w, r)
			return
		}
		var data []byte
		if ok {
			e.mu.Lock()
			data = e.challenge(certs.HTTP01Key(token))
			e.mu.Unlock()
		}
		if data == nil {
			http.Error(w, "no pending ACME challenge for this token", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(data)
	})
}
