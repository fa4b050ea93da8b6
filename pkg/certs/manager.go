// Package certs obtains and serves the HTTPS certificates of the route table:
// user-supplied pairs from a directory first, then ACME through
// golang.org/x/crypto/acme/autocert.
//
// What it adds to autocert:
//   - the host policy is the live table (SetTable): only hosts of a tls=auto
//     route not covered by a user certificate; every other name is refused
//     before the CA is contacted, and an ACME order for such a name is
//     refused by the HTTP client itself (see guard.go), which also stops
//     autocert's renewal of hosts that left the table;
//   - pre-issuance (Run): certificates are obtained when a host appears, with
//     bounded concurrency and exponential backoff, errors in Status and the log;
//   - one order per host at a time: handshakes for a host whose order is in
//     progress wait for it, and a Locker serialises orders across instances;
//   - cache writes that fail are logged (autocert ignores them);
//   - the challenge type can be pinned (Config.ChallengeType): the guard
//     removes the other types from the CA's authorizations, so autocert
//     validates with that type on the first order;
//   - ECDSA P-256 certificates for every client (autocert would order an RSA
//     certificate for a client that offers no ECDSA cipher suite, e.g. a TLS
//     1.3-only hello).
//
// Renewal is autocert's: every certificate it has loaded is renewed in the
// background some time before it expires (a third of its lifetime, at most 30
// days). Renewals do not go through the Locker; autocert re-reads the cache
// before renewing, so an instance that finds a fresh certificate another one
// stored uses it instead of ordering. A host removed from the table is no
// longer served, pre-issued or renewed: its renewal order is refused by the
// guard without contacting the CA.
package certs

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Config configures a Manager.
type Config struct {
	DataDir    string         // ACME account and certificates (dir cache) live under it
	CertsDir   string         // optional user-supplied <name>.crt + <name>.key pairs
	CA         string         // ACME directory URL; empty: DefaultCA
	CARoots    string         // optional PEM file of roots to trust for the CA
	Email      string         // optional ACME contact
	Cache      autocert.Cache // nil: a directory cache in DataDir
	Locker     Locker         // nil: issuance is locked within this process only
	Challenges Challenges     // nil: challenge answers stay in the cache
	// ChallengeType is the one ACME challenge type used, ChallengeHTTP01 or
	// ChallengeTLSALPN01; empty: both, in autocert's order (tls-alpn-01, then
	// http-01 on a new order once tls-alpn-01 failed). See challengetype.go.
	ChallengeType string
	Logger        zerolog.Logger        // default disabled
	Registerer    prometheus.Registerer // nil: no metrics

	Concurrency    int           // orders in progress at once in the background; 0: 4
	RetryMin       time.Duration // first wait after a failed order; 0: 1m (autocert itself refuses to retry a host for a minute)
	RetryMax       time.Duration // longest wait between attempts; 0: 1h
	ReloadInterval time.Duration // how often CertsDir is re-read; 0: 5s
}

// Locker serialises certificate orders across instances that share a Cache:
// only the holder of the lock for a host orders its certificate; the others
// wait and then read it from the cache. Lock blocks until the lock is held or
// ctx ends; the returned unlock releases it.
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Status is one entry of GET /api/certs (docs/admin-api.md).
type Status struct {
	Host     string    `json:"host"`
	Source   string    `json:"source"` // "acme" or "file" (an edge reports "control")
	NotAfter time.Time `json:"not_after"`
	Error    string    `json:"error"`
}

// Sources of a certificate in Status.
const (
	SourceACME = "acme"
	SourceFile = "file"
)

// DefaultCA is the ACME directory used when Config.CA is empty: Let's
// Encrypt's production directory.
const DefaultCA = autocert.DefaultACMEDirectory

// orderTimeout bounds one attempt: account, order, challenges, finalisation.
const orderTimeout = 5 * time.Minute

// Manager obtains and serves certificates for the hosts of the live table.
type Manager struct {
	cfg    Config
	log    zerolog.Logger
	acme   *autocert.Manager
	cache  autocert.Cache // the logging wrapper autocert uses too
	locker Locker
	sem    chan struct{} // background orders in progress

	table   atomic.Pointer[route.Table]
	files   atomic.Pointer[fileSet]
	changed chan struct{} // cap 1: the table or the user certificates changed

	mu      sync.Mutex
	hosts   map[string]*hostState // ACME hosts being obtained or served
	updated chan struct{}         // closed and replaced when a host's state changes (tests wait on it)
}

