package discovery

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestTaskRoutedOnceHealthy: a tasks-mode service whose backend warms up
// for 3 s behind a HEALTHCHECK. Its task's address appears in no table
// published before Docker's "health_status: healthy" event for its
// container, and appears after it. Before, the container's start event made
// it routable while it still answered 503.
func TestTaskRoutedOnceHealthy(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "health")
	img := rig.BackendImage(t)
	name := rig.Name("health")
	spec := backendSpec(name, img, map[string]string{
		"ingress.host": "health.test", "ingress.port": backendPort, "ingress.upstream": "tasks",
	}, 1, shared)
	spec.TaskTemplate.ContainerSpec.Env = append(spec.TaskTemplate.ContainerSpec.Env, "WARMUP=3s")
	spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{
		Test: []string{"CMD", "/app", "healthcheck"}, Interval: 300 * time.Millisecond,
		Timeout: 2 * time.Second, Retries: 3,
		// Failures while warming up do not count: without a start period
		// Swarm would find it unhealthy and replace it, again and again.
		StartPeriod: time.Minute,
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := startWatcher(t, Config{Docker: rig.Client, Networks: []string{shared.Name}})
	evs, errs := rig.Client.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionHealthStatus)),
	)})
	id := rig.CreateService(t, spec)

	var healthy time.Time
	var task string
	for healthy.IsZero() {
		select {
		case m := <-evs:
			if m.Action == events.ActionHealthStatusHealthy && m.Actor.Attributes[labelServiceID] == id {
				healthy, task = time.Unix(0, m.TimeNano), m.Actor.Attributes[labelTaskID]
			}
		case err := <-errs:
			t.Fatalf("events: %v", err)
		case <-ctx.Done():
			t.Fatal("the task never turned healthy")
		}
	}
	var ip string
	for _, tk := range rig.WaitTasks(t, id, 1) {
		if tk.ID == task {
			ip = swarmtest.TaskIP(tk, shared.ID)
		}
	}
	if ip == "" {
		t.Fatalf("healthy task %s has no address on %s", task, shared.Name)
	}
	routed := func(tbl *route.Table) bool {
		r := routeOf(tbl, name, "default")
		return r != nil && slices.ContainsFunc(r.Upstreams, func(u netip.AddrPort) bool { return u.Addr().String() == ip })
	}
	first := h.wait(t, 0, waitTimeout, "the healthy task routed", routed)
	if first.at.Before(healthy) {
		t.Fatalf("task %s routed at %s, before its container turned healthy at %s", task,
			first.at.Format(time.StampMicro), healthy.Format(time.StampMicro))
	}
	t.Logf("healthy event -> task routed: %v", first.at.Sub(healthy).Round(time.Millisecond))
}
