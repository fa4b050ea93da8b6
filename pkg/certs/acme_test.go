package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/acme"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
)

// The routes here are route.Route values built in the test; that a Swarm
// service label or the static routes file produces such a route is proved
// by pkg/discovery and the end-to-end tests of cmd/ingress.

// TestChallenges proves each challenge type alone: ChallengeType pins it,
// and Pebble can reach only the listener of that challenge, so the
// certificate can only have been validated through it, in one order, which
// Pebble's log confirms. The certificate is obtained before any client
// connects, verifies against Pebble's root, and a client then reaches the
// upstream over HTTPS and HTTP/2.
func TestChallenges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rig  rigConfig
	}{
		{name: "http-01", rig: rigConfig{http01: true}},
		{name: "tls-alpn-01", rig: rigConfig{tlsALPN01: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const host = "app.example.test"
			r := newRig(t, tc.rig)
			cfg := r.config()
			cfg.ChallengeType = tc.name
			reg := prometheus.NewRegistry()
			cfg.Registerer = reg
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m.SetTable(r.table(host, "off:plain.example.test"))
			r.start(m)

			// Pre-issuance: no client has connected yet.
			st := waitStatus(t, m, "pre-issued certificate", issued(host))[host]
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "acme", host)); err != nil {
				t.Fatalf("certificate not in the cache before the first client: %v", err)
			}
			if n := r.pebble.Orders(); n != 1 {
				t.Errorf("Pebble saw %d orders, want 1", n)
			}
			checkValidations(t, r.pebble.Validations(), tc.name)
			if _, ok := statusByHost(m.Status())["plain.example.test"]; ok {
				t.Error("Status lists a tls=off host")
			}
			if got := expiryMetric(t, reg, host, SourceACME); got != float64(st.NotAfter.Unix()) {
				t.Errorf("ingress_cert_expiry_timestamp_seconds = %v, want %v", got, st.NotAfter.Unix())
			}

			// redirect=true: plain HTTP is redirected, yet the HTTP-01
			// challenge above was answered first.
			code, loc, _, err := r.getHTTP(host, "/x?y=1")
			if err != nil || code != http.StatusPermanentRedirect || loc != "https://"+host+"/x?y=1" {
				t.Errorf("plain HTTP: %d %q %v, want 308 to https://%s/x?y=1", code, loc, err, host)
			}

			roots := r.pebble.IssuerRoots(t)
			resp, body, err := r.get(host, "/hello", roots)
			if err != nil {
				t.Fatalf("HTTPS GET with Pebble's root trusted: %v", err)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
			if want := "upstream: " + host + " /hello"; body != want {
				t.Errorf("body %q, want %q", body, want)
			}
			leaf := resp.TLS.PeerCertificates[0]
			if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
				t.Errorf("certificate key is %T, want ECDSA", leaf.PublicKey)
			}
			if !leaf.NotAfter.Equal(st.NotAfter) {
				t.Errorf("served certificate expires %v, Status says %v", leaf.NotAfter, st.NotAfter)
			}

			// A TLS 1.3-only hello offers no ECDSA cipher suite; autocert
			// alone would order an RSA certificate for it.
			orders := r.pebble.Orders()
			chain, err := r.handshakeWith(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS13, RootCAs: roots})
			if err != nil {
				t.Fatalf("TLS 1.3-only handshake: %v", err)
			}
			if chain[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
				t.Errorf("TLS 1.3-only client got serial %v, want the ECDSA certificate %v", chain[0].SerialNumber, leaf.SerialNumber)
			}
			if n := r.pebble.Orders(); n != orders {
				t.Errorf("the TLS 1.3-only handshake placed %d orders", n-orders)
			}
		})
	}
}

// checkValidations asserts that Pebble validated one authorization, with
// challenge type typ, and none failed.
func checkValidations(t *testing.T, v pebbletest.Validations, typ string) {
	t.Helper()
	if v.Valid != 1 || v.Invalid != 0 {
		t.Errorf("Pebble made %d authorizations valid and %d invalid, want 1 and 0", v.Valid, v.Invalid)
	}
	if http01 := v.HTTP01Requests > 0; http01 != (typ == ChallengeHTTP01) {
		t.Errorf("Pebble made %d HTTP-01 validation requests; the challenge must be %s", v.HTTP01Requests, typ)
	}
}

