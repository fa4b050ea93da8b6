package control

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// waitBound bounds every wait for the channel; nothing passes because of it,
// it only stops a broken test.
const waitBound = 60 * time.Second

const testSetting = "INGRESS_CONTROL_SECRET_FILE"

func testSecret(t *testing.T, s string) *Secret {
	t.Helper()
	sec, err := NewSecret([]byte(s), testSetting)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// testTable is a table of one tls=auto route per host, each named after it.
func testTable(at time.Time, hosts ...string) *route.Table {
	var rs []*route.Route
	for _, h := range hosts {
		rs = append(rs, &route.Route{
			Service: "svc-" + strings.ReplaceAll(h, ".", "-"), Name: "default", Hosts: []string{h}, Path: "/",
			Port: 80, TLS: route.TLSAuto, Redirect: true, Mode: route.ModeVIP, Network: "net",
			Upstreams: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:80")}, Scheme: route.SchemeHTTP,
		})
	}
	return route.New(route.Snapshot{UpdatedAt: at, Routes: rs})
}

// testCert is a self-signed certificate for host, as Cert and its key's DER.
func testCert(t *testing.T, host string, notBefore time.Time) (Cert, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return Cert{Host: host, PEM: buf.Bytes(), NotBefore: notBefore}, kd
}

type testServer struct {
	*Server
	addr string
	logs *syncbuf.Buffer
	stop func() // stops serving and waits for Serve to return
}

func startServer(t *testing.T, secret *Secret, name string, mod func(*ServerConfig)) *testServer {
	t.Helper()
	logs := &syncbuf.Buffer{}
	cfg := ServerConfig{Secret: secret, Name: name, Logger: zerolog.New(logs)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{Server: s, addr: ln.Addr().String(), logs: logs, stop: stop}
}

type testEdge struct {
	*Edge
	logs *syncbuf.Buffer
	stop func()
}

// startEdge runs an edge against addrs. A nil mod keeps the defaults and a
// state file in a fresh directory.
func startEdge(t *testing.T, secret *Secret, addrs []string, mod func(*EdgeConfig)) *testEdge {
	t.Helper()
	logs := &syncbuf.Buffer{}
	cfg := EdgeConfig{Secret: secret, Controllers: Static(addrs...), Name: "edge-" + t.Name(),
		StateFile: filepath.Join(t.TempDir(), "edge-state"), Logger: zerolog.New(logs)}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewEdge(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &testEdge{Edge: e, logs: logs, stop: stop}
}

// waitEdge waits until cond holds for the edge, re-checking at every update
// it applies.
func waitEdge(t *testing.T, e *Edge, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		ch := e.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("edge never reached: %s; status %+v", what, e.Status())
		}
	}
}

// waitLog waits until the log holds every part. Logs have no change signal,
// so it re-reads them every few milliseconds, bounded by waitBound.
func waitLog(t *testing.T, logs *syncbuf.Buffer, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		s := logs.String()
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(s, p)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never held %q:\n%s", parts, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hosts(t *route.Table) []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, r := range t.Routes {
		out = append(out, r.Hosts...)
	}
	return out
}

func hasHost(e *Edge, host string) func() bool {
	return func() bool { return e.Table().Match(host, "/") != nil }
}

// serveName asks the edge's TLS config for host's certificate.
func serveName(e *Edge, host string) (*tls.Certificate, error) {
	return e.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: host})
}
