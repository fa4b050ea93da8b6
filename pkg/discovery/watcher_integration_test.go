package discovery

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestWatcherFollowsSwarm runs a Watcher against the real Swarm, the test
// process standing in for the ingress (Config.Networks names the shared
// network), and changes services under it.
func TestWatcherFollowsSwarm(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "shared")
	other := rig.Network(t, "other")
	img := rig.BackendImage(t)

	vipName, tasksName, dnsrrName := rig.Name("vip"), rig.Name("tasks"), rig.Name("dnsrr")
	badName, offName := rig.Name("bad"), rig.Name("elsewhere")
	vipID := rig.CreateService(t, backendSpec(vipName, img, map[string]string{
		"ingress.host": "vip.test", "ingress.path": "/api", "ingress.port": backendPort,
	}, 1, shared))
	tasksID := rig.CreateService(t, backendSpec(tasksName, img, map[string]string{
		"ingress.host": "tasks.test", "ingress.port": backendPort, "ingress.upstream": "tasks",
	}, 2, shared))
	dnsrr := backendSpec(dnsrrName, img, map[string]string{"ingress.host": "dnsrr.test", "ingress.port": backendPort}, 1, shared)
	dnsrr.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	dnsrrID := rig.CreateService(t, dnsrr)
	rig.CreateService(t, backendSpec(badName, img, map[string]string{"ingress.host": "bad.test", "ingress.port": "eighty"}, 0, shared))
	offID := rig.CreateService(t, backendSpec(offName, img, map[string]string{"ingress.host": "elsewhere.test", "ingress.port": backendPort}, 0, other))

	h := startWatcher(t, Config{Docker: rig.Client, Networks: []string{shared.Name}})

	vip := vipOn(t, rig, vipID, shared.ID)
	tasksIPs := taskIPs(rig.WaitTasks(t, tasksID, 2), shared.ID)
	dnsrrIPs := taskIPs(rig.WaitTasks(t, dnsrrID, 1), shared.ID)

	t.Run("initial", func(t *testing.T) {
		p := h.wait(t, 0, waitTimeout, "all routes with their upstreams", func(tbl *route.Table) bool {
			return hasUpstreams(routeOf(tbl, vipName, "default"), []string{vip}) &&
				hasUpstreams(routeOf(tbl, tasksName, "default"), tasksIPs) &&
				hasUpstreams(routeOf(tbl, dnsrrName, "default"), dnsrrIPs) &&
				errorOf(tbl, badName) != nil && errorOf(tbl, offName) != nil
		})
		tbl := p.table
		r := routeOf(tbl, vipName, "default")
		if !slices.Equal(r.Hosts, []string{"vip.test"}) || r.Path != "/api" || r.Port != 8080 ||
			r.Mode != route.ModeVIP || r.Network != shared.Name {
			t.Errorf("vip route = %+v", r)
		}
		if m := tbl.Match("vip.test", "/api/users"); m == nil || m.Service != vipName {
			t.Errorf("Match(vip.test, /api/users) = %v, want %s", m, vipName)
		}
		if m := tbl.Match("vip.test", "/other"); m != nil {
			t.Errorf("Match(vip.test, /other) = %s, want none", m.Service)
		}
		if r := routeOf(tbl, tasksName, "default"); r.Mode != route.ModeTasks {
			t.Errorf("tasks route mode = %s", r.Mode)
		}
		if r := routeOf(tbl, dnsrrName, "default"); r.Mode != route.ModeTasks {
			t.Errorf("dnsrr route mode = %s, want tasks", r.Mode)
		}
		if e := errorOf(tbl, badName); !strings.Contains(e.Label, "port") {
			t.Errorf("bad service error %+v does not name the port label", e)
		}
		if e := errorOf(tbl, offName); !strings.Contains(e.Error, shared.Name) {
			t.Errorf("unshared network error %+v does not say which network to attach", e)
		}
		if routeOf(tbl, badName, "default") != nil || routeOf(tbl, offName, "default") != nil {
			t.Errorf("bad or unreachable service has a route:%s", describeTable(tbl))
		}
		if tbl.Generation == 0 || tbl.UpdatedAt.IsZero() {
			t.Errorf("generation %d, updated %v: want both set", tbl.Generation, tbl.UpdatedAt)
		}
		if h.w.Table() == nil || h.w.Table().Generation < tbl.Generation {
			t.Errorf("Table() = %v, want generation >= %d", h.w.Table(), tbl.Generation)
		}
	})

	t.Run("label update", func(t *testing.T) {
		from := h.count()
		updateService(t, rig, vipID, func(s *swarm.ServiceSpec) {
			s.Labels["ingress.host"] = "vip2.test"
			s.Labels["ingress.path"] = "/v2"
		})
		h.wait(t, from, waitTimeout, "new host and path", func(tbl *route.Table) bool {
			r := routeOf(tbl, vipName, "default")
			return r != nil && slices.Equal(r.Hosts, []string{"vip2.test"}) && r.Path == "/v2" &&
				hasUpstreams(r, []string{vip})
		})
	})

	t.Run("scale tasks", func(t *testing.T) {
		from := h.count()
		updateService(t, rig, tasksID, func(s *swarm.ServiceSpec) { n := uint64(3); s.Mode.Replicated.Replicas = &n })
		ips := taskIPs(rig.WaitTasks(t, tasksID, 3), shared.ID)
		h.wait(t, from, waitTimeout, "three task upstreams", func(tbl *route.Table) bool {
			return hasUpstreams(routeOf(tbl, tasksName, "default"), ips)
		})
		from = h.count()
		updateService(t, rig, tasksID, func(s *swarm.ServiceSpec) { n := uint64(1); s.Mode.Replicated.Replicas = &n })
		h.wait(t, from, waitTimeout, "one task upstream", func(tbl *route.Table) bool {
			r := routeOf(tbl, tasksName, "default")
			return r != nil && len(r.Upstreams) == 1 && slices.Contains(ips, r.Upstreams[0].Addr().String())
		})
	})

	t.Run("network added", func(t *testing.T) {
		from := h.count()
		updateService(t, rig, offID, func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Networks = append(s.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: shared.ID})
		})
		p := h.wait(t, from, waitTimeout, "route of the service once it shares the network", func(tbl *route.Table) bool {
			r := routeOf(tbl, offName, "default")
			return r != nil && len(r.Upstreams) == 1 && errorOf(tbl, offName) == nil
		})
		if got, want := routeOf(p.table, offName, "default").Upstreams[0].Addr().String(), vipOn(t, rig, offID, shared.ID); got != want {
			t.Errorf("upstream %s, want the VIP on %s: %s", got, shared.Name, want)
		}
	})

	t.Run("removal", func(t *testing.T) {
		from := h.count()
		if err := rig.Client.ServiceRemove(t.Context(), dnsrrID); err != nil {
			t.Fatalf("remove: %v", err)
		}
		h.wait(t, from, waitTimeout, "dnsrr route gone, others kept", func(tbl *route.Table) bool {
			return routeOf(tbl, dnsrrName, "default") == nil && routeOf(tbl, vipName, "default") != nil
		})
	})
}

// taskIPs returns the tasks' IPv4 addresses on network netID.
func taskIPs(tasks []swarm.Task, netID string) []string {
	var out []string
	for _, task := range tasks {
		if ip := swarmtest.TaskIP(task, netID); ip != "" {
			out = append(out, ip)
		}
	}
	return out
}

// hasUpstreams reports whether r's upstreams are exactly ips, each on r.Port.
func hasUpstreams(r *route.Route, ips []string) bool {
	if r == nil || len(r.Upstreams) != len(ips) || len(ips) == 0 {
		return false
	}
	for _, u := range r.Upstreams {
		if u.Port() != r.Port || !u.Addr().Is4() || !slices.Contains(ips, u.Addr().String()) {
			return false
		}
	}
	return true
}
