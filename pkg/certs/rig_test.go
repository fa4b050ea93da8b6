package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// waitLong bounds every wait for an ACME round trip. A failed order keeps
// autocert from retrying a host for one minute, so recovery tests need more.
const waitLong = 3 * time.Minute

// rig is one test's world: Pebble, the ingress's HTTP and HTTPS ports on
// loopback and an upstream behind them.
type rig struct {
	t         *testing.T
	pebble    *pebbletest.Pebble
	httpPort  int // the ingress's HTTP listener (HTTP-01 and plain requests)
	httpsPort int // the ingress's HTTPS listener (TLS-ALPN-01 and HTTPS)
	upstream  *httptest.Server
	logs      *syncbuf.Buffer
}

// rigConfig says which challenge Pebble can reach: its http-01 and
// tls-alpn-01 validations go to the ingress's ports only when enabled,
// otherwise to ports where nothing listens.
type rigConfig struct {
	http01    bool
	tlsALPN01 bool
	caDown    bool // Pebble is configured but not started
}

func newRig(t *testing.T, rc rigConfig) *rig {
	t.Helper()
	r := &rig{t: t, httpPort: freePort(t), httpsPort: freePort(t), logs: &syncbuf.Buffer{}}
	pc := pebbletest.Config{Stopped: rc.caDown}
	if rc.http01 {
		pc.HTTPPort = r.httpPort
	}
	if rc.tlsALPN01 {
		pc.TLSPort = r.httpsPort
	}
	r.pebble = pebbletest.New(t, pc)
	r.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "upstream: %s %s", req.Host, req.URL.Path)
	}))
	t.Cleanup(r.upstream.Close)
	return r
}

// config is a Manager config for this rig; DataDir is a fresh directory.
func (r *rig) config() Config {
	return Config{
		DataDir:  r.t.TempDir(),
		CA:       r.pebble.DirectoryURL,
		CARoots:  r.pebble.RootsFile,
		Email:    "ops@example.test",
		Logger:   zerolog.New(r.logs),
		RetryMin: 200 * time.Millisecond,
		RetryMax: 2 * time.Second,
	}
}

// table routes each host to the upstream: tls=auto with redirect=true (the
// defaults); "noredirect:<host>" keeps plain HTTP proxied; "off:<host>"
// makes a tls=off route.
func (r *rig) table(hosts ...string) *route.Table {
	up := netip.MustParseAddrPort(r.upstream.Listener.Addr().String())
	var routes []*route.Route
	for i, h := range hosts {
		tlsMode, redirect := route.TLSAuto, true
		if name, ok := strings.CutPrefix(h, "off:"); ok {
			h, tlsMode, redirect = name, route.TLSOff, false
		}
		if name, ok := strings.CutPrefix(h, "noredirect:"); ok {
			h, redirect = name, false
		}
		routes = append(routes, &route.Route{
			Service: fmt.Sprintf("svc%d", i), Name: "default",
			Hosts: []string{h}, Path: "/", Port: up.Port(), TLS: tlsMode, Redirect: redirect,
			Mode: route.ModeStatic, Upstreams: []netip.AddrPort{up}, Scheme: route.SchemeHTTP,
		})
	}
	return route.New(route.Snapshot{Generation: 1, UpdatedAt: time.Now(), Routes: routes})
}

// start serves m on the rig's ports and runs it until the test ends or
// the returned stop is called.
func (r *rig) start(m *Manager) (stop func()) {
	r.t.Helper()
	stopServe, stopRun := r.serve(m), r.run(m)
	return func() { stopRun(); stopServe() }
}

// serve serves m on the rig's ports until the test ends or stop is called.
func (r *rig) serve(m *Manager) (stop func()) {
	r.t.Helper()
	// The proxy serves the table m has now, as cmd/ingress wires them.
	app := proxy.New(proxy.Config{Logger: zerolog.Nop()})
	app.SetTable(m.table.Load())
	quiet := log.New(io.Discard, "", 0)
	httpSrv := &http.Server{Handler: m.HTTPHandler(app), ErrorLog: quiet}
	httpsSrv := &http.Server{Handler: app, TLSConfig: m.TLSConfig(), ErrorLog: quiet}
	httpL := listen(r.t, r.httpPort)
	httpsL := tls.NewListener(listen(r.t, r.httpsPort), httpsSrv.TLSConfig)
	var wg sync.WaitGroup
	wg.Go(func() { _ = httpSrv.Serve(httpL) })
	wg.Go(func() { _ = httpsSrv.Serve(httpsL) })
	return r.onStop(func() {
		_ = httpSrv.Close()
		_ = httpsSrv.Close()
		wg.Wait()
	})
}

// run runs m until the test ends or stop is called.
func (r *rig) run(m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}()
	return r.onStop(func() {
		cancel()
		<-done
	})
}

// onStop makes f idempotent and runs it at the end of the test at the latest.
func (r *rig) onStop(f func()) func() {
	var once sync.Once
	stop := func() { once.Do(f) }
	r.t.Cleanup(stop)
	return stop
}

// handshake connects to the HTTPS port with SNI host and returns the chain
// the server presented, leaf first (unverified: the caller checks it).
func (r *rig) handshake(host string) ([]*x509.Certificate, error) {
	return r.handshakeWith(&tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
}

func (r *rig) handshakeWith(cfg *tls.Config) ([]*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp4",
		fmt.Sprintf("127.0.0.1:%d", r.httpsPort), cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates, nil
}

// get fetches https://host/path through the HTTPS port, trusting roots only.
func (r *rig) get(host, path string, roots *x509.CertPool) (*http.Response, string, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", r.httpsPort)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp4", addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := c.Get("https://" + host + path)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// getHTTP fetches http://host/path through the plain HTTP port without
// following redirects.
func (r *rig) getHTTP(host, path string) (code int, location, body string, err error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", r.httpPort, path), nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Host = host
	c := &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b), err
}

// waitStatus waits until cond holds for m's Status (by host), re-checking
// whenever a host's state changes.
func waitStatus(t *testing.T, m *Manager, what string, cond func(map[string]Status) bool) map[string]Status {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		m.mu.Lock()
		changed := m.updated
		m.mu.Unlock()
		st := statusByHost(m.Status())
		if cond(st) {
			return st
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: not reached within %v; status %+v", what, waitLong, st)
		}
	}
}

func statusByHost(list []Status) map[string]Status {
	out := map[string]Status{}
	for _, s := range list {
		out[s.Host] = s
	}
	return out
}

// issued reports whether host has an ACME certificate and no error.
func issued(host string) func(map[string]Status) bool {
	return func(st map[string]Status) bool {
		s := st[host]
		return s.Source == SourceACME && !s.NotAfter.IsZero() && s.Error == ""
	}
}

// verify checks that chain (leaf first) is valid for host under roots.
func verify(t *testing.T, chain []*x509.Certificate, host string, roots *x509.CertPool) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("certificate for %s does not verify against Pebble's root: %v", host, err)
	}
}

func listen(t *testing.T, port int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listen on port %d: %v", port, err)
	}
	return l
}

func freePort(t *testing.T) int {
	t.Helper()
	l := listen(t, 0)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
