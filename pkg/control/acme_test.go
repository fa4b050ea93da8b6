package control

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
)

// serveEdge serves an edge's HTTP and HTTPS handlers on loopback ports.
func serveEdge(t *testing.T, e *Edge, httpPort, httpsPort int) {
	t.Helper()
	quiet := log.New(io.Discard, "", 0)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "edge") })
	httpSrv := &http.Server{Handler: e.HTTPHandler(ok), ErrorLog: quiet}
	httpsSrv := &http.Server{Handler: ok, ErrorLog: quiet}
	var wg sync.WaitGroup
	for _, s := range []struct {
		srv  *http.Server
		port int
		tls  *tls.Config
	}{{httpSrv, httpPort, nil}, {httpsSrv, httpsPort, e.TLSConfig()}} {
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err != nil {
			t.Fatal(err)
		}
		if s.tls != nil {
			ln = tls.NewListener(ln, s.tls)
		}
		wg.Go(func() { s.srv.Serve(ln) })
	}
	t.Cleanup(func() {
		httpSrv.Close()
		httpsSrv.Close()
		wg.Wait()
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A controller that does not listen where the CA validates obtains a
// certificate through an edge that does: the edge answers the challenge the
// controller sent it, then serves the certificate.
func TestACMEThroughEdge(t *testing.T) {
	t.Parallel()
	// The controller pins the challenge type (certs.Config.ChallengeType), and
	// Pebble reaches only the edge's port of that type: one order, validated
	// with it.
	tests := []struct {
		name   string
		http01 bool
	}{
		{name: certs.ChallengeHTTP01, http01: true},
		{name: certs.ChallengeTLSALPN01},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const host = "edge-acme.example.test"
			httpPort, httpsPort := freePort(t), freePort(t)
			pc := pebbletest.Config{TLSPort: httpsPort}
			if tc.http01 {
				pc = pebbletest.Config{HTTPPort: httpPort}
			}
			pebble := pebbletest.New(t, pc)

			sec := testSecret(t, "one secret for the whole cluster")
			srv := startServer(t, sec, "ctl", nil)
			logs := &syncbuf.Buffer{}
			m, err := certs.New(certs.Config{
				DataDir: t.TempDir(), CA: pebble.DirectoryURL, CARoots: pebble.RootsFile, Email: "ops@example.test",
				Challenges: srv.Challenges(), ChallengeType: tc.name, Logger: zerolog.New(logs),
				RetryMin: 200 * time.Millisecond, RetryMax: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			m.HTTPHandler(nil) // offer http-01, as a controller does

			e := startEdge(t, sec, []string{srv.addr}, nil)
			serveEdge(t, e.Edge, httpPort, httpsPort)
			tbl := testTable(time.Now(), host)
			srv.SetTable(tbl)
			waitEdge(t, e.Edge, "the table", hasHost(e.Edge, host))

			m.SetTable(tbl)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); m.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })

			deadline := time.After(3 * time.Minute)
			for {
				changed := m.Changed()
				served := m.Served(ctx)
				if len(served) == 1 {
					srv.SetCerts([]Cert{{Host: served[0].Host, PEM: served[0].PEM, NotBefore: served[0].NotBefore}})
					break
				}
				select {
				case <-changed:
				case <-deadline:
					t.Fatalf("no certificate within 3m; status %+v\n%s", m.Status(), logs.String())
				}
			}
			waitEdge(t, e.Edge, "the certificate", func() bool { _, err := serveName(e.Edge, host); return err == nil })

			conn, err := tls.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", httpsPort), &tls.Config{ServerName: host, RootCAs: pebble.IssuerRoots(t)})
			if err != nil {
				t.Fatalf("HTTPS to the edge with Pebble's roots: %v", err)
			}
			conn.Close()
			if n := pebble.Orders(); n != 1 {
				t.Errorf("Pebble saw %d orders, want 1", n)
			}
			if v := pebble.Validations(); v.Valid != 1 || v.Invalid != 0 || (v.HTTP01Requests > 0) != tc.http01 {
				t.Errorf("Pebble's validations %+v: want 1 valid, 0 invalid, HTTP-01 requests only for http-01", v)
			}
			if slices.ContainsFunc(e.Status().Controllers, func(c ControllerStatus) bool { return !c.Connected }) {
				t.Errorf("controller disconnected: %+v", e.Status())
			}
		})
	}
}