// TestRefusesOtherNames: a handshake for a name no route has, or for a
// tls=off route, fails and no order reaches Pebble; neither does an
// HTTP-01 request for such a name get a token.
func TestRefusesOtherNames(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{http01: true, tlsALPN01: true})
	m, err := New(r.config())
	if err != nil {
		t.Fatal(err)
	}
	m.SetTable(r.table("off:plain.example.test"))
	r.start(m)

	for _, host := range []string{"nobody.example.test", "plain.example.test", "NOBODY.example.test."} {
		if _, err := r.handshake(host); err == nil {
			t.Errorf("handshake for %q succeeded, want it refused", host)
		}
	}
	code, _, _, err := r.getHTTP("nobody.example.test", "/.well-known/acme-challenge/x")
	if err != nil || code != 403 {
		t.Errorf("HTTP-01 request for an unrouted name: status %d, %v; want 403", code, err)
	}
	if n := r.pebble.Orders(); n != 0 {
		t.Fatalf("Pebble saw %d orders, want 0", n)
	}
	if st := m.Status(); len(st) != 0 {
		t.Errorf("Status = %+v, want empty", st)
	}
}

// TestRestartUsesCache: a new Manager on the same data directory serves the
// certificate the first one obtained and places no order.
func TestRestartUsesCache(t *testing.T) {
	t.Parallel()
	const host = "cached.example.test"
	r := newRig(t, rigConfig{tlsALPN01: true})
	cfg := r.config()
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first.SetTable(r.table(host))
	stop := r.start(first)
	waitStatus(t, first, "first certificate", issued(host))
	chain, err := r.handshake(host)
	if err != nil {
		t.Fatal(err)
	}
	serial := chain[0].SerialNumber
	stop()
	orders := r.pebble.Orders()

	second, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second.SetTable(r.table(host))
	r.start(second)
	waitStatus(t, second, "certificate from the cache", issued(host))
	chain, err = r.handshake(host)
	if err != nil {
		t.Fatalf("handshake after restart: %v", err)
	}
	if chain[0].SerialNumber.Cmp(serial) != 0 {
		t.Errorf("after restart serial %v, want the cached %v", chain[0].SerialNumber, serial)
	}
	verify(t, chain, host, r.pebble.IssuerRoots(t))
	if n := r.pebble.Orders(); n != orders {
		t.Errorf("Pebble saw %d orders after the restart, want none", n-orders)
	}
}

// TestCADown: while the CA is down the route keeps serving plain HTTP, the
// error shows in Status and the log, and the certificate arrives through the
// backoff once the CA is up.
func TestCADown(t *testing.T) {
	t.Parallel()
	const host = "later.example.test"
	r := newRig(t, rigConfig{tlsALPN01: true, caDown: true})
	m, err := New(r.config())
	if err != nil {
		t.Fatal(err)
	}
	m.SetTable(r.table("noredirect:" + host))
	r.start(m)

	st := waitStatus(t, m, "error in Status", func(st map[string]Status) bool { return st[host].Error != "" })[host]
	if !strings.Contains(st.Error, "connection refused") {
		t.Errorf("Status error %q does not say the CA refused the connection", st.Error)
	}
	if logs := r.logs.String(); !strings.Contains(logs, `"host":"`+host+`"`) || !strings.Contains(logs, "obtain certificate") {
		t.Errorf("log has no error for %s:\n%s", host, logs)
	}
	code, _, body, err := r.getHTTP(host, "/plain")
	if err != nil || code != 200 || body != "upstream: "+host+" /plain" {
		t.Errorf("plain HTTP while the CA is down: %d %q %v", code, body, err)
	}
	if _, err := r.handshake(host); err == nil {
		t.Error("handshake succeeded without a certificate")
	}

	r.pebble.Start()
	waitStatus(t, m, "certificate after the CA came back", issued(host))
	chain, err := r.handshake(host)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, chain, host, r.pebble.IssuerRoots(t))
}

// TestOneOrderPerHost: two managers sharing a cache and a Locker, and
// several handshakes on each, place one order between them. Only the first
// manager's listeners are reachable by Pebble, so the second also proves
// that a challenge is answered from the shared cache.
func TestOneOrderPerHost(t *testing.T) {
	t.Parallel()
	const host = "shared.example.test"
	r := newRig(t, rigConfig{tlsALPN01: true})
	cfg := r.config()
	cfg.Locker = &memLocker{}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Manager{a, b} {
		m.SetTable(r.table(host))
	}
	// Only a serves; neither runs pre-issuance: handshakes drive the orders.
	a.acme.HTTPHandler(nil)
	srv := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: a.TLSConfig()}
	httpsL := tls.NewListener(listen(t, r.httpsPort), srv.TLSConfig)
	go func() { _ = srv.Serve(httpsL) }()
	t.Cleanup(func() { _ = srv.Close() })

	var wg sync.WaitGroup
	serials := make(chan string, 6)
	for i := range 6 {
		m := []*Manager{a, b}[i%2]
		wg.Go(func() {
			cert, err := m.getCertificate(&tls.ClientHelloInfo{ServerName: host})
			if err != nil {
				t.Errorf("getCertificate: %v", err)
				return
			}
			serials <- cert.Leaf.SerialNumber.String()
		})
	}
	wg.Wait()
	close(serials)
	seen := map[string]bool{}
	for s := range serials {
		seen[s] = true
	}
	if len(seen) != 1 {
		t.Errorf("handshakes got %d different certificates, want 1", len(seen))
	}
	if n := r.pebble.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders, want 1", n)
	}
	if got := cfg.Locker.(*memLocker).names(); len(got) == 0 || got[0] != host {
		t.Errorf("Locker was asked for %v, want %q", got, host)
	}
}

