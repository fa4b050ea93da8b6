package discovery

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// benchInput makes n services: mostly vip, some tasks-mode and dnsrr ones,
// some with three named routes, a few with a bad label or a host another
// service also claims, and n/250 static services.
func benchInput(n int) Input {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := Input{LabelPrefix: "ingress.", Networks: []Network{netFront}}
	for i := range n {
		ip := func(host byte) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), host}) }
		name := fmt.Sprintf("svc-%05d", i)
		s := Service{
			ID: "id-" + name, Name: name, Created: t0.Add(time.Duration(i) * time.Second), EndpointMode: "vip",
			Labels: map[string]string{
				"com.docker.stack.namespace": "bench",
				"ingress.host":               name + ".example.com",
				"ingress.port":               "8080",
			},
			Networks: []string{netApps.ID, netFront.ID},
			VIPs:     map[string]netip.Addr{netFront.ID: ip(1), netApps.ID: ip(2)},
		}
		switch i % 10 {
		case 6, 7:
			s.Labels["ingress.upstream"] = "tasks"
		case 8:
			s.Labels["ingress.headers.X-Frame-Options"] = "DENY"
			s.Labels["ingress.routes.api.path"] = "/api"
			s.Labels["ingress.routes.api.strip_prefix"] = "true"
			s.Labels["ingress.routes.admin.host"] = "admin." + name + ".example.com"
			s.Labels["ingress.routes.admin.allow"] = "10.0.0.0/8"
			s.Labels["ingress.routes.events.path"] = "/events"
			s.Labels["ingress.routes.events.stream"] = "true"
		case 9:
			s.EndpointMode, s.VIPs = "dnsrr", nil
		}
		if i%10 >= 6 && i%10 != 8 {
			for k := range 3 {
				s.Tasks = append(s.Tasks, Task{ID: fmt.Sprintf("%s.%d", name, k), Node: "node1",
					Addrs: map[string]netip.Addr{netFront.ID: ip(byte(10 + k))}})
			}
		}
		if i%50 == 3 {
			s.Labels["ingress.timeout"] = "soon"
		}
		if i%100 == 4 {
			s.Labels["ingress.host"] = fmt.Sprintf("svc-%05d.example.com", i-1)
		}
		in.Services = append(in.Services, s)
	}
	for i := range n / 250 {
		in.Static = append(in.Static, StaticService{
			Name:      fmt.Sprintf("static-%03d", i),
			Upstreams: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 8080)},
			Labels:    map[string]string{"ingress.host": fmt.Sprintf("static-%03d.example.com", i)},
		})
	}
	return in
}

// BenchmarkBuild5000 builds a table (Build, then route.New) from 5,000
// services. Target: under 50 ms per table.
func BenchmarkBuild5000(b *testing.B) {
	in := benchInput(5000)
	routes, errs := Build(in)
	b.Logf("%d services, %d static: %d routes, %d errors", len(in.Services), len(in.Static), len(routes), len(errs))
	b.ReportAllocs()
	for b.Loop() {
		routes, errs := Build(in)
		t := route.New(route.Snapshot{Routes: routes, Errors: errs, HostLabel: HostLabel(in.LabelPrefix)})
		if len(t.Routes) == 0 {
			b.Fatal("empty table")
		}
	}
}
