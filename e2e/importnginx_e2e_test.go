package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
	"github.com/swarm-ingress/swarm-ingress/pkg/nginximport"
)

// TestImportNginxE2E serves one configuration of the importer's corpus
// (pkg/nginximport/testdata/headers-allow) twice: with the host's Nginx,
// as a process on loopback, in front of a Swarm service's task published
// on a host port (the "application on a loopback port" setup the importer
// migrates from), and with the ingress, from the labels `import-nginx`
// translates it to, deployed on that same service. The same requests to
// both must get the same status, the same chosen response headers and the
// same request at the backend (path, query, host).
//
// It uses only the labels the translation of that file emits (tls=off,
// headers, max_body, allow, timeouts), plus upstream=tasks because this
// machine has no IPVS. Run it alone: flock /work/wt/docker.lock.
func TestImportNginxE2E(t *testing.T) {
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("no nginx on this machine (apt-get install nginx-light)")
	}
	src, err := os.ReadFile(filepath.Join("..", "pkg", "nginximport", "testdata", "headers-allow", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	rig := swarmtest.New(t)
	network := rig.Network(t, "import-e2e")
	ing := rig.Ingress(t, swarmtest.IngressOptions{Networks: []swarmtest.Network{network}})

	host := rig.Name("intranet") + ".test"
	appPort := swarmtest.FreePort(t)
	nginxPort := swarmtest.FreePort(t)
	for nginxPort == appPort {
		nginxPort = swarmtest.FreePort(t)
	}
	conf := strings.NewReplacer(
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", appPort),
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", nginxPort),
		"intranet.example.com", host,
	).Replace(string(src))

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
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ing.ServiceID)
		}
	})
	rig.WaitTasks(t, svc, 1)

	nginxBase := startNginx(t, nginxBin, conf, nginxPort)
	swarmtest.WaitHTTPHost(t, nginxBase+"/", host, http.StatusOK)
	swarmtest.WaitHTTPHost(t, ing.HTTP+"/", host, http.StatusOK)

	small, big := strings.Repeat("a", 100), strings.Repeat("b", 2000)
	cases := []struct {
		name, method, path, body string
	}{
		{"root", http.MethodGet, "/", ""},
		{"path and query", http.MethodGet, "/docs/a%20b/c?x=1&y=two", ""},
		{"backend 404", http.MethodGet, "/status/404", ""},
		{"backend 503", http.MethodGet, "/status/503", ""},
		{"internal from outside the allow list", http.MethodGet, "/internal/report", ""},
		{"small body", http.MethodPost, "/upload", small},
		{"body over client_max_body_size", http.MethodPost, "/upload", big},
	}
	// A documented difference (docs/labels.md "Paths"): Nginx passes the
	// path as the client wrote it when proxy_pass has no URI, the ingress
	// sends its canonical form. The backend (Go's ServeMux) redirects the
	// first to the clean path and serves the second.
	t.Run("dot segments differ as documented", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		viaNginx := send(t, c, nginxBase, host, http.MethodGet, "/docs/../guide/./x", "")
		viaIngress := send(t, c, ing.HTTP, host, http.MethodGet, "/docs/../guide/./x", "")
		if viaNginx.status/100 != 3 || viaNginx.header.Get("Location") != "/guide/x" {
			t.Errorf("through nginx: %d Location %q, want the backend's redirect to /guide/x", viaNginx.status, viaNginx.header.Get("Location"))
		}
		if viaIngress.echo == nil || viaIngress.echo.Path != "/guide/x" {
			t.Errorf("through the ingress: %d %+v, want the backend to serve /guide/x", viaIngress.status, viaIngress.echo)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := send(t, client, nginxBase, host, c.method, c.path, c.body)
			got := send(t, client, ing.HTTP, host, c.method, c.path, c.body)
			t.Logf("nginx %d, ingress %d", want.status, got.status)
			if got.status != want.status {
				t.Errorf("status: ingress %d, nginx %d", got.status, want.status)
			}
			for _, h := range []string{"X-Frame-Options", "X-Content-Type-Options", "Location"} {
				if got.header.Get(h) != want.header.Get(h) {
					t.Errorf("%s: ingress %q, nginx %q", h, got.header.Get(h), want.header.Get(h))
				}
			}
			if want.echo != nil || got.echo != nil {
				if want.echo == nil || got.echo == nil {
					t.Fatalf("the backend answered only one of them: nginx %v, ingress %v", want.echo, got.echo)
				}
				if got.echo.Path != want.echo.Path || got.echo.RawQuery != want.echo.RawQuery || got.echo.Host != want.echo.Host || got.echo.BodyBytes != want.echo.BodyBytes {
					t.Errorf("the backend saw: through the ingress %s %q host %s body %d; through nginx %s %q host %s body %d",
						got.echo.Path, got.echo.RawQuery, got.echo.Host, got.echo.BodyBytes, want.echo.Path, want.echo.RawQuery, want.echo.Host, want.echo.BodyBytes)
				}
			}
		})
	}
}

type answer struct {
	status int
	header http.Header
	echo   *echoBody // the backend's echo, for its 200 answers
}

type echoBody struct {
	Path      string `json:"path"`
	RawQuery  string `json:"raw_query"`
	Host      string `json:"host"`
	BodyBytes int64  `json:"body_bytes"`
}

func send(t *testing.T, client *http.Client, base, host, method, path, body string) answer {
	t.Helper()
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
		if res, err := http.Get(base + "/"); err == nil {
			res.Body.Close()
			return base
		}
	}
	t.Fatalf("nginx does not listen on %s: %s", base, stderr.String())
	return ""
}
