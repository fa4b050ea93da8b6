package swarmtest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// waitTasksTimeout bounds WaitTasks.
const waitTasksTimeout = 90 * time.Second

// CreateService creates a service from spec (named r.Name("svc") when spec.Name
// is empty), adding the rig's labels to the service and its containers, and
// removes it at Cleanup, waiting until its containers are gone.
func (r *Rig) CreateService(t testing.TB, spec swarm.ServiceSpec) string {
	t.Helper()
	if spec.Name == "" {
		spec.Name = r.Name("svc")
	}
	spec.Labels = labels(spec.Labels)
	if spec.TaskTemplate.ContainerSpec == nil {
		t.Fatalf("swarmtest: service %s: TaskTemplate.ContainerSpec is required", spec.Name)
	}
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Labels = labels(cs.Labels)
	spec.TaskTemplate.ContainerSpec = &cs

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := r.Client.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("swarmtest: create service %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { r.removeService(t, resp.ID, spec.Name) })
	return resp.ID
}

func (r *Rig) removeService(t testing.TB, id, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := r.Client.ServiceRemove(ctx, id); err != nil && !errdefsNotFound(err) {
		t.Errorf("swarmtest: remove service %s: %v", name, err)
		return
	}
	f := filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+id))
	err := retry(ctx, func() error {
		left, err := r.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("%d containers still present", len(left))
		}
		return nil
	})
	if err != nil {
		t.Errorf("swarmtest: service %s removed but its containers remain: %v", name, err)
	}
}

// WaitTasks waits (bounded) until at least n tasks of the service are running
// and returns the running tasks. On timeout it fails with every task's state.
func (r *Rig) WaitTasks(t testing.TB, serviceID string, n int) []swarm.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTasksTimeout)
	defer cancel()
	f := filters.NewArgs(filters.Arg("service", serviceID))
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var all []swarm.Task
	for {
		tasks, err := r.Client.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		if err == nil {
			all = tasks
			var running []swarm.Task
			for _, task := range tasks {
				if task.DesiredState == swarm.TaskStateRunning && task.Status.State == swarm.TaskStateRunning {
					running = append(running, task)
				}
			}
			if len(running) >= n {
				return running
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("swarmtest: service %s: %d running tasks not reached within %v (last error %v); tasks: %s",
				serviceID, n, waitTasksTimeout, err, describe(all))
		case <-ticker.C:
		}
	}
}

func describe(tasks []swarm.Task) string {
	var b strings.Builder
	for _, task := range tasks {
		fmt.Fprintf(&b, "[%s desired=%s state=%s msg=%q err=%q] ", task.ID, task.DesiredState,
			task.Status.State, task.Status.Message, task.Status.Err)
	}
	return b.String()
}

// TaskIP returns the task's IPv4 address on the network with ID (or name)
// network, or "" when the task is not attached to it.
func TaskIP(task swarm.Task, network string) string {
	for _, att := range task.NetworksAttachments {
		if att.Network.ID != network && att.Network.Spec.Name != network {
			continue
		}
		for _, a := range att.Addresses {
			prefix, err := netip.ParsePrefix(a)
			if err == nil && prefix.Addr().Is4() {
				return prefix.Addr().String()
			}
		}
	}
	return ""
}

func errdefsNotFound(err error) bool {
	return errdefs.IsNotFound(err)
}
