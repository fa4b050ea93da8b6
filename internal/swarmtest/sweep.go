package swarmtest

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// sweep removes resources labelled by the rig whose owning process is dead:
// services first (so Swarm stops their tasks), then containers, networks,
// configs and secrets. Resources of live processes are never touched: several
// test binaries run at once. It is best effort and returns what it did.
func sweep(ctx context.Context, c *client.Client) []string {
	f := filters.NewArgs(filters.Arg("label", LabelTest+"=1"))
	var report []string
	note := func(kind, name string, err error) {
		if err != nil && !errdefsNotFound(err) {
			report = append(report, fmt.Sprintf("remove %s %s: %v", kind, name, err))
			return
		}
		report = append(report, fmt.Sprintf("removed %s %s", kind, name))
	}
	fail := func(kind string, err error) {
		report = append(report, fmt.Sprintf("list %s: %v", kind, err))
	}

	if services, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err != nil {
		fail("services", err)
	} else {
		for _, s := range services {
			if dead(s.Spec.Labels) {
				note("service", s.Spec.Name, c.ServiceRemove(ctx, s.ID))
			}
		}
	}
	if containers, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: f}); err != nil {
		fail("containers", err)
	} else {
		for _, ct := range containers {
			if dead(ct.Labels) {
				note("container", ct.ID[:12], c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true}))
			}
		}
	}
	if networks, err := c.NetworkList(ctx, network.ListOptions{Filters: f}); err != nil {
		fail("networks", err)
	} else {
		for _, n := range networks {
			if dead(n.Labels) {
				note("network", n.Name, c.NetworkRemove(ctx, n.ID))
			}
		}
	}
	if configs, err := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: f}); err != nil {
		fail("configs", err)
	} else {
		for _, cf := range configs {
			if dead(cf.Spec.Labels) {
				note("config", cf.Spec.Name, c.ConfigRemove(ctx, cf.ID))
			}
		}
	}
	if secrets, err := c.SecretList(ctx, swarm.SecretListOptions{Filters: f}); err != nil {
		fail("secrets", err)
	} else {
		for _, s := range secrets {
			if dead(s.Spec.Labels) {
				note("secret", s.Spec.Name, c.SecretRemove(ctx, s.ID))
			}
		}
	}
	return report
}

// dead reports whether the labels name an owning pid that is no longer a live
// process. Resources without a readable pid are left alone.
func dead(labels map[string]string) bool {
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return false
	}
	return !alive(pid)
}
