package discovery

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

var (
	netFront = Network{ID: "id-front", Name: "front"}
	netBack  = Network{ID: "id-back", Name: "back"}
	netApps  = Network{ID: "id-apps", Name: "apps"} // not an ingress network in most cases
)

// labelMap turns "key=value" strings into labels.
func labelMap(kv ...string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// testHash is a valid bcrypt hash (cost 4).
const testHash = "$2a$04$xYK5g4vT5cfYtru6a/Ahmudw8I6I5jztFuOuKfi.aj/uniimTNcoO"

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// task is a running task with one address per "netID=ip" pair.
func task(id string, addrs ...string) Task {
	t := Task{ID: id, Node: "node1", Addrs: map[string]netip.Addr{}}
	for _, a := range addrs {
		n, ip, _ := strings.Cut(a, "=")
		t.Addrs[n] = addr(ip)
	}
	return t
}

// summary renders a route on one line for comparison.
func summary(r *route.Route) string {
	ups := make([]string, len(r.Upstreams))
	for i, u := range r.Upstreams {
		ups[i] = u.String()
	}
	blocked := ""
	if r.Blocked != "" {
		blocked = " BLOCKED"
	}
	return fmt.Sprintf("%s hosts=%s path=%s mode=%s net=%s ups=%s%s", r.ID(), strings.Join(r.Hosts, ","), r.Path,
		r.Mode, r.Network, strings.Join(ups, ","), blocked)
}

func TestBuild(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	web := func(mut func(*Service)) Service {
		s := Service{
			ID: "id-web", Name: "web", Created: created, EndpointMode: "vip",
			Labels:   labelMap("ingress.host=web.example.com"),
			Networks: []string{netFront.ID},
			VIPs:     map[string]netip.Addr{netFront.ID: addr("10.0.1.5")},
		}
		if mut != nil {
			mut(&s)
		}
		return s
	}
	tests := []struct {
		name     string
		nets     []Network
		services []Service
		static   []StaticService
		want     []string // route summaries, sorted
		wantErrs []string // "service|label|part of the message"
	}{
		{
			name:     "vip on the shared network",
			nets:     []Network{netFront},
			services: []Service{web(nil)},
			want:     []string{"web/default hosts=web.example.com path=/ mode=vip net=front ups=10.0.1.5:80"},
		},
		{
			name: "vip with port, IPv4-mapped VIP unmapped",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.Labels["ingress.port"] = "8080"
				s.VIPs[netFront.ID] = addr("::ffff:10.0.1.5")
			})},
			want: []string{"web/default hosts=web.example.com path=/ mode=vip net=front ups=10.0.1.5:8080"},
		},
		{
			name:     "no VIP on the network",
			nets:     []Network{netFront},
			services: []Service{web(func(s *Service) { s.VIPs = nil })},
			wantErrs: []string{"web|ingress.upstream|no IPv4 virtual IP on network \"front\""},
		},
		{
			name:     "IPv6 VIP is never used",
			nets:     []Network{netFront},
			services: []Service{web(func(s *Service) { s.VIPs[netFront.ID] = addr("fd00::5") })},
			wantErrs: []string{"web|ingress.upstream|no IPv4 virtual IP"},
		},
		{
			name: "tasks mode: running tasks' IPv4 addresses on that network, sorted",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.Labels["ingress.upstream"] = "tasks"
				s.Labels["ingress.port"] = "3000"
				s.Tasks = []Task{
					task("t3", "id-front=10.0.1.12"),
					task("t1", "id-front=10.0.1.9", "id-apps=10.0.9.9"),
					task("t6", "id-front=fd00::7"),  // IPv6: never
					task("t4", "id-apps=10.0.9.10"), // not on the route's network
					task("t2", "id-front=10.0.1.10"),
					task("t5", "id-front=::ffff:10.0.1.11"),
				}
			})},
			want: []string{"web/default hosts=web.example.com path=/ mode=tasks net=front ups=10.0.1.9:3000,10.0.1.10:3000,10.0.1.11:3000,10.0.1.12:3000"},
		},
		{
			name:     "tasks mode with no running task: listed with no upstream",
			nets:     []Network{netFront},
			services: []Service{web(func(s *Service) { s.Labels["ingress.upstream"] = "tasks" })},
			want:     []string{"web/default hosts=web.example.com path=/ mode=tasks net=front ups="},
		},
		{
			name: "dnsrr service uses its tasks",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.EndpointMode, s.VIPs = "dnsrr", nil
				s.Tasks = []Task{task("t1", "id-front=10.0.1.20")}
			})},
			want: []string{"web/default hosts=web.example.com path=/ mode=tasks net=front ups=10.0.1.20:80"},
		},
		{
			name: "dnsrr service with upstream=vip",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.EndpointMode, s.VIPs = "dnsrr", nil
				s.Labels["ingress.routes.api.upstream"] = "vip"
				s.Labels["ingress.routes.api.path"] = "/api"
			})},
			want:     []string{"web/default hosts=web.example.com path=/ mode=tasks net=front ups="},
			wantErrs: []string{"web|ingress.routes.api.upstream|endpoint mode dnsrr, which has no virtual IP"},
		},
		{
			name: "several shared networks: the first by name; network label picks another",
			nets: []Network{netFront, netBack},
			services: []Service{web(func(s *Service) {
				s.Networks = []string{netFront.ID, netBack.ID}
				s.VIPs[netBack.ID] = addr("10.0.2.5")
				s.Labels["ingress.routes.front.host"] = "front.example.com"
				s.Labels["ingress.routes.front.network"] = "front"
			})},
			want: []string{
				"web/default hosts=web.example.com path=/ mode=vip net=back ups=10.0.2.5:80",
				"web/front hosts=front.example.com path=/ mode=vip net=front ups=10.0.1.5:80",
			},
		},
		{
			name:     "network label names a network the ingress is not on",
			nets:     []Network{netFront, netBack},
			services: []Service{web(func(s *Service) { s.Labels["ingress.network"] = "apps" })},
			wantErrs: []string{"web|ingress.network|the ingress is not attached to network \"apps\" (it is on: back, front)"},
		},
		{
			name:     "network label names an ingress network the service is not on",
			nets:     []Network{netFront, netBack},
			services: []Service{web(func(s *Service) { s.Labels["ingress.network"] = "back" })},
			wantErrs: []string{"web|ingress.network|`docker service update --network-add back web`"},
		},
		{
			name:     "no shared network",
			nets:     []Network{netFront, netBack},
			services: []Service{web(func(s *Service) { s.Networks = []string{netApps.ID} })},
			wantErrs: []string{"web|ingress.network|shares no network with the ingress: attach it to one of back, front, e.g. `docker service update --network-add back web`"},
		},
		{
			name:     "the ingress is on no network",
			services: []Service{web(nil)},
			wantErrs: []string{"web|ingress.network|the ingress is on no network"},
		},
		{
			name: "label errors name the service; its other routes serve",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.Labels["ingress.routes.bad.host"] = "bad.example.com"
				s.Labels["ingress.routes.bad.port"] = "x"
			})},
			want:     []string{"web/default hosts=web.example.com path=/ mode=vip net=front ups=10.0.1.5:80"},
			wantErrs: []string{"web|ingress.routes.bad.port|not a port number"},
		},
		{
			name:     "service without ingress labels is ignored",
			nets:     []Network{netFront},
			services: []Service{web(func(s *Service) { s.Labels = labelMap("com.docker.stack.namespace=x") })},
		},
		{
			name: "static services: sorted IPv4 upstreams, no network",
			static: []StaticService{{
				Name:      "legacy",
				Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.11:8080"), netip.MustParseAddrPort("192.0.2.10:8080")},
				Labels:    labelMap("ingress.host=legacy.example.com", "ingress.path=/old"),
			}},
			want: []string{"legacy/default hosts=legacy.example.com path=/old mode=static net= ups=192.0.2.10:8080,192.0.2.11:8080"},
		},
		{
			name: "static services reject network, port and upstream labels",
			static: []StaticService{{
				Name:      "legacy",
				Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:8080")},
				Labels: labelMap("ingress.routes.a.host=a.example.com", "ingress.routes.a.network=front",
					"ingress.routes.b.host=b.example.com", "ingress.routes.b.port=81",
					"ingress.routes.c.host=c.example.com", "ingress.routes.c.upstream=tasks",
					"ingress.routes.d.host=d.example.com"),
			}},
			want: []string{"legacy/d hosts=d.example.com path=/ mode=static net= ups=192.0.2.10:8080"},
			wantErrs: []string{
				"legacy|ingress.routes.a.network|not on a Docker network",
				"legacy|ingress.routes.b.port|carry their port",
				"legacy|ingress.routes.c.upstream|routes file's upstreams",
			},
		},
		{
			name: "static service whose labels lack the prefix",
			static: []StaticService{{Name: "legacy", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:80")},
				Labels: labelMap("host=legacy.example.com")}},
			wantErrs: []string{"legacy|ingress.host|has no ingress.host label"},
		},
		{
			name: "a guarded route that cannot be placed is blocked, others are dropped",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.Labels["ingress.routes.admin.path"] = "/admin"
				s.Labels["ingress.routes.admin.auth.basic"] = "alice:" + testHash
				s.Labels["ingress.routes.admin.network"] = "back"
				s.Labels["ingress.routes.other.path"] = "/other"
				s.Labels["ingress.routes.other.network"] = "back"
			})},
			want: []string{
				"web/admin hosts=web.example.com path=/admin mode=vip net= ups= BLOCKED",
				"web/default hosts=web.example.com path=/ mode=vip net=front ups=10.0.1.5:80",
			},
			wantErrs: []string{
				"web|ingress.routes.admin.network|not attached to network \"back\"",
				"web|ingress.routes.other.network|not attached to network \"back\"",
			},
		},
		{
			name: "a blocked route of a dnsrr service",
			nets: []Network{netFront},
			services: []Service{web(func(s *Service) {
				s.EndpointMode = "dnsrr"
				s.Labels["ingress.allow"] = "10.0.0.0/33"
			})},
			want:     []string{"web/default hosts=web.example.com path=/ mode=tasks net= ups= BLOCKED"},
			wantErrs: []string{"web|ingress.allow|not a CIDR"},
		},
		{
			name: "static: a bad auth.basic, a forbidden key or no upstream blocks a guarded route",
			static: []StaticService{
				{
					Name: "legacy", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:80")},
					Labels: labelMap("ingress.host=legacy.example.com", "ingress.routes.admin.path=/admin", "ingress.routes.admin.auth.basic=alice:nohash",
						"ingress.routes.ops.path=/ops", "ingress.routes.ops.allow=10.0.0.0/8", "ingress.routes.ops.port=8080",
						"ingress.routes.plain.path=/plain", "ingress.routes.plain.port=8080"),
				},
				{Name: "gone", Labels: labelMap("ingress.host=gone.example.com", "ingress.max_body=1MB")},
			},
			want: []string{
				"gone/default hosts=gone.example.com path=/ mode=static net= ups= BLOCKED",
				"legacy/admin hosts=legacy.example.com path=/admin mode=static net= ups= BLOCKED",
				"legacy/default hosts=legacy.example.com path=/ mode=static net= ups=192.0.2.10:80",
				"legacy/ops hosts=legacy.example.com path=/ops mode=static net= ups= BLOCKED",
			},
			wantErrs: []string{
				"gone|upstreams|no IPv4 upstream",
				"legacy|ingress.routes.admin.auth.basic|not a bcrypt hash",
				"legacy|ingress.routes.ops.port|remove this label",
				"legacy|ingress.routes.plain.port|remove this label",
			},
		},
		{
			name:     "static service without an IPv4 upstream",
			static:   []StaticService{{Name: "legacy", Labels: labelMap("ingress.host=legacy.example.com")}},
			wantErrs: []string{"legacy|upstreams|no IPv4 upstream"},
		},
		{
			name:     "static service named like a Swarm service",
			nets:     []Network{netFront},
			services: []Service{web(nil)},
			static: []StaticService{{
				Name: "web", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:80")},
				Labels: labelMap("ingress.host=other.example.com"),
			}},
			want:     []string{"web/default hosts=web.example.com path=/ mode=vip net=front ups=10.0.1.5:80"},
			wantErrs: []string{"web||rename it in the routes file"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			routes, errs := Build(Input{LabelPrefix: "ingress.", Networks: tc.nets, Services: tc.services, Static: tc.static})
			var got []string
			for _, r := range routes {
				got = append(got, summary(r))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("routes:\n got %q\nwant %q", got, tc.want)
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors: got %+v, want %d like %q", errs, len(tc.wantErrs), tc.wantErrs)
			}
			for i, w := range tc.wantErrs {
				parts := strings.SplitN(w, "|", 3)
				e := errs[i]
				if e.Service != parts[0] || e.Label != parts[1] || !strings.Contains(e.Error, parts[2]) {
					t.Errorf("error %d: got %+v, want service %q label %q message containing %q", i, e, parts[0], parts[1], parts[2])
				}
			}
			for _, r := range routes {
				if r.Service == "web" && (r.ServiceID != "id-web" || !r.Created.Equal(created)) {
					t.Errorf("route %s: service ID %q created %s", r.ID(), r.ServiceID, r.Created)
				}
			}
		})
	}
}

