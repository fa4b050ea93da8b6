package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildIngress compiles this command once per test binary.
func buildIngress(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ingress-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "ingress")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// ingressProc is the real ingress binary running with loopback listeners.
type ingressProc struct {
	role               string // the command: "serve" when empty
	http, https, admin string
	cmd                *exec.Cmd
	logs               *syncbuf.Buffer
	exited             chan error
}

// startIngress runs `ingress serve` (behind the command prefix, if any) with
// free loopback listeners and the given extra environment, and kills it at
// Cleanup, logging its output if the test failed.
func startIngress(t *testing.T, prefix []string, env ...string) *ingressProc {
	t.Helper()
	p := &ingressProc{
		http:   fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		https:  fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		admin:  fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		logs:   new(syncbuf.Buffer),
		exited: make(chan error, 1),
	}
	return p.start(t, prefix, env...)
}

func (p *ingressProc) start(t *testing.T, prefix []string, env ...string) *ingressProc {
	t.Helper()
	role := p.role
	if role == "" {
		role = "serve"
	}
	args := append(append([]string{}, prefix...), buildIngress(t), role)
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(),
		"INGRESS_HTTP_ADDR="+p.http, "INGRESS_HTTPS_ADDR="+p.https, "INGRESS_ADMIN_ADDR="+p.admin,
		"INGRESS_SHUTDOWN_GRACE=2s", "INGRESS_LOG_LEVEL=debug")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := p.exited
	go func(cmd *exec.Cmd) { exited <- cmd.Wait() }(p.cmd)
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("ingress log:\n%s", p.logs.String())
		}
	})
	swarmtest.WaitHTTP(t, "http://"+p.admin+"/readyz", 200)
	return p
}

// stop sends SIGTERM and expects a clean exit within the grace.
func (p *ingressProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("ingress exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ingress did not exit within 15s of SIGTERM")
	}
}

// ipv6FirstHosts returns a command prefix that runs a program in a private
// mount namespace whose /etc/hosts lists "::1 localhost" before 127.0.0.1:
// the order that sends Nginx's `localhost` upstreams to ::1.
func ipv6FirstHosts(t *testing.T) []string {
	t.Helper()
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("::1 localhost ip6-localhost\n127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"unshare", "--mount", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts}
}

// TestLocalhostUpstreamIsIPv4 proves the bug this product exists for cannot
// recur: a static route to localhost:PORT, a backend listening on 127.0.0.1
// only, and /etc/hosts listing ::1 first; the request must arrive over IPv4.
func TestLocalhostUpstreamIsIPv4(t *testing.T) {
	rig := swarmtest.New(t)
	network := rig.Network(t, "lh")
	prefix := ipv6FirstHosts(t)

	// The trap is armed: in that namespace the system resolver puts ::1 first.
	out, err := exec.Command(prefix[0], append(prefix[1:], "getent", "ahosts", "localhost")...).CombinedOutput()
	if err != nil {
		t.Fatalf("getent in the namespace: %v\n%s", err, out)
	}
	if first := strings.Fields(string(out)); len(first) == 0 || first[0] != "::1" {
		t.Fatalf("test setup: expected ::1 first for localhost, got:\n%s", out)
	}

	backend, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	remote := make(chan string, 8)
	go http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remote <- r.RemoteAddr
		fmt.Fprint(w, "legacy backend")
	}))
	t.Cleanup(func() { backend.Close() })
	port := backend.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: legacy
    upstreams: ["localhost:%d"]
    labels:
      ingress.host: legacy.test
      ingress.tls: "off"
`, port)), 0o644)

	ing := startIngress(t, prefix,
		"INGRESS_DATA_DIR="+filepath.Join(dir, "data"),
		"INGRESS_ROUTES_FILE="+routes,
		"INGRESS_NETWORK="+network.Name,
	)
	httpAddr, adminAddr := ing.http, ing.admin
	swarmtest.WaitHTTP(t, "http://"+adminAddr+"/readyz", 200)
	var view struct {
		Routes []struct {
			Service      string   `json:"service"`
			UpstreamMode string   `json:"upstream_mode"`
			Upstreams    []string `json:"upstreams"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(swarmtest.WaitHTTP(t, "http://"+adminAddr+"/api/routes", 200), &view); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("127.0.0.1:%d", port)
	found := false
	for _, r := range view.Routes {
		if r.Service == "legacy" {
			found = true
			if r.UpstreamMode != "static" || len(r.Upstreams) != 1 || r.Upstreams[0] != want {
				t.Fatalf("legacy route = %+v, want one static upstream %s", r, want)
			}
		}
	}
	if !found {
		t.Fatalf("no legacy route in /api/routes: %+v", view)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/", nil)
	req.Host = "legacy.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "legacy backend" {
		t.Fatalf("through the ingress: %s %q", resp.Status, body)
	}
	if addr := <-remote; !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("backend saw the request from %s, want 127.0.0.1", addr)
	}

	// SIGTERM: a clean exit within the grace.
	ing.stop(t)
}

// TestCheckCommand runs `ingress check` against real Swarm services: it lists
// the good route, the blocked one (a bad auth.basic), names the bad labels,
// and exits 1.
func TestCheckCommand(t *testing.T) {
	rig := swarmtest.New(t)
	network := rig.Network(t, "chk")
	image := rig.BackendImage(t)
	service := func(labels map[string]string) string {
		name := rig.Name("chk")
		rig.CreateService(t, swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: name, Labels: labels},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: image},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: network.ID}},
			},
		})
		return name
	}
	good := service(map[string]string{"ingress.host": "good.test", "ingress.port": "8080"})
	bad := service(map[string]string{"ingress.host": "bad.test", "ingress.port": "eighty"})
	blocked := service(map[string]string{"ingress.host": "blocked.test", "ingress.port": "8080", "ingress.auth.basic": "alice:nohash"})

	getenv := func(k string) string {
		if k == "INGRESS_NETWORK" {
			return network.Name
		}
		return os.Getenv(k)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, []string{"check"}, getenv, &stdout, &stderr)
	out := stdout.String()
	if err == nil {
		t.Fatalf("check passed although %s has a bad label:\n%s", bad, out)
	}
	for _, want := range []string{good + "/default", "good.test", ":8080", "ERROR service " + bad, "ingress.port",
		"BLOCKED " + blocked + "/default (hosts blocked.test, path / answer 503): ingress.auth.basic:", "ERROR service " + blocked} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bad.test") && strings.Contains(out, bad+"/default") {
		t.Errorf("the bad service must not be routed:\n%s", out)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}
