package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Log field names.
const (
	fieldHost  = "host"
	fieldFile  = "file"
	fieldKey   = "key"
	fieldRetry = "retry_in"
)

// hostState is what the manager knows about one ACME host. Guarded by Manager.mu.
type hostState struct {
	flight   *flight   // non-nil while an attempt runs; callers wait on it
	ready    bool      // autocert holds a valid certificate for the host
	notAfter time.Time // of that certificate
	err      string    // last failure; "" after a success
	failures int       // consecutive failures
	retryAt  time.Time // no new attempt before then
}

// flight is one attempt to obtain a host's certificate, shared by everyone
// who asks for the host while it runs.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// errNotReady is what autocert answers for a minute after a failed order
// (it keeps the failed state that long); the real error is the one before.
const errNotReady = "acme/autocert: missing certificate"

// reconcile drops hosts the table no longer names, starts a background
// attempt for every pre-issuable host that needs one and is due, and returns
// how long until the next host is due (ok false: none is waiting).
func (m *Manager) reconcile(ctx context.Context, wg *sync.WaitGroup) (wait time.Duration, ok bool) {
	t, files := m.table.Load(), m.files.Load()
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	dropped := false
	for h := range m.hosts {
		if !t.TLSHost(h) || files.match(h) != nil {
			delete(m.hosts, h)
			dropped = true
		}
	}
	if dropped {
		m.notify()
	}
	for _, h := range t.TLSHosts() {
		if files.match(h) != nil {
			continue
		}
		st := m.state(h)
		if st.ready || st.flight != nil {
			continue
		}
		if d := st.retryAt.Sub(now); d > 0 {
			if !ok || d < wait {
				wait, ok = d, true
			}
			continue
		}
		f := newFlight(st)
		wg.Go(func() { m.attempt(ctx, h, f, true) })
	}
	return wait, ok
}

// state returns host's state, creating it. Call with m.mu held.
func (m *Manager) state(host string) *hostState {
	st := m.hosts[host]
	if st == nil {
		st = &hostState{}
		m.hosts[host] = st
	}
	return st
}

// newFlight records a new attempt in st. Call with m.mu held.
func newFlight(st *hostState) *flight {
	f := &flight{done: make(chan struct{})}
	st.flight = f
	return f
}

// certificate returns host's ACME certificate, obtaining it if needed. A
// caller that finds an attempt in progress waits for it instead of starting
// another; after a failure it gets the error at once until the backoff ends.
// Only a host the policy allows may be passed.
func (m *Manager) certificate(ctx context.Context, host string) (*tls.Certificate, error) {
	m.mu.Lock()
	st := m.state(host)
	f := st.flight
	switch {
	case f != nil:
	case st.ready && time.Now().Before(st.notAfter):
		m.mu.Unlock()
		return m.acme.GetCertificate(ecdsaHello(host))
	case st.err != "" && time.Now().Before(st.retryAt):
		err := st.err
		m.mu.Unlock()
		return nil, fmt.Errorf("certificate for %q: %s", host, err)
	default:
		f = newFlight(st)
		go m.attempt(context.Background(), host, f, false)
	}
	m.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the certificate of %q: %w", host, ctx.Err())
	}
	if f.err != nil {
		return nil, f.err
	}
	return m.acme.GetCertificate(ecdsaHello(host))
}

