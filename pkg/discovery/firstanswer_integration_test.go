package discovery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// BenchmarkFirstAnswer is the "first answer": from ServiceCreate of a
// tasks-mode service (image present) returning to the first 200 from it
// through the ingress, run from its image as a Swarm service on this node
// (its own networks found from its own container, the Docker socket mounted,
// port 80 published in host mode on loopback).
//
//	go test -run '^$' -bench FirstAnswer -benchtime 10x ./pkg/discovery/
func BenchmarkFirstAnswer(b *testing.B) {
	rig := swarmtest.New(b)
	img := rig.IngressImage(b)
	backendImg := rig.BackendImage(b)
	shared := rig.Network(b, "edge")
	base := startIngress(b, rig, img, shared)

	// Warm up: the backend image is on the node and the ingress routes.
	warm := rig.Name("warm")
	rig.CreateService(b, backendSpec(warm, backendImg, tasksLabels(warm), 1, shared))
	swarmtest.WaitHTTPHost(b, base+"/", warm+".test", http.StatusOK)

	starts := containerStarts(b, rig)
	client := &http.Client{Timeout: 2 * time.Second}
	lat := make([]time.Duration, 0, b.N)
	ours := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		name := rig.Name("first")
		id := rig.CreateService(b, backendSpec(name, backendImg, tasksLabels(name), 1, shared))
		returned := time.Now()
		ok := firstOK(b, client, base+"/", name+".test")
		lat = append(lat, ok.Sub(returned))
		if started, found := starts.get(id); found {
			ours = append(ours, ok.Sub(started))
		}
	}
	b.StopTimer()
	report(b, lat, "create", "ServiceCreate returned -> first 200 through the ingress image (tasks mode)",
		"includes Swarm scheduling and container start; caddy-docker-proxy answers in ~30ms on this kind of machine, Traefik's Swarm provider polls every 15s; target p50 < 50ms")
	report(b, ours, "start", "task container start event -> first 200 through the ingress",
		"the ingress's share plus the backend's own start-up; polled every 5ms")
}

func tasksLabels(name string) map[string]string {
	return map[string]string{
		"ingress.host": name + ".test", "ingress.port": backendPort, "ingress.upstream": "tasks", "ingress.tls": "off",
	}
}

// startIngress runs the ingress image on network net as examples/serve-stack.yml
// does and returns its base URL on loopback once it answers.
func startIngress(b *testing.B, rig *swarmtest.Rig, img string, net swarmtest.Network) string {
	b.Helper()
	sockGroup, err := swarmtest.FileGroup(dockerSocket)
	if err != nil {
		b.Fatalf("stat docker socket: %v", err)
	}
	port := swarmtest.FreePort(b)
	rig.CreateService(b, swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: img,
				User:  fmt.Sprintf("65532:%d", sockGroup),
				Env:   []string{"INGRESS_SHUTDOWN_GRACE=1s"},
				Mounts: []mount.Mount{{
					Type: mount.TypeBind, Source: dockerSocket, Target: dockerSocket, ReadOnly: true,
				}},
			},
			Networks: []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80,
			PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	swarmtest.WaitHTTP(b, base+"/", http.StatusNotFound) // no route for that host: the ingress answers
	return base
}

// firstOK GETs url with Host host every 5ms until a 200 and returns when it
// came; it fails after waitTimeout.
func firstOK(b *testing.B, client *http.Client, url, host string) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Host = host
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now()
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			b.Fatalf("no 200 for %s within %v; last: %s", host, waitTimeout, last)
		case <-tick.C:
		}
	}
}
