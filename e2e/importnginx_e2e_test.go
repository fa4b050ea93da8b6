package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
	"github.com/swarm-ingress/swarm-ingress/pkg/nginximport"
)

// TestImportNginxE2E serves configurations of the importer's corpus
// (pkg/nginximport/testdata) twice: with the host's Nginx, as a process on
// loopback, in front of a Swarm service's task published on a host port
// (the "application on a loopback port" setup the importer migrates from),
// and with the ingress, from the labels `import-nginx` translates them to,
// deployed on that same service. The same requests to both must get the
// same status, the same chosen response headers, the same redirect target
// and the same request at the backend (path, query, host, headers).
//
// Besides the translated labels it adds only upstream=tasks (this machine
// has no IPVS). Nginx gets `port_in_redirect off`, as it would listen on 80
// in production. Run it alone: flock /work/wt/docker.lock.
func TestImportNginxE2E(t *testing.T) {
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("no nginx on this machine (apt-get install nginx-light)")
	}
	rig := swarmtest.New(t)
	network := rig.Network(t, "import-e2e")
	ing := rig.Ingress(t, swarmtest.IngressOptions{Networks: []swarmtest.Network{network}})
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ing.ServiceID)
		}
	})
	t.Run("headers-allow", func(t *testing.T) {
		host := rig.Name("intranet") + ".test"
		nginxBase := deployBoth(t, rig, network, ing, nginxBin, "headers-allow", map[string]string{"intranet.example.com": host}, host)
		small, big := strings.Repeat("a", 100), strings.Repeat("b", 2000)
		compare(t, nginxBase, ing.HTTP, true, []string{"X-Frame-Options", "X-Content-Type-Options"}, []request{
			{"root", http.MethodGet, host, "/", ""},
			{"path and query", http.MethodGet, host, "/docs/a%20b/c?x=1&y=two", ""},
			{"backend 404", http.MethodGet, host, "/status/404", ""},
			{"backend 503", http.MethodGet, host, "/status/503", ""},
			{"internal from outside the allow list", http.MethodGet, host, "/internal/report", ""},
			{"small body", http.MethodPost, host, "/upload", small},
			{"body over client_max_body_size", http.MethodPost, host, "/upload", big},
		})
		// A documented difference (docs/labels.md "Paths"): Nginx passes the
		// path as the client wrote it when proxy_pass has no URI, the
		// ingress sends its canonical form. The backend (Go's ServeMux)
		// redirects the first to the clean path and serves the second.
		viaNginx := send(t, nginxBase, host, http.MethodGet, "/docs/../guide/./x", "")
		viaIngress := send(t, ing.HTTP, host, http.MethodGet, "/docs/../guide/./x", "")
		if viaNginx.status/100 != 3 || viaNginx.header.Get("Location") != "/guide/x" {
			t.Errorf("dot segments through nginx: %d Location %q, want the backend's redirect to /guide/x", viaNginx.status, viaNginx.header.Get("Location"))
		}
		if viaIngress.echo == nil || viaIngress.echo.Path != "/guide/x" {
			t.Errorf("dot segments through the ingress: %d %+v, want the backend to serve /guide/x", viaIngress.status, viaIngress.echo)
		}
	})

	t.Run("shop-redirects", func(t *testing.T) {
		apex := rig.Name("shop") + ".test"
		www := "www." + apex
		blog := rig.Name("blog") + ".test"
		nginxBase := deployBoth(t, rig, network, ing, nginxBin, "shop-redirects",
			map[string]string{"www.shop.example.com": www, "shop.example.com": apex, "blog.example.com": blog}, apex)
		compare(t, nginxBase, ing.HTTP, false, []string{"Location"}, []request{
			{"apex", http.MethodGet, apex, "/cart?id=3", ""},
			{"www to the apex", http.MethodGet, www, "/cart?id=3", ""},
			{"www root", http.MethodGet, www, "/", ""},
			{"server-level rewrite", http.MethodGet, apex, "/feed", ""},
			{"permanent rewrite", http.MethodGet, apex, "/catalogue/shoes/red?size=9", ""},
			{"redirect rewrite", http.MethodGet, apex, "/sale/winter", ""},
			{"return to another host", http.MethodGet, apex, "/blog/2024/hello?ref=x", ""},
			{"proxy_pass with a URI", http.MethodGet, apex, "/api/items?page=2", ""},
			{"post through", http.MethodPost, apex, "/checkout", "order=1"},
		})
	})
}