// attempt runs flight f for host and records its result. Background
// attempts take a slot of the concurrency limit first.
func (m *Manager) attempt(ctx context.Context, host string, f *flight, background bool) {
	if background {
		select {
		case m.sem <- struct{}{}:
			defer func() { <-m.sem }()
		case <-ctx.Done():
			m.finish(host, f, nil, ctx.Err(), false)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, orderTimeout)
	defer cancel()
	cert, err := m.obtain(ctx, host)
	m.finish(host, f, cert, err, true)
}

// obtain loads host's certificate into autocert, from the cache when it holds
// a valid one, otherwise by ordering it under the Locker: lock, let autocert
// re-check the cache (another instance may have stored it meanwhile), order.
func (m *Manager) obtain(ctx context.Context, host string) (*tls.Certificate, error) {
	if m.cachedValid(ctx, host) {
		return m.acme.GetCertificate(ecdsaHello(host))
	}
	// A CA that cannot be reached fails here, before autocert starts an
	// order: autocert would remember that failure and refuse the host for a
	// minute whatever our backoff says. (Discover asks the CA only until
	// the directory has been read once.)
	if _, err := m.acme.Client.Discover(ctx); err != nil {
		return nil, fmt.Errorf("read the ACME directory: %w", err)
	}
	if m.locker != nil {
		unlock, err := m.locker.Lock(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("lock the order for %q: %w", host, err)
		}
		defer unlock()
	}
	return m.acme.GetCertificate(ecdsaHello(host))
}

// finish records the result of flight f and releases its waiters. A result
// from a stopped Run (record false) or for a host that left the table only
// releases the waiters.
func (m *Manager) finish(host string, f *flight, cert *tls.Certificate, err error, record bool) {
	defer close(f.done)
	m.mu.Lock()
	defer m.mu.Unlock()
	f.err = err
	st := m.hosts[host]
	if st == nil || st.flight != f {
		return
	}
	st.flight = nil
	if !record {
		return
	}
	defer m.kick() // Run schedules the next attempt
	defer m.notify()
	if err == nil && cert.Leaf != nil {
		st.ready, st.notAfter, st.err, st.failures, st.retryAt = true, cert.Leaf.NotAfter, "", 0, time.Time{}
		m.log.Info().Str(fieldHost, host).Time("not_after", st.notAfter).Msg("certificate ready")
		return
	}
	if err == nil {
		err = errors.New("autocert returned a certificate without a leaf")
		f.err = err
	}
	st.ready = false
	st.failures++
	wait := backoff(m.cfg.RetryMin, m.cfg.RetryMax, st.failures)
	st.retryAt = time.Now().Add(wait)
	retry := wait.Round(time.Millisecond).String()
	if err.Error() == errNotReady && st.err != "" {
		m.log.Debug().Str(fieldHost, host).Str(fieldRetry, retry).Msg("autocert still holds the failed order")
		return
	}
	st.err = err.Error()
	m.log.Error().Err(err).Str(fieldHost, host).Str(fieldRetry, retry).Msg("obtain certificate")
}

// stored is called by the cache after autocert stored an entry: a renewed
// certificate updates its host's expiry.
func (m *Manager) stored(key string, data []byte) {
	if strings.Contains(key, "+") {
		return // account key, RSA certificate, challenge token
	}
	leaf := parseCached(data)
	if leaf == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.hosts[key]; st != nil && st.ready {
		st.notAfter = leaf.NotAfter
		m.notify()
	}
}

// notify wakes everyone waiting on m.updated. Call with m.mu held.
func (m *Manager) notify() {
	close(m.updated)
	m.updated = make(chan struct{})
}

// cachedValid reports whether the cache holds a certificate for host that
// is valid now (autocert stores a host's ECDSA certificate under the bare
// host name). Errors count as "no": autocert will ask the cache again.
func (m *Manager) cachedValid(ctx context.Context, host string) bool {
	data, err := m.cache.Get(ctx, host)
	if err != nil {
		return false
	}
	leaf := parseCached(data)
	now := time.Now()
	return leaf != nil && leaf.VerifyHostname(host) == nil && now.After(leaf.NotBefore) && now.Before(leaf.NotAfter)
}

// parseCached returns the leaf of an autocert cache entry (a private key
// block followed by the certificate chain), or nil.
func parseCached(data []byte) *x509.Certificate {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		if b.Type == "CERTIFICATE" {
			leaf, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil
			}
			return leaf
		}
	}
}

// backoff is the wait after the n-th consecutive failure: lo doubled n-1
// times, at most hi, with jitter over its upper half.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// ecdsaHello asks autocert for host's ECDSA P-256 certificate whatever the
// client offered.
func ecdsaHello(host string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       host,
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
}

// policy is autocert's host policy: a current tls=auto route names host and
// no user certificate covers it.
func (m *Manager) policy(_ context.Context, host string) error {
	if !m.table.Load().TLSHost(host) {
		return fmt.Errorf("no route with tls=auto serves %q", route.NormalizeHost(host))
	}
	if m.files.Load().match(host) != nil {
		return fmt.Errorf("%q is served by a user certificate", route.NormalizeHost(host))
	}
	return nil
}

// orderable is the guard's policy: the ACME client may order a certificate
// for these identifiers.
func (m *Manager) orderable(names []string) error {
	for _, n := range names {
		if err := m.policy(context.Background(), n); err != nil {
			return err
		}
	}
	return nil
}
