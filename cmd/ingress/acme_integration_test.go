package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
)

// TestACMEEndToEnd runs the real binary against a real ACME server (Pebble)
// with one tls=auto route from a Swarm service label and one from the routes
// file. Both certificates must be issued before any client connects; the
// static route then answers over HTTPS and HTTP/2 with a certificate that
// verifies against Pebble's root; a name no route has is refused without an
// order; a restart on the same data directory places no new order.
func TestACMEEndToEnd(t *testing.T) {
	rig := swarmtest.New(t)
	network := rig.Network(t, "acme")
	labelHost := rig.Name("label") + ".test"
	rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: rig.Name("acme"), Labels: map[string]string{
			"ingress.host": labelHost, "ingress.port": "8080"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: network.ID}},
		},
	})

	backend, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "static backend saw %s", r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(func() { backend.Close() })

	httpPort, httpsPort := swarmtest.FreePort(t), swarmtest.FreePort(t)
	pebble := pebbletest.New(t, pebbletest.Config{HTTPPort: httpPort, TLSPort: httpsPort})

	dir := t.TempDir()
	staticHost := "static.test"
	routes := filepath.Join(dir, "routes.yml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: legacy
    upstreams: ["%s"]
    labels:
      ingress.host: %s
`, backend.Addr(), staticHost)), 0o644)

	env := []string{
		"INGRESS_DATA_DIR=" + filepath.Join(dir, "data"),
		"INGRESS_ROUTES_FILE=" + routes,
		"INGRESS_NETWORK=" + network.Name,
		"INGRESS_ACME_CA=" + pebble.DirectoryURL,
		"INGRESS_ACME_CA_ROOTS=" + pebble.RootsFile,
		"INGRESS_ACME_EMAIL=ops@example.com",
	}
	ing := &ingressProc{
		http:   "127.0.0.1:" + strconv.Itoa(httpPort),
		https:  "127.0.0.1:" + strconv.Itoa(httpsPort),
		admin:  fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		logs:   new(syncbuf.Buffer),
		exited: make(chan error, 1),
	}
	ing.start(t, nil, env...)

	// Pre-issuance: both certificates appear without any client connecting.
	waitCerts(t, ing.admin, labelHost, staticHost)
	orders := pebble.Orders()
	if orders != 2 {
		t.Fatalf("Pebble saw %d orders, want 2 (one per host)", orders)
	}

	roots := pebble.IssuerRoots(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp4", ing.https)
		},
	}}
	resp, err := client.Get("https://" + staticHost + "/")
	if err != nil {
		t.Fatalf("HTTPS to the static route: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || string(body) != "static backend saw https" {
		t.Fatalf("HTTPS static route: %s %s %q", resp.Proto, resp.Status, body)
	}

	// The label route's certificate verifies too (its upstream lives on the
	// overlay network, which this host process cannot reach: only the handshake is checked).
	conn, err := tls.Dial("tcp4", ing.https, &tls.Config{ServerName: labelHost, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("TLS handshake for the label route: %v", err)
	}
	if proto := conn.ConnectionState().NegotiatedProtocol; proto != "h2" {
		t.Errorf("ALPN = %q", proto)
	}
	conn.Close()

	// Plain HTTP on a tls=auto route redirects to HTTPS.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+ing.http+"/x?y=1", nil)
	req.Host = staticHost
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://"+staticHost+"/x?y=1" {
		t.Fatalf("HTTP on a tls=auto route: %s Location %q", resp.Status, resp.Header.Get("Location"))
	}

	// A name no route has: refused, and no order reaches Pebble.
	if c, err := tls.Dial("tcp4", ing.https, &tls.Config{ServerName: "nobody.test", RootCAs: roots}); err == nil {
		c.Close()
		t.Fatal("handshake for an unrouted name succeeded")
	}
	if got := pebble.Orders(); got != orders {
		t.Fatalf("an unrouted name caused an order: %d orders, want %d", got, orders)
	}

	// Restart on the same data directory: the cached certificates are served, no new order.
	ing.stop(t)
	ing.exited = make(chan error, 1)
	ing.start(t, nil, env...)
	waitCerts(t, ing.admin, labelHost, staticHost)
	resp, err = client.Get("https://" + staticHost + "/")
	if err != nil {
		t.Fatalf("HTTPS after restart: %v", err)
	}
	resp.Body.Close()
	if got := pebble.Orders(); got != orders {
		t.Fatalf("restart placed %d new order(s)", got-orders)
	}
}

// waitCerts polls /api/certs until every host has a certificate without error.
func waitCerts(t *testing.T, admin string, hosts ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/api/certs")
		if err == nil {
			var certs []struct {
				Host     string    `json:"host"`
				Source   string    `json:"source"`
				NotAfter time.Time `json:"not_after"`
				Error    string    `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&certs)
			resp.Body.Close()
			ok := 0
			for _, h := range hosts {
				for _, c := range certs {
					if c.Host == h && c.Source == "acme" && c.Error == "" && c.NotAfter.After(time.Now()) {
						ok++
					}
				}
			}
			if ok == len(hosts) {
				return
			}
			last = fmt.Sprintf("%+v", certs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("certificates for %s not issued within 60s; /api/certs: %s", strings.Join(hosts, ", "), last)
}
