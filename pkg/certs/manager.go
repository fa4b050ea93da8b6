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
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	DataDir    string                // ACME account and certificates (dir cache) live under it
	CertsDir   string                // optional user-supplied <name>.crt + <name>.key pairs
	CA         string                // ACME directory URL; empty: Let's Encrypt production
	CARoots    string                // optional PEM file of roots to trust for the CA
	Email      string                // optional ACME contact
	Cache      autocert.Cache        // nil: a directory cache in DataDir
	Locker     Locker                // nil: issuance is locked within this process only
	Challenges Challenges            // nil: challenge answers stay in the cache
	Logger     zerolog.Logger        // default disabled
	Registerer prometheus.Registerer // nil: no metrics

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

// Status is one entry of GET /api/certs.
type Status struct {
	Host     string    `json:"host"`
	Source   string    `json:"source"` // "acme" or "file"
	NotAfter time.Time `json:"not_after"`
	Error    string    `json:"error"`
}

// Sources of a certificate in Status.
const (
	SourceACME = "acme"
	SourceFile = "file"
)

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

// New validates cfg (readable CA roots, usable directories) and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.CA == "" {
		cfg.CA = autocert.DefaultACMEDirectory
	}
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
	client.Transport = &guard{next: client.Transport, allow: m.orderable}
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

// Check reports every problem with the settings cfg comes from (the ACME
// directory URL, the roots file, the data directory and the certificates
// directory) at once, each naming its INGRESS_* variable and what to do. New
// runs the same checks; cmd/ingress calls Check to report these together
// with its other settings before anything starts.
func (cfg Config) Check() error {
	_, _, _, err := cfg.resources()
	return err
}

// resources builds, from cfg, the ACME HTTP client, the cache (cfg.Cache or
// a directory cache in DataDir) and the user certificates, reporting every
// problem at once.
func (cfg Config) resources() (*http.Client, autocert.Cache, *fileSet, error) {
	var errs []error
	ca := cmp.Or(cfg.CA, autocert.DefaultACMEDirectory)
	if u, err := url.Parse(ca); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("INGRESS_ACME_CA %q is not an https:// URL (set the ACME directory URL, e.g. %s, or leave it empty)", ca, autocert.DefaultACMEDirectory))
	}
	client, err := httpClient(cfg.CARoots)
	errs = append(errs, err)
	cache := cfg.Cache
	if cache == nil {
		cache, err = dirCache(cfg.DataDir)
		errs = append(errs, err)
	}
	files := &fileSet{}
	if cfg.CertsDir != "" {
		files, err = loadFiles(cfg.CertsDir)
		if err != nil {
			err = fmt.Errorf("INGRESS_CERTS_DIR %q: %w (point it at a readable directory of <name>.crt and <name>.key files, or leave it empty)", cfg.CertsDir, err)
		}
		errs = append(errs, err)
	}
	return client, cache, files, errors.Join(errs...)
}

// httpClient trusts the roots in the PEM file rootsFile, or the system roots.
func httpClient(rootsFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if rootsFile != "" {
		data, err := os.ReadFile(rootsFile)
		if err != nil {
			return &http.Client{}, fmt.Errorf("INGRESS_ACME_CA_ROOTS: %w (point it at a readable PEM file of the ACME server's root certificates, or leave it empty to trust the system roots)", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return &http.Client{}, fmt.Errorf("INGRESS_ACME_CA_ROOTS %q holds no PEM certificate (it must contain -----BEGIN CERTIFICATE----- blocks of the ACME server's roots)", rootsFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// dirCache is autocert's directory cache in <dataDir>/acme, created 0700 and
// checked writable.
func dirCache(dataDir string) (autocert.Cache, error) {
	if dataDir == "" {
		return nil, errors.New("INGRESS_DATA_DIR is empty: set it to a writable directory for the ACME account and certificates")
	}
	dir := filepath.Join(dataDir, "acme")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("INGRESS_DATA_DIR %q: %w (it must be a writable directory: mount a writable volume there)", dataDir, err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return nil, fmt.Errorf("INGRESS_DATA_DIR %q is not writable: %w (mount a writable volume there)", dataDir, err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return nil, fmt.Errorf("INGRESS_DATA_DIR %q: %w", dataDir, err)
	}
	return autocert.DirCache(dir), nil
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
