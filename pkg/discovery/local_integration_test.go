package discovery

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestLocalTaskEvents kills a task's container on this node: the route drops
// that task as soon as the container dies, and takes the replacement task as
// soon as its container starts, both from container events (Swarm sends no
// task events). The delays are logged; the benchmark reports them.
func TestLocalTaskEvents(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "local")
	img := rig.BackendImage(t)
	name := rig.Name("local")
	id := rig.CreateService(t, backendSpec(name, img, map[string]string{
		"ingress.host": "local.test", "ingress.port": backendPort, "ingress.upstream": "tasks",
	}, 1, shared))

	h := startWatcher(t, Config{Docker: rig.Client, Networks: []string{shared.Name}})
	tasks := rig.WaitTasks(t, id, 1)
	victim := tasks[0]
	victimIP := swarmtest.TaskIP(victim, shared.ID)
	h.wait(t, 0, waitTimeout, "the first task's upstream", func(tbl *route.Table) bool {
		return hasUpstreams(routeOf(tbl, name, "default"), []string{victimIP})
	})

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	evs, errs := rig.Client.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", labelServiceID+"="+id),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
	)})
	from := h.count()
	if err := rig.Client.ContainerKill(ctx, victim.Status.ContainerStatus.ContainerID, "KILL"); err != nil {
		t.Fatalf("kill task container: %v", err)
	}
	var died, started time.Time
	var newTask string
	for died.IsZero() || started.IsZero() {
		select {
		case m := <-evs:
			at := time.Unix(0, m.TimeNano)
			switch {
			case m.Action == events.ActionDie && m.Actor.Attributes[labelTaskID] == victim.ID:
				died = at
			case m.Action == events.ActionStart && m.Actor.Attributes[labelTaskID] != victim.ID:
				started, newTask = at, m.Actor.Attributes[labelTaskID]
			}
		case err := <-errs:
			t.Fatalf("events: %v", err)
		}
	}

	gone := h.wait(t, from, waitTimeout, "the killed task's upstream removed", func(tbl *route.Table) bool {
		r := routeOf(tbl, name, "default")
		return r != nil && !slices.ContainsFunc(r.Upstreams, func(u netip.AddrPort) bool { return u.Addr().String() == victimIP })
	})
	replacement := ""
	for _, task := range rig.WaitTasks(t, id, 1) {
		if task.ID == newTask {
			replacement = swarmtest.TaskIP(task, shared.ID)
		}
	}
	if replacement == "" {
		t.Fatalf("replacement task %s not running with an address on %s", newTask, shared.Name)
	}
	back := h.wait(t, from, waitTimeout, "the replacement task's upstream", func(tbl *route.Table) bool {
		return hasUpstreams(routeOf(tbl, name, "default"), []string{replacement})
	})
	t.Logf("container die -> route without the task: %v; container start -> route with the new task: %v (issue target: 50ms)",
		gone.at.Sub(died).Round(time.Millisecond), back.at.Sub(started).Round(time.Millisecond))
}