func expiryMetric(t *testing.T, g prometheus.Gatherer, host, source string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ingress_cert_expiry_timestamp_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labels(m)["host"] == host && labels(m)["source"] == source {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no ingress_cert_expiry_timestamp_seconds{host=%q,source=%q}", host, source)
	return 0
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// memLocker is a Locker for managers in one process: one mutex per name.
type memLocker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
	asked []string
}

func (l *memLocker) Lock(ctx context.Context, name string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]chan struct{}{}
	}
	ch := l.locks[name]
	if ch == nil {
		ch = make(chan struct{}, 1)
		l.locks[name] = ch
	}
	l.asked = append(l.asked, name)
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *memLocker) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.asked...)
}

// TestValidationFails: the CA is up but cannot validate (nothing answers
// its challenges yet): the error is in Status and the log and stays the
// real one while autocert holds the failed order for a minute; once the
// listeners serve, the certificate arrives through the backoff.
func TestValidationFails(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out autocert's one-minute hold on a failed order")
	}
	t.Parallel()
	const host = "refused.example.test"
	r := newRig(t, rigConfig{http01: true, tlsALPN01: true})
	m, err := New(r.config())
	if err != nil {
		t.Fatal(err)
	}
	m.SetTable(r.table(host))
	r.run(m)

	waitStatus(t, m, "validation error in Status", func(st map[string]Status) bool { return st[host].Error != "" })
	// Let a few retries hit autocert's hold: the error must stay the CA's.
	waitStatus(t, m, "retries", func(map[string]Status) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.hosts[host] != nil && m.hosts[host].failures >= 3
	})
	e := statusByHost(m.Status())[host].Error
	if e == errNotReady || !strings.Contains(e, host) {
		t.Errorf("Status error %q is not the failed order's error", e)
	}
	if logs := r.logs.String(); !strings.Contains(logs, strings.ReplaceAll(e, `"`, `\"`)) {
		t.Errorf("log has no error %q:\n%s", e, logs)
	}

	r.serve(m)
	waitStatus(t, m, "certificate once the challenges are answered", issued(host))
	chain, err := r.handshake(host)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, chain, host, r.pebble.IssuerRoots(t))
}

// TestRemovedHost: a host that leaves the table is no longer listed, served
// or pre-issued, and an order for it (what autocert's renewal would place)
// is refused before it reaches the CA, while the same client still orders
// for a routed host.
func TestRemovedHost(t *testing.T) {
	t.Parallel()
	const gone, kept = "gone.example.test", "kept.example.test"
	r := newRig(t, rigConfig{tlsALPN01: true})
	m, err := New(r.config())
	if err != nil {
		t.Fatal(err)
	}
	m.SetTable(r.table(gone, kept))
	r.start(m)
	waitStatus(t, m, "both certificates", func(st map[string]Status) bool { return issued(gone)(st) && issued(kept)(st) })

	m.SetTable(r.table(kept))
	waitStatus(t, m, "removed host dropped", func(st map[string]Status) bool { _, ok := st[gone]; return !ok })
	if _, err := r.handshake(gone); err == nil {
		t.Error("handshake for a removed host succeeded")
	}

	orders := r.pebble.Orders()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := m.acme.Client // autocert's client, registered by the orders above
	if _, err := client.AuthorizeOrder(ctx, acme.DomainIDs(gone)); err == nil || !strings.Contains(err.Error(), "refused to order") {
		t.Errorf("order for a removed host: %v, want it refused", err)
	}
	if n := r.pebble.Orders(); n != orders {
		t.Fatalf("the refused order reached Pebble (%d orders)", n-orders)
	}
	if _, err := client.AuthorizeOrder(ctx, acme.DomainIDs(kept)); err != nil {
		t.Errorf("order for a routed host: %v", err)
	}
	if n := r.pebble.Orders(); n != orders+1 {
		t.Errorf("Pebble saw %d new orders, want 1", n-orders)
	}
}
