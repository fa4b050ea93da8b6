package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"golang.org/x/crypto/acme"
	"golang.org/x/net/idna"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// getCertificate serves a handshake: a TLS-ALPN-01 validation gets its token
// certificate from autocert or the cache whatever the table says (another
// instance sharing the cache may be the one ordering; autocert never orders
// for such a handshake), a name covered by a user certificate gets that, a
// name of a tls=auto route gets its ACME certificate (waiting for an order in
// progress), and any other name is refused without contacting the CA.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if hello.ServerName == "" {
		return nil, errors.New("missing server name (SNI)")
	}
	name, err := idna.Lookup.ToASCII(hello.ServerName)
	if err != nil {
		return nil, fmt.Errorf("server name %q: %w", hello.ServerName, err)
	}
	name = route.NormalizeHost(name)
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		return m.acme.GetCertificate(hello) // the token certificate of an order in progress
	}
	if c := m.files.Load().match(name); c != nil {
		return c.cert, nil
	}
	if err := m.policy(ctx, name); err != nil {
		return nil, err
	}
	return m.certificate(ctx, name)
}
