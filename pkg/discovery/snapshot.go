package discovery

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Docker's raw service and task lists become the plain Service values of an
// Input here. The lists are fetched separately (services change on service
// events, tasks also on container events and polls) and joined at build time.

// listServices returns every Swarm service.
func listServices(ctx context.Context, api DockerAPI) ([]swarm.Service, error) {
	svcs, err := api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return svcs, nil
}

// listTasks returns the tasks whose desired state is running, whatever their
// current state: convertServices decides which ones count as running.
func listTasks(ctx context.Context, api DockerAPI) ([]swarm.Task, error) {
	tasks, err := api.TaskList(ctx, swarm.TaskListOptions{
		Filters: filters.NewArgs(filters.Arg("desired-state", string(swarm.TaskStateRunning))),
	})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return tasks, nil
}

// convertServices joins services with their running tasks. A task runs when
// Swarm wants it running and either the manager reports it running or its
// container on this node has started (the manager lags the container event);
// a task whose container died on this node never counts.
func convertServices(svcs []swarm.Service, tasks []swarm.Task, marks map[string]taskMark) []Service {
	byService := make(map[string][]Task, len(svcs))
	for _, t := range tasks {
		if !taskRunning(t, marks[t.ID]) {
			continue
		}
		byService[t.ServiceID] = append(byService[t.ServiceID], Task{
			ID:    t.ID,
			Node:  t.NodeID,
			Addrs: attachmentAddrs(t.NetworksAttachments),
		})
	}
	out := make([]Service, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, convertService(s, byService[s.ID]))
	}
	return out
}

func taskRunning(t swarm.Task, mark taskMark) bool {
	if t.DesiredState != swarm.TaskStateRunning || mark == markDied {
		return false
	}
	return t.Status.State == swarm.TaskStateRunning || mark == markStarted
}

func convertService(s swarm.Service, tasks []Task) Service {
	out := Service{
		ID:           s.ID,
		Name:         s.Spec.Name,
		Created:      s.CreatedAt,
		Labels:       s.Spec.Labels,
		EndpointMode: endpointMode(s),
		VIPs:         map[string]netip.Addr{},
		Tasks:        tasks,
	}
	seen := map[string]bool{}
	addNet := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out.Networks = append(out.Networks, id)
		}
	}
	nets := s.Spec.TaskTemplate.Networks
	if len(nets) == 0 {
		nets = s.Spec.Networks //nolint:staticcheck // older services may still use it
	}
	for _, n := range nets {
		addNet(n.Target)
	}
	for _, v := range s.Endpoint.VirtualIPs {
		if a, ok := ipv4(v.Addr); ok {
			out.VIPs[v.NetworkID] = a
			addNet(v.NetworkID)
		}
	}
	return out
}

// endpointMode is "vip" or "dnsrr", from the spec or else from the endpoint.
func endpointMode(s swarm.Service) string {
	if s.Spec.EndpointSpec != nil && s.Spec.EndpointSpec.Mode != "" {
		return string(s.Spec.EndpointSpec.Mode)
	}
	if s.Endpoint.Spec.Mode != "" {
		return string(s.Endpoint.Spec.Mode)
	}
	return string(swarm.ResolutionModeVIP)
}

func attachmentAddrs(atts []swarm.NetworkAttachment) map[string]netip.Addr {
	addrs := make(map[string]netip.Addr, len(atts))
	for _, a := range atts {
		for _, s := range a.Addresses {
			if ip, ok := ipv4(s); ok {
				addrs[a.Network.ID] = ip
				break
			}
		}
	}
	return addrs
}

// ipv4 parses Docker's "10.0.1.5/24" (or a bare address) and keeps it only
// if it is IPv4.
func ipv4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = p.Addr()
	}
	a = a.Unmap()
	return a, a.Is4()
}
