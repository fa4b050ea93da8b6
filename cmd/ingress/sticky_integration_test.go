package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// TestEdgesShareStickyCookies runs a controller and two edges over a routes
// file with a sticky route of three upstreams: the edges sign sticky cookies
// with the key both derive from the control secret, so a client whose
// requests alternate between the edges (two nodes behind DNS round robin)
// stays on the upstream its first response named (docs/labels.md, "Split,
// sticky and slow start").
func TestEdgesShareStickyCookies(t *testing.T) {
	rig := swarmtest.New(t)
	network := rig.Network(t, "sticky-edges")
	var ups []string
	for _, name := range []string{"one", "two", "three"} {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
		t.Cleanup(func() { ln.Close() })
		ups = append(ups, fmt.Sprintf("%q", ln.Addr().String()))
	}
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yml")
	if err := os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: cart
    upstreams: [%s, %s, %s]
    labels:
      ingress.host: cart.test
      ingress.tls: "off"
      ingress.sticky: "true"
`, ups[0], ups[1], ups[2])), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := secretFile(t)
	controlAddr := fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t))
	ctl := newProc(t, "controller")
	ctl.start(t, nil,
		"INGRESS_CONTROL_ADDR="+controlAddr, "INGRESS_CONTROL_SECRET_FILE="+secret,
		"INGRESS_NETWORK="+network.Name, "INGRESS_ROUTES_FILE="+routes,
		"INGRESS_DATA_DIR="+filepath.Join(dir, "controller"))
	var edges []*ingressProc
	for i := range 2 {
		e := newProc(t, "edge")
		e.start(t, nil, "INGRESS_CONTROLLER="+controlAddr, "INGRESS_CONTROL_SECRET_FILE="+secret,
			"INGRESS_DATA_DIR="+filepath.Join(dir, fmt.Sprintf("edge%d", i)), "DOCKER_HOST=unix:///nonexistent/docker.sock")
		swarmtest.WaitHTTPHost(t, "http://"+e.http+"/", "cart.test", http.StatusOK)
		edges = append(edges, e)
	}

	client := &http.Client{Timeout: 30 * time.Second}
	get := func(e *ingressProc, cookie string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.http+"/", nil)
		req.Host = "cart.test"
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET via %s: %v", e.http, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET via %s: %s %s", e.http, res.Status, body)
		}
		set := ""
		if cs := res.Cookies(); len(cs) == 1 {
			set = cs[0].Name + "=" + cs[0].Value
		}
		return string(body), set
	}
	first, cookie := get(edges[0], "")
	if cookie == "" {
		t.Fatal("the first response set no sticky cookie")
	}
	for i := range 100 {
		if body, set := get(edges[i%2], cookie); body != first || set != "" {
			t.Fatalf("request %d via edge %d reached %s (want %s), Set-Cookie %q", i, i%2, body, first, set)
		}
	}
}