func TestBuildDefaultPrefix(t *testing.T) {
	routes, errs := Build(Input{
		Networks: []Network{netFront},
		Services: []Service{{Name: "web", Labels: labelMap("ingress.host=a.example.com"), Networks: []string{netFront.ID},
			VIPs: map[string]netip.Addr{netFront.ID: addr("10.0.1.5")}}},
	})
	if len(routes) != 1 || len(errs) != 0 {
		t.Fatalf("empty LabelPrefix should mean %q: routes %d, errors %+v", DefaultLabelPrefix, len(routes), errs)
	}
}

// TestBuildOrderIndependent builds from the same state listed in many
// orders and requires the same routes and errors every time.
func TestBuildOrderIndependent(t *testing.T) {
	in := benchInput(300)
	in.Networks = append(in.Networks, netBack)
	for i := range in.Services {
		if i%7 == 0 && in.Services[i].VIPs != nil { // several shared networks: the choice must not depend on order
			in.Services[i].Networks = append(in.Services[i].Networks, netBack.ID)
			in.Services[i].VIPs[netBack.ID] = netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		}
	}
	wantRoutes, wantErrs := Build(in)
	if len(wantRoutes) < 300 || len(wantErrs) == 0 {
		t.Fatalf("input too poor to test order: %d routes, %d errors", len(wantRoutes), len(wantErrs))
	}
	want := route.New(route.Snapshot{Routes: wantRoutes, Errors: wantErrs, HostLabel: HostLabel(in.LabelPrefix)}).View()
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 10 {
		sh := shuffled(r, in)
		gotRoutes, gotErrs := Build(sh)
		if !reflect.DeepEqual(gotRoutes, wantRoutes) || !slices.Equal(gotErrs, wantErrs) {
			t.Fatalf("round %d: Build differs after shuffling the input", round)
		}
		got := route.New(route.Snapshot{Routes: gotRoutes, Errors: gotErrs, HostLabel: HostLabel(in.LabelPrefix)}).View()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: table differs after shuffling the input", round)
		}
	}
}

