//go:build linux

package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// Network creates an attachable overlay network named c.Name(base) through a
// manager and waits for its subnet. It lives as long as the cluster.
func (c *Cluster) Network(t testing.TB, base string) swarmtest.Network {
	t.Helper()
	name := c.Name(base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := c.Manager().Client
	created, err := api.NetworkCreate(ctx, name, network.CreateOptions{
		Driver:     "overlay",
		Attachable: true,
		Labels:     map[string]string{swarmtest.LabelTest: "1"},
	})
	if err != nil {
		t.Fatalf("clustertest: create network %s: %v", name, err)
	}
	n := swarmtest.Network{ID: created.ID, Name: name}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		inspect, ierr := api.NetworkInspect(ctx, created.ID, network.InspectOptions{Scope: "swarm"})
		err = ierr
		if err == nil {
			for _, cfg := range inspect.IPAM.Config {
				n.Subnet = cfg.Subnet
			}
		}
		if n.Subnet != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("clustertest: network %s: no subnet allocated (last error %v)", name, err)
		case <-ticker.C:
		}
	}
	return n
}

// CreateService creates a service from spec through a manager (named
// c.Name("svc") when spec.Name is empty, labelled swarm-ingress.test=1) and
// removes it when the test ends, so that the ports it published are free again
// for the next test on the same cluster.
func (c *Cluster) CreateService(t testing.TB, spec swarm.ServiceSpec) string {
	t.Helper()
	if spec.Name == "" {
		spec.Name = c.Name("svc")
	}
	labels := map[string]string{swarmtest.LabelTest: "1"}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	spec.Labels = labels
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Manager().Client.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("clustertest: create service %s: %v", spec.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Manager().Client.ServiceRemove(ctx, resp.ID); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("clustertest: remove service %s: %v", spec.Name, err)
		}
	})
	return resp.ID
}

// WaitTasks waits (at most 90 s) until at least n tasks of the service are
// running, anywhere in the cluster, and returns the running tasks.
func (c *Cluster) WaitTasks(t testing.TB, serviceID string, n int) []swarm.Task {
	t.Helper()
	return (&swarmtest.Rig{Client: c.Manager().Client}).WaitTasks(t, serviceID, n)
}

// TasksByNode returns the tasks keyed by the node that runs them; it fails the
// test when a task runs on a node that is not part of the cluster.
func (c *Cluster) TasksByNode(t testing.TB, tasks []swarm.Task) map[*Node][]swarm.Task {
	t.Helper()
	out := map[*Node][]swarm.Task{}
	for _, task := range tasks {
		n := c.Node(task.NodeID)
		if n == nil {
			t.Fatalf("clustertest: task %s runs on unknown node %s", task.ID, task.NodeID)
		}
		out[n] = append(out[n], task)
	}
	return out
}

// waitNodeTimeout bounds WaitNodeState: Swarm marks a silent node down after
// several missed heartbeats (about 15-20 s with the default 5 s period).
const waitNodeTimeout = 90 * time.Second

// WaitNodeState waits (at most 90 s) until a manager whose link is up reports
// node n in state (swarm.NodeStateDown after Cut, swarm.NodeStateReady after
// Restore), and returns how long that took.
func (c *Cluster) WaitNodeState(t testing.TB, n *Node, state swarm.NodeState) time.Duration {
	t.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), waitNodeTimeout)
	defer cancel()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var last string
	for {
		sn, _, err := c.Manager().Client.NodeInspectWithRaw(ctx, n.ID)
		if err == nil && sn.Status.State == state {
			return time.Since(began)
		}
		last = fmt.Sprintf("state %s (error %v)", sn.Status.State, err)
		select {
		case <-ctx.Done():
			t.Fatalf("clustertest: node %s not %s within %v; last: %s", n.Name, state, waitNodeTimeout, last)
		case <-ticker.C:
		}
	}
}
