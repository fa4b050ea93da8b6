package swarmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// TestIngressImage checks what the Dockerfile promises: a non-root numeric
// user, the healthcheck, ports and volume; that the image, run as a Swarm
// service the way examples/serve-stack.yml runs it (uid 65532 with the socket's
// group, host-mode port), binds :80 without root and becomes healthy, which
// needs the Docker socket to be readable; and that it routes a labelled
// backend and streams its SSE events through, one by one.
func TestIngressImage(t *testing.T) {
	rig := New(t)
	img := rig.IngressImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	inspect, err := rig.Client.ImageInspect(ctx, img)
	if err != nil {
		t.Fatalf("inspect %s: %v", img, err)
	}
	cfg := inspect.Config
	if cfg.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532", cfg.User)
	}
	if cfg.Healthcheck == nil || !slices.Equal(cfg.Healthcheck.Test, []string{"CMD", "/ingress", "healthcheck"}) {
		t.Errorf("Healthcheck = %+v, want CMD /ingress healthcheck", cfg.Healthcheck)
	}
	for _, p := range []string{"80/tcp", "443/tcp", "8080/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed: %v", p, cfg.ExposedPorts)
		}
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("no VOLUME /data: %v", cfg.Volumes)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/ingress"}) {
		t.Errorf("Entrypoint = %v, want [/ingress]", cfg.Entrypoint)
	}

	net := rig.Network(t, "edge")
	// Answering 404 for an unknown host proves it bound :80 as uid 65532.
	ing := rig.Ingress(t, IngressOptions{Networks: []Network{net}, Env: []string{"INGRESS_LOG_LEVEL=debug"}})
	tasks := []swarm.Task{ing.Task}

	// HEALTHCHECK runs `ingress healthcheck` (admin /readyz), which needs a first
	// route table, which needs the Docker socket.
	containerID := tasks[0].Status.ContainerStatus.ContainerID
	deadline := time.Now().Add(90 * time.Second)
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		c, err := rig.Client.ContainerInspect(ctx, containerID)
		if err != nil {
			t.Fatalf("inspect container: %v", err)
		}
		if h := c.State.Health; h != nil && h.Status == "healthy" {
			break
		} else if time.Now().After(deadline) {
			var last string
			if h != nil && len(h.Log) > 0 {
				last = h.Log[len(h.Log)-1].Output
			}
			t.Fatalf("container not healthy within 90s: %+v; last check: %q", h, last)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			t.Fatalf("context: %v", ctx.Err())
		}
	}

	base := ing.HTTP
	host := rig.Name("backend") + ".test"
	backend := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Labels: map[string]string{
			"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
		}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
	})
	rig.WaitTasks(t, backend, 1)

	var echo backendEcho
	body := WaitHTTPHost(t, base+"/hello?x=1", host, 200)
	if err := json.Unmarshal(body, &echo); err != nil {
		t.Fatalf("not the backend's echo: %v: %s", err, body)
	}
	if echo.Path != "/hello" || echo.RawQuery != "x=1" || echo.Headers.Get("X-Forwarded-Host") != host {
		t.Errorf("backend saw path %q query %q X-Forwarded-Host %q; want /hello, x=1, %s",
			echo.Path, echo.RawQuery, echo.Headers.Get("X-Forwarded-Host"), host)
	}

	// An endless stream of tiny events: a buffering proxy would hold them for
	// minutes, so receiving three within the deadline means they flow.
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base+"/events?interval=200ms", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /events through the ingress: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /events: %s, Content-Type %q", resp.Status, ct)
	}
	var got []string
	scanner := bufio.NewScanner(resp.Body)
	for len(got) < 3 && scanner.Scan() {
		if data, ok := strings.CutPrefix(scanner.Text(), "data: "); ok {
			got = append(got, data)
		}
	}
	if !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("events through the ingress = %q (scan error %v), want 1, 2, 3", got, scanner.Err())
	}
}