// deployBoth adapts a corpus configuration to this test (its names to
// unique hosts, its loopback upstream to a free port, its listen to
// loopback), translates it, deploys the backend service with the
// translated labels, starts Nginx on it, waits until both answer for
// probeHost and returns Nginx's base URL.
func deployBoth(t *testing.T, rig *swarmtest.Rig, network swarmtest.Network, ing swarmtest.Ingress, nginxBin, corpus string, hosts map[string]string, probeHost string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "pkg", "nginximport", "testdata", corpus, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	appPort := swarmtest.FreePort(t)
	nginxPort := swarmtest.FreePort(t)
	for nginxPort == appPort {
		nginxPort = swarmtest.FreePort(t)
	}
	pairs := []string{
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", appPort),
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", nginxPort),
	}
	for _, from := range sortedByLength(hosts) { // www.x before x
		pairs = append(pairs, from, hosts[from])
	}
	conf := strings.NewReplacer(pairs...).Replace(string(src))

	// The translation, as `ingress import-nginx` prints it.
	ds, err := nginxconf.ParseBytes("nginx.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	res := nginximport.Translate([][]*nginxconf.Directive{ds}, nginximport.Options{})
	if res.Partial() || len(res.Services) != 1 {
		t.Fatalf("translation: %d services, dropped %v", len(res.Services), res.Dropped)
	}
	labels := map[string]string{"ingress.upstream": "tasks"} // no IPVS here
	for _, l := range nginximport.Labels(res.Services[0]) {
		labels[l.Key] = l.Value
	}
	t.Logf("labels: %v", labels)

	// The backend: one task, listening on appPort, published on the host
	// (host mode) for Nginx, attached to the network for the ingress.
	svc := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t), Env: []string{fmt.Sprintf("PORT=%d", appPort)}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: network.ID}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(appPort),
			PublishedPort: uint32(appPort), PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	})
	rig.WaitTasks(t, svc, 1)
	nginxBase := startNginx(t, nginxBin, conf, nginxPort)
	swarmtest.WaitHTTPHost(t, nginxBase+"/", probeHost, http.StatusOK)
	swarmtest.WaitHTTPHost(t, ing.HTTP+"/", probeHost, http.StatusOK)
	return nginxBase
}

func sortedByLength(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b)) })
	return keys
}

// compare sends each request to Nginx and to the ingress and compares the
// answers: status, the headers named, and what the backend saw.
//
// sameHost: the configuration sets proxy_set_header Host $host, so both
// forward the client's Host. Without it Nginx sends its upstream's address
// ($proxy_host) and the ingress still the client's Host, a difference the
// importer lists; then the test checks exactly that.
func compare(t *testing.T, nginxBase, ingressBase string, sameHost bool, headers []string, reqs []request) {
	t.Helper()
	for _, c := range reqs {
		t.Run(c.name, func(t *testing.T) {
			want := send(t, nginxBase, c.host, c.method, c.path, c.body)
			got := send(t, ingressBase, c.host, c.method, c.path, c.body)
			t.Logf("nginx %d %q, ingress %d %q", want.status, want.header.Get("Location"), got.status, got.header.Get("Location"))
			if got.status != want.status {
				t.Errorf("status: ingress %d, nginx %d", got.status, want.status)
			}
			for _, h := range headers {
				g, w := got.header.Get(h), want.header.Get(h)
				if h == "Location" {
					g, w = absolute(c.host, c.path, g), absolute(c.host, c.path, w)
				}
				if g != w {
					t.Errorf("%s: ingress %q, nginx %q", h, g, w)
				}
			}
			if want.echo != nil || got.echo != nil {
				if want.echo == nil || got.echo == nil {
					t.Fatalf("the backend answered only one of them: nginx %v, ingress %v", want.echo, got.echo)
				}
				g, w := got.echo, want.echo
				if g.Method != w.Method || g.Path != w.Path || g.RawQuery != w.RawQuery || g.BodyBytes != w.BodyBytes || g.header("X-Site") != w.header("X-Site") {
					t.Errorf("the backend saw: through the ingress %+v; through nginx %+v", *g, *w)
				}
				if sameHost && g.Host != w.Host {
					t.Errorf("Host at the backend: through the ingress %q, through nginx %q", g.Host, w.Host)
				}
				if !sameHost && (g.Host != c.host || !strings.HasPrefix(w.Host, "127.0.0.1:")) {
					t.Errorf("Host at the backend: through the ingress %q, want the client's %q; through nginx %q, want its upstream's address", g.Host, c.host, w.Host)
				}
			}
		})
	}
}

// absolute resolves a Location against the request's URL (Nginx writes
// absolute redirects, a backend may write relative ones).
func absolute(host, path, loc string) string {
	if loc == "" {
		return ""
	}
	base, err := url.Parse("http://" + host + path)
	if err != nil {
		return loc
	}
	u, err := base.Parse(loc)
	if err != nil {
		return loc
	}
	return u.String()
}

// request is one request of a comparison.
type request struct {
	name, method, host, path, body string
}

type answer struct {
	status int
	header http.Header
	echo   *echoBody // the backend's echo, for its 200 answers
}

type echoBody struct {
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	RawQuery  string              `json:"raw_query"`
	Host      string              `json:"host"`
	BodyBytes int64               `json:"body_bytes"`
	Headers   map[string][]string `json:"headers"`
}

func (e *echoBody) header(name string) string { return http.Header(e.Headers).Get(name) }

var noFollow = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func send(t *testing.T, base, host, method, path, body string) answer {
	t.Helper()
	client := noFollow
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header}
	if res.StatusCode == http.StatusOK && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		a.echo = &echoBody{}
		if err := json.Unmarshal(b, a.echo); err != nil {
			t.Fatalf("echo body: %v: %s", err, b)
		}
	}
	return a
}

// startNginx runs the host's nginx in the foreground with the site
// configuration in a temporary prefix, and stops it when the test ends.
func startNginx(t *testing.T, bin, site string, port int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log stderr;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    port_in_redirect off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/site.conf;
}
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off; master_process off;")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("nginx output:\n%s", stderr.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case <-done:
			t.Fatalf("nginx exited: %s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if res, err := noFollow.Get(base + "/"); err == nil { // any answer: the first server may redirect
			res.Body.Close()
			return base
		}
	}
	t.Fatalf("nginx does not listen on %s: %s", base, stderr.String())
	return ""
}