// New returns a Manager for cfg. It does not repeat Config.Check, which the
// caller runs first (cmd/ingress does, with its other settings, before
// anything starts); it fails only if what it builds cannot be built: the
// roots read, the certificates directory loaded, <DataDir>/acme created.
func New(cfg Config) (*Manager, error) {
	cfg.CA = cmp.Or(cfg.CA, DefaultCA)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Minute
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Hour
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = 5 * time.Second
	}
	m := &Manager{
		cfg:     cfg,
		log:     cfg.Logger,
		locker:  cfg.Locker,
		sem:     make(chan struct{}, cfg.Concurrency),
		changed: make(chan struct{}, 1),
		hosts:   map[string]*hostState{},
		updated: make(chan struct{}),
	}

	client, cache, files, err := cfg.resources()
	if err != nil {
		return nil, err
	}
	m.files.Store(files)
	m.logFiles(files)
	m.cache = &loggingCache{next: cache, log: cfg.Logger, stored: m.stored, challenges: cfg.Challenges}
	client.Transport = &guard{next: client.Transport, allow: m.orderable, challenge: cfg.ChallengeType}
	m.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      m.cache,
		HostPolicy: m.policy,
		Email:      cfg.Email,
		Client: &acme.Client{
			DirectoryURL: cfg.CA,
			HTTPClient:   client,
			UserAgent:    "swarm-ingress",
		},
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(collector{m}); err != nil {
			return nil, fmt.Errorf("register certificate metrics: %w", err)
		}
	}
	return m, nil
}

// resources builds, from cfg, the ACME HTTP client, the cache (cfg.Cache or
// a directory cache in DataDir) and the user certificates.
func (cfg Config) resources() (*http.Client, autocert.Cache, *fileSet, error) {
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Minute}
	if cfg.CARoots != "" {
		pool, err := loadRoots(cfg.CARoots)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ACME CA roots: %w", err)
		}
		client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cache := cfg.Cache
	if cache == nil {
		if cfg.DataDir == "" {
			return nil, nil, nil, errors.New("no data directory for the ACME cache")
		}
		dir := filepath.Join(cfg.DataDir, "acme")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, nil, fmt.Errorf("ACME cache: %w", err)
		}
		cache = autocert.DirCache(dir)
	}
	files := &fileSet{}
	if cfg.CertsDir != "" {
		var err error
		if files, err = loadFiles(cfg.CertsDir); err != nil {
			return nil, nil, nil, fmt.Errorf("certificates directory: %w", err)
		}
	}
	return client, cache, files, nil
}

// SetTable gives the manager the live table: its tls=auto hosts are the host
// policy and are obtained ahead of time.
func (m *Manager) SetTable(t *route.Table) {
	m.table.Store(t)
	m.kick()
}

// kick wakes Run's loop.
func (m *Manager) kick() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// CipherSuites are the TLS 1.2 suites the HTTPS listener accepts: forward
// secret (ECDHE) and authenticated encryption (AES-GCM, ChaCha20-Poly1305)
// only, for ECDSA (ACME) and RSA (user-supplied) certificates. Go's default
// list also offers CBC suites with SHA-1 MACs. TLS 1.3 suites are not
// configurable and are all AEAD.
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig is the HTTPS listener's config: certificates, TLS-ALPN-01, h2 and
// http/1.1, TLS 1.2 minimum with AEAD suites only (CipherSuites).
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   CipherSuites,
		NextProtos:     []string{"h2", "http/1.1", acme.ALPNProto},
		GetCertificate: m.getCertificate,
	}
}

// HTTPHandler answers HTTP-01 challenges and passes every other request to
// fallback (nil: 404). It also enables the http-01 challenge type, which
// autocert tries after tls-alpn-01. A token the cache holds is answered
// before the host policy is asked (see answerHTTP01).
func (m *Manager) HTTPHandler(fallback http.Handler) http.Handler {
	if fallback == nil {
		fallback = http.NotFoundHandler()
	}
	h := m.acme.HTTPHandler(fallback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.answerHTTP01(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// shutdownWait is how long Run waits, once ctx ends, for orders in
// progress; autocert finishes an abandoned order on its own.
const shutdownWait = 5 * time.Second

// Run pre-issues certificates and reloads user certificates until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(shutdownWait):
			m.log.Warn().Msg("certificate orders still in progress at shutdown were abandoned")
		}
	}()
	if m.cfg.CertsDir != "" {
		wg.Go(func() { m.watchFiles(ctx) })
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if wait, ok := m.reconcile(ctx, &wg); ok {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.changed:
		case <-timer.C:
		}
	}
}
