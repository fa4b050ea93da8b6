package certs

// API STUB written by the lead: the contract cmd/ingress uses. The certs owner
// replaces the bodies (and may split the file), keeping names and meanings.

import (
	"context"
	"crypto/tls"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme/autocert"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Config configures a Manager.
type Config struct {
	DataDir    string                // ACME account and certificates (dir cache) live under it
	CertsDir   string                // optional user-supplied <name>.crt + <name>.key pairs
	CA         string                // ACME directory URL; empty: Let's Encrypt production
	CARoots    string                // optional PEM file of roots to trust for the CA
	Email      string                // optional ACME contact
	Cache      autocert.Cache        // nil: a directory cache in DataDir
	Locker     Locker                // nil: issuance is locked within this process only
	Logger     zerolog.Logger        // default disabled
	Registerer prometheus.Registerer // nil: no metrics
}

// Locker serialises certificate orders across instances that share a Cache:
// only the holder of the lock for a host orders its certificate; the others
// wait and then read it from the cache. Lock blocks until the lock is held or
// ctx ends; the returned unlock releases it.
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Status is one entry of GET /api/certs.
type Status struct {
	Host     string    `json:"host"`
	Source   string    `json:"source"` // "acme" or "file"
	NotAfter time.Time `json:"not_after"`
	Error    string    `json:"error"`
}

// Manager obtains and serves certificates for the hosts of the live table.
type Manager struct{ cfg Config }

// New validates cfg (readable CA roots, usable directories) and returns a Manager.
func New(cfg Config) (*Manager, error) { return &Manager{cfg: cfg}, nil }

// SetTable gives the manager the live table: its tls=auto hosts are the host
// policy and are obtained ahead of time.
func (m *Manager) SetTable(t *route.Table) {}

// TLSConfig is the HTTPS listener's config: certificates, TLS-ALPN-01, h2 and
// http/1.1, TLS 1.2 minimum.
func (m *Manager) TLSConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }

// HTTPHandler answers HTTP-01 challenges and passes every other request to fallback.
func (m *Manager) HTTPHandler(fallback http.Handler) http.Handler { return fallback }

// Run pre-issues certificates and reloads user certificates until ctx ends.
func (m *Manager) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Status lists the certificates for GET /api/certs.
func (m *Manager) Status() []Status { return []Status{} }