// shuffled returns a deep copy of in with every list in another order.
func shuffled(r *rand.Rand, in Input) Input {
	out := in
	out.Networks = slices.Clone(in.Networks)
	out.Services = slices.Clone(in.Services)
	out.Static = slices.Clone(in.Static)
	shuffle(r, out.Networks)
	shuffle(r, out.Services)
	shuffle(r, out.Static)
	for i := range out.Services {
		s := &out.Services[i]
		s.Networks = slices.Clone(s.Networks)
		s.Tasks = slices.Clone(s.Tasks)
		shuffle(r, s.Networks)
		shuffle(r, s.Tasks)
	}
	for i := range out.Static {
		out.Static[i].Upstreams = slices.Clone(out.Static[i].Upstreams)
		shuffle(r, out.Static[i].Upstreams)
	}
	return out
}

func shuffle[T any](r *rand.Rand, s []T) {
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// TestBuildConflicts checks, through route.New, that two routes with the
// same host and path are settled by priority, then the older service, and
// that the loser is reported.
func TestBuildConflicts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := func(name string, created time.Time, labels ...string) Service {
		return Service{ID: "id-" + name, Name: name, Created: created, Labels: labelMap(labels...),
			Networks: []string{netFront.ID}, VIPs: map[string]netip.Addr{netFront.ID: addr("10.0.1.5")}}
	}
	tests := []struct {
		name       string
		services   []Service
		static     []StaticService
		host, path string
		winner     string // route ID
		loserLabel string // "service|label" of the conflict error
	}{
		{
			name: "higher priority wins over the older service",
			services: []Service{
				svc("old", t0, "ingress.host=a.example.com"),
				svc("new", t0.Add(time.Hour), "ingress.host=a.example.com", "ingress.priority=5"),
			},
			host: "a.example.com", path: "/x", winner: "new/default", loserLabel: "old|ingress.host",
		},
		{
			name: "same priority: the older service wins",
			services: []Service{
				svc("b-new", t0.Add(time.Hour), "ingress.routes.api.host=a.example.com", "ingress.routes.api.path=/api"),
				svc("z-old", t0, "ingress.host=a.example.com", "ingress.path=/api"),
			},
			host: "a.example.com", path: "/api/v1", winner: "z-old/default", loserLabel: "b-new|ingress.routes.api.host",
		},
		{
			name:     "a static route against a Swarm service of equal priority",
			services: []Service{svc("web", t0, "ingress.host=a.example.com")},
			static: []StaticService{{Name: "legacy", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:80")},
				Labels: labelMap("ingress.host=a.example.com")}},
			host: "a.example.com", path: "/", winner: "legacy/default", loserLabel: "web|ingress.host",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{LabelPrefix: "ingress.", Networks: []Network{netFront}, Services: tc.services, Static: tc.static}
			routes, errs := Build(in)
			if len(errs) != 0 {
				t.Fatalf("Build errors: %+v", errs)
			}
			tbl := route.New(route.Snapshot{Routes: routes, Errors: errs, HostLabel: HostLabel(in.LabelPrefix)})
			if r := tbl.Match(tc.host, tc.path); r == nil || r.ID() != tc.winner {
				t.Fatalf("Match(%s, %s) = %v, want %s", tc.host, tc.path, r, tc.winner)
			}
			if len(tbl.Errors) != 1 || tbl.Errors[0].Service+"|"+tbl.Errors[0].Label != tc.loserLabel ||
				!strings.Contains(tbl.Errors[0].Error, "conflict") {
				t.Fatalf("conflict errors = %+v, want one for %s", tbl.Errors, tc.loserLabel)
			}
		})
	}
}
