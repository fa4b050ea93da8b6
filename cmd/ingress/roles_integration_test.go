package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
)

// newProc is an ingress process of role on free loopback ports.
func newProc(t *testing.T, role string) *ingressProc {
	t.Helper()
	return &ingressProc{
		role:   role,
		http:   fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		https:  fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		admin:  fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		logs:   new(syncbuf.Buffer),
		exited: make(chan error, 1),
	}
}

// getHost fetches http://addr/ with the Host header host.
func getHost(t *testing.T, addr, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s via %s: %v", host, addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type routesView struct {
	Routes []struct {
		Service   string   `json:"service"`
		Hosts     []string `json:"hosts"`
		Upstreams []string `json:"upstreams"`
	} `json:"routes"`
}

type readyView struct {
	Ready       bool   `json:"ready"`
	From        string `json:"from"`
	Controllers []struct {
		Connected bool `json:"connected"`
	} `json:"controllers"`
}

// TestControllerAndEdges runs `ingress controller` against the real Swarm
// and two `ingress edge` processes with no Docker endpoint: both edges serve
// the controller's table (a labelled service and a static route), keep
// serving when the controller is killed, and an edge restarted while the
// controller is down serves from its saved state.
func TestControllerAndEdges(t *testing.T) {
	rig := swarmtest.New(t)
	network := rig.Network(t, "roles")
	labelHost := rig.Name("label") + ".test"
	svc := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: rig.Name("roles"), Labels: map[string]string{
			"ingress.host": labelHost, "ingress.port": "8080", "ingress.upstream": "tasks", "ingress.tls": "off"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: network.ID}},
		},
	})
	taskIP := swarmtest.TaskIP(rig.WaitTasks(t, svc, 1)[0], network.Name)

	backend, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "static backend")
	}))
	t.Cleanup(func() { backend.Close() })
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yml")
	os.WriteFile(routes, []byte(fmt.Sprintf(`services:
  - name: legacy
    upstreams: ["%s"]
    labels:
      ingress.host: static.test
      ingress.tls: "off"
`, backend.Addr())), 0o644)
	secret := secretFile(t)

	controlAddr := fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t))
	ctl := newProc(t, "controller")
	ctl.start(t, nil,
		"INGRESS_CONTROL_ADDR="+controlAddr, "INGRESS_CONTROL_SECRET_FILE="+secret,
		"INGRESS_NETWORK="+network.Name, "INGRESS_ROUTES_FILE="+routes,
		"INGRESS_DATA_DIR="+filepath.Join(dir, "controller"))

	edgeEnv := func(name string) []string {
		return []string{
			"INGRESS_CONTROLLER=" + controlAddr, "INGRESS_CONTROL_SECRET_FILE=" + secret,
			"INGRESS_DATA_DIR=" + filepath.Join(dir, name),
			// An edge never talks to Docker: any attempt would fail here.
			"DOCKER_HOST=unix:///nonexistent/docker.sock",
		}
	}
	edges := []*ingressProc{newProc(t, "edge"), newProc(t, "edge")}
	for i, e := range edges {
		e.start(t, nil, edgeEnv(fmt.Sprintf("edge%d", i))...)
	}

	for i, e := range edges {
		var v routesView
		if err := json.Unmarshal(swarmtest.WaitHTTP(t, "http://"+e.admin+"/api/routes", 200), &v); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range v.Routes {
			if slices.Contains(r.Hosts, labelHost) {
				found = slices.Equal(r.Upstreams, []string{taskIP + ":8080"})
			}
		}
		if !found {
			t.Errorf("edge %d: no route of %s to %s:8080 in %+v", i, labelHost, taskIP, v)
		}
		if code, body := getHost(t, e.http, "static.test"); code != 200 || body != "static backend" {
			t.Errorf("edge %d: static.test answered %d %q", i, code, body)
		}
		var r readyView
		if err := json.Unmarshal(swarmtest.WaitHTTP(t, "http://"+e.admin+"/readyz", 200), &r); err != nil {
			t.Fatal(err)
		}
		if !r.Ready || len(r.Controllers) != 1 || !r.Controllers[0].Connected || !strings.Contains(r.From, controlAddr) {
			t.Errorf("edge %d: /readyz %+v: want ready, following %s", i, r, controlAddr)
		}
	}

	// The controller dies: the edges keep serving.
	ctl.cmd.Process.Kill()
	<-ctl.exited
	for i, e := range edges {
		if code, body := getHost(t, e.http, "static.test"); code != 200 || body != "static backend" {
			t.Errorf("edge %d without a controller: static.test answered %d %q", i, code, body)
		}
	}

	// An edge restarted while the controller is down serves its saved state.
	edges[0].stop(t)
	again := newProc(t, "edge")
	again.start(t, nil, edgeEnv("edge0")...) // returns once /readyz answers 200
	if code, body := getHost(t, again.http, "static.test"); code != 200 || body != "static backend" {
		t.Errorf("restarted edge: static.test answered %d %q", code, body)
	}
	// Log lines are written in batches (every 100ms): wait for the line
	// rather than read the log once.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(again.logs.String(), "serving the saved edge state") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted edge does not say it serves its saved state:\n%s", again.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
