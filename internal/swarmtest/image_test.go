package swarmtest

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

// TestIngressImage checks what the Dockerfile promises: a non-root numeric
// user, the healthcheck, ports and volume; and that the image, run as a Swarm
// service the way examples/stack.yml runs it (uid 65532 with the socket's
// group, host-mode port), binds :80 without root and becomes healthy, which
// needs the Docker socket to be readable.
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

	var sock syscall.Stat_t
	if err := syscall.Stat("/var/run/docker.sock", &sock); err != nil {
		t.Fatalf("stat docker socket: %v", err)
	}
	net := rig.Network(t, "edge")
	port := FreePort(t)
	id := rig.CreateService(t, swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: img,
				User:  fmt.Sprintf("65532:%d", sock.Gid),
				Env:   []string{"INGRESS_SHUTDOWN_GRACE=1s", "INGRESS_LOG_LEVEL=debug"},
				Mounts: []mount.Mount{{
					Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true,
				}},
			},
			Networks: []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80,
			PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	})
	tasks := rig.WaitTasks(t, id, 1)

	// No route has this host: a 404 from the ingress proves it bound :80 as uid 65532.
	WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 404)

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
}
