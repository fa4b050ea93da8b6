package swarmcache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// instance is the certificate side of one ingress instance, in process: a
// certs.Manager on its own Store and Locker (the shared namespace), with its
// own HTTP and HTTPS listeners on loopback.
type instance struct {
	name     string
	store    *Store
	locker   *Locker
	mgr      *certs.Manager
	httpAddr string
	tlsAddr  string
}

// tlsTable is a route table with one tls=auto route for host (or none).
func tlsTable(hosts ...string) *route.Table {
	var routes []*route.Route
	for _, h := range hosts {
		routes = append(routes, &route.Route{Service: "web", Name: "default", Hosts: []string{h}, Path: "/", TLS: route.TLSAuto, Redirect: true})
	}
	return route.New(route.Snapshot{Routes: routes})
}

// managerConfig is the certs.Manager config every instance shares.
func managerConfig(t *testing.T, ca, caRoots string, store *Store, locker *Locker, log zerolog.Logger) certs.Config {
	return certs.Config{
		DataDir:  t.TempDir(),
		CA:       ca,
		CARoots:  caRoots,
		Cache:    store,
		Locker:   locker,
		Logger:   log,
		RetryMin: time.Second,
		RetryMax: 5 * time.Second,
	}
}

// startInstance starts an instance serving host; it stops at cleanup.
func (e env) startInstance(t *testing.T, name, keyFile string, p *pebbletest.Pebble, ttl time.Duration, host string) *instance {
	t.Helper()
	return e.startInstanceWith(t, name, keyFile, p, ttl, tlsTable(host), "")
}

// startInstanceWith starts an instance with table, using only the ACME
// challenge type challenge ("": both); it stops at cleanup.
func (e env) startInstanceWith(t *testing.T, name, keyFile string, p *pebbletest.Pebble, ttl time.Duration, table *route.Table, challenge string) *instance {
	t.Helper()
	log := testLogger(t).With().Str("instance", name).Logger()
	cfg := e.config(t, keyFile)
	cfg.Logger = log
	cfg.PruneAfter = time.Nanosecond // the test prunes right after the order
	store, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s: store: %v", name, err)
	}
	in := &instance{name: name, store: store, locker: e.locker(t, e.api, name, ttl)}
	mc := managerConfig(t, p.DirectoryURL, p.RootsFile, store, in.locker, log)
	mc.ChallengeType = challenge
	in.mgr, err = certs.New(mc)
	if err != nil {
		t.Fatalf("%s: certs.New: %v", name, err)
	}
	in.mgr.SetTable(table)

	in.httpAddr = serve(t, in.mgr.HTTPHandler(nil), nil)
	in.tlsAddr = serve(t, http.NotFoundHandler(), in.mgr.TLSConfig())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.mgr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	})
	return in
}

// serve serves h on a loopback port (over TLS with tlsConfig) until cleanup.
func serve(t *testing.T, h http.Handler, tlsConfig *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// leaf does a TLS handshake with addr for host and returns the verified leaf.
// The handshake waits for an order in progress, so it is also the wait for
// the instance to have its certificate.
func leaf(t *testing.T, addr, host string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config:    &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		t.Fatalf("TLS handshake with %s for %s: %v", addr, host, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// challengeSwitch listens on a port Pebble validates on and forwards each
// connection to the address pick returns at accept time ("" drops it).
type challengeSwitch struct {
	l    net.Listener
	pick func() string
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newSwitch(t *testing.T) *challengeSwitch {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &challengeSwitch{l: l}
	t.Cleanup(s.close)
	return s
}

func (s *challengeSwitch) port() int { return s.l.Addr().(*net.TCPAddr).Port }

// start begins forwarding; pick must be set first.
func (s *challengeSwitch) start() {
	s.wg.Go(func() {
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			s.track(c)
			s.wg.Go(func() { s.forward(c) })
		}
	})
}

func (s *challengeSwitch) track(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, c)
}

func (s *challengeSwitch) forward(c net.Conn) {
	defer c.Close()
	addr := s.pick()
	if addr == "" {
		return
	}
	up, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return
	}
	s.track(up)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // either side finished: closing both ends the other copy
}

func (s *challengeSwitch) close() {
	_ = s.l.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// holder returns the holder id of lock name's config, "" when none.
func (e env) holder(l *Locker, name string) (string, time.Time, error) {
	c, _, err := e.api.ConfigInspectWithRaw(context.Background(), l.lockName(name))
	if err != nil {
		if ignoreNotFound(err) == nil {
			return "", time.Time{}, nil
		}
		return "", time.Time{}, err
	}
	if c.Spec.Labels[LabelHolder] == "" {
		return "", time.Time{}, errors.New("lock config without holder")
	}
	return c.Spec.Labels[LabelHolder], c.CreatedAt, nil
}
