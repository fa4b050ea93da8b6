package discovery

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestBuildSplit: two services on one host and path with weights build two
// routes that route.New puts in one split; sticky and slow_start on a route
// reached by its virtual IP keep it out with an error naming the label.
func TestBuildSplit(t *testing.T) {
	svc := func(name, ip string, labels ...string) Service {
		return Service{
			ID: "id-" + name, Name: name, Created: time.Unix(1, 0), EndpointMode: "vip",
			Labels:   labelMap(labels...),
			Networks: []string{netFront.ID},
			VIPs:     map[string]netip.Addr{netFront.ID: addr(ip)},
			Tasks:    []Task{task("t-"+name, "id-front="+ip)},
		}
	}
	routes, errs := Build(Input{LabelPrefix: "ingress.", Networks: []Network{netFront}, Services: []Service{
		svc("blue", "10.0.1.5", "ingress.host=shop.example.com", "ingress.weight=90", "ingress.upstream=tasks", "ingress.sticky=true"),
		svc("green", "10.0.1.6", "ingress.host=shop.example.com", "ingress.weight=10", "ingress.upstream=tasks", "ingress.slow_start=20s"),
		svc("vipsticky", "10.0.1.7", "ingress.host=a.example.com", "ingress.sticky=true"),
		svc("vipslow", "10.0.1.8", "ingress.host=b.example.com", "ingress.slow_start=10s"),
		svc("vipoff", "10.0.1.9", "ingress.host=c.example.com", "ingress.sticky=false", "ingress.slow_start=0s", "ingress.weight=5"),
	}})
	var got []string
	for _, r := range routes {
		got = append(got, summary(r))
	}
	if len(routes) != 3 || routes[0].Service != "blue" || routes[1].Service != "green" || routes[2].Service != "vipoff" {
		t.Fatalf("routes = %q", got)
	}
	if r := routes[0]; !r.Weighted || r.Weight != 90 || r.Sticky != "ingress_sticky" {
		t.Fatalf("blue: weight %d (%t) sticky %q", r.Weight, r.Weighted, r.Sticky)
	}
	if r := routes[1]; r.Weight != 10 || r.SlowStart != 20*time.Second {
		t.Fatalf("green: weight %d slow_start %s", r.Weight, r.SlowStart)
	}
	if len(errs) != 2 || errs[0].Label != "ingress.slow_start" || errs[1].Label != "ingress.sticky" ||
		!strings.Contains(errs[0].Error, "set upstream to tasks") {
		t.Fatalf("errors = %+v", errs)
	}
	tbl := route.New(route.Snapshot{Routes: routes, Errors: errs, HostLabel: HostLabel("ingress.")})
	if _, s := tbl.Lookup("shop.example.com", "/"); s == nil || len(s.Routes) != 2 || s.Weights[0] != 90 || s.Weights[1] != 10 {
		t.Fatalf("shop.example.com split = %+v", s)
	}
	if len(tbl.Errors) != 2 {
		t.Fatalf("a split must not be reported as a conflict: %+v", tbl.Errors)
	}
}

// TestBuildSplitStatic: the routes file takes the same keys; sticky and
// slow_start are accepted there (its upstreams are balanced in-process).
func TestBuildSplitStatic(t *testing.T) {
	routes, errs := Build(Input{LabelPrefix: "ingress.", Static: []StaticService{
		{Name: "old", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:80"), netip.MustParseAddrPort("192.0.2.11:80")},
			Labels: labelMap("ingress.host=legacy.example.com", "ingress.weight=75", "ingress.sticky=LEGACY", "ingress.slow_start=1m")},
		{Name: "new", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.20:80")},
			Labels: labelMap("ingress.host=legacy.example.com", "ingress.weight=25")},
	}})
	if len(errs) != 0 || len(routes) != 2 {
		t.Fatalf("routes %d, errors %+v", len(routes), errs)
	}
	if r := routes[1]; r.Service != "old" || r.Sticky != "LEGACY" || r.SlowStart != time.Minute {
		t.Fatalf("old: %+v", r)
	}
	tbl := route.New(route.Snapshot{Routes: routes, HostLabel: HostLabel("ingress.")})
	if _, s := tbl.Lookup("legacy.example.com", "/"); s == nil || len(s.Routes) != 2 || len(tbl.Errors) != 0 {
		t.Fatalf("split %+v, errors %+v", s, tbl.Errors)
	}
}
