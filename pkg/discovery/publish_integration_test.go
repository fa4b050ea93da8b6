package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestWatcherPublishesOnlyChanges: a service change that does not change
// the table is read but not published; one that does is published with the
// next generation.
func TestWatcherPublishesOnlyChanges(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "changes")
	img := rig.BackendImage(t)
	name := rig.Name("same")
	id := rig.CreateService(t, backendSpec(name, img, map[string]string{"ingress.host": "same.test"}, 0, shared))
	h := startWatcher(t, Config{Docker: rig.Client, Networks: []string{shared.Name}})
	first := h.wait(t, 0, waitTimeout, "the route", func(tbl *route.Table) bool { return routeOf(tbl, name, "default") != nil })

	const unchanged = `"level":"debug","read":"services"` // "route table unchanged" after a service event
	seen := h.logs.count(unchanged)
	n := h.count()
	updateService(t, rig, id, func(s *swarm.ServiceSpec) { s.Labels["not.ingress"] = "x" })
	h.logs.wait(t, unchanged, seen+1, waitTimeout)
	if got := h.count(); got != n {
		last, _ := h.last()
		t.Fatalf("an irrelevant label change published %d table(s); last:%s", got-n, describeTable(last))
	}

	last, _ := h.last()
	updateService(t, rig, id, func(s *swarm.ServiceSpec) { s.Labels["ingress.path"] = "/changed" })
	p := h.wait(t, n, waitTimeout, "the new path", func(tbl *route.Table) bool {
		r := routeOf(tbl, name, "default")
		return r != nil && r.Path == "/changed"
	})
	if p.table.Generation != last.Generation+1 || !p.table.UpdatedAt.After(first.table.UpdatedAt) {
		t.Errorf("generation %d updated %v after generation %d updated %v: want the next generation, later",
			p.table.Generation, p.table.UpdatedAt, last.Generation, last.UpdatedAt)
	}
}

// withoutContainerEvents hides container events, as for tasks on another
// node (Swarm sends no task events; container events are only local).
type withoutContainerEvents struct{ DockerAPI }

func (w withoutContainerEvents) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	in, errs := w.DockerAPI.Events(ctx, opts)
	out := make(chan events.Message)
	go func() {
		for {
			select {
			case m := <-in:
				if m.Type == events.ContainerEventType {
					continue
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errs
}

// TestWatcherPollsTasks: with no container events (a task on another node),
// a new task of a tasks-mode route still appears, through the task poll.
func TestWatcherPollsTasks(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "remote")
	img := rig.BackendImage(t)
	name := rig.Name("remote")
	id := rig.CreateService(t, backendSpec(name, img, map[string]string{
		"ingress.host": "remote.test", "ingress.port": backendPort, "ingress.upstream": "tasks",
	}, 1, shared))
	h := startWatcher(t, Config{Docker: withoutContainerEvents{rig.Client}, Networks: []string{shared.Name}})
	one := taskIPs(rig.WaitTasks(t, id, 1), shared.ID)
	h.wait(t, 0, waitTimeout, "the first task", func(tbl *route.Table) bool {
		return hasUpstreams(routeOf(tbl, name, "default"), one)
	})

	from := h.count()
	updateService(t, rig, id, func(s *swarm.ServiceSpec) { n := uint64(2); s.Mode.Replicated.Replicas = &n })
	two := taskIPs(rig.WaitTasks(t, id, 2), shared.ID)
	running := time.Now()
	p := h.wait(t, from, waitTimeout, "the second task", func(tbl *route.Table) bool {
		return hasUpstreams(routeOf(tbl, name, "default"), two)
	})
	if h.logs.count("route table published", `"read":"tasks"`) == 0 {
		t.Errorf("the second task was not published by a task poll (no publish log line with read=tasks)")
	}
	t.Logf("second task seen running by the test -> published: %v (poll period %v; issue target: within 2s)",
		p.at.Sub(running).Round(time.Millisecond), taskPollPeriod)
}
