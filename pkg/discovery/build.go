package discovery

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Build turns services and static services into routes, and reports every
// problem found. It is pure, and its result does not depend on the order of
// the services, their tasks or networks, or the ingress's networks. Conflicts
// between routes are left to route.New, which the caller runs on the result:
//
//	routes, errs := Build(in)
//	table := route.New(route.Snapshot{Routes: routes, Errors: errs, HostLabel: HostLabel(in.LabelPrefix), ...})
//
// A route's network is its `network` label (a network of the ingress, by
// name, that the service is attached to), else the network the service
// shares with the ingress; when it shares several, the one whose name sorts
// first (set `network` to choose another). Its upstreams are IPv4 only:
// in vip mode (the default) the service's virtual IP on that network; in
// tasks mode (`upstream=tasks`, and every dnsrr service) the addresses of
// its running tasks there, sorted, possibly none; in static mode the
// addresses of the routes file. A route that cannot be placed is not built,
// unless it sets a security key: then it is built blocked (failclosed.go).
//
// Static routes have no creation time (Created is zero): against a Swarm
// service's route of equal priority, a static route wins a conflict.
func Build(in Input) ([]*route.Route, []route.Error) {
	prefix := cmp.Or(in.LabelPrefix, DefaultLabelPrefix)
	b := builder{prefix: prefix, nets: slices.Clone(in.Networks)}
	slices.SortFunc(b.nets, func(a, c Network) int {
		return cmp.Or(strings.Compare(a.Name, c.Name), strings.Compare(a.ID, c.ID))
	})
	names := make(map[string]int, len(in.Services)+len(in.Static))
	for i := range in.Services {
		b.service(&in.Services[i])
		names[in.Services[i].Name]++
	}
	for _, st := range in.Static {
		names[st.Name]++
	}
	for i := range in.Static {
		st := &in.Static[i]
		if names[st.Name] > 1 {
			b.fail(st.Name, "", "the routes file names a service %q more than once, or a Swarm service has the same name: rename it in the routes file", st.Name)
			continue
		}
		b.static(st)
	}
	slices.SortFunc(b.routes, func(a, c *route.Route) int {
		return cmp.Or(strings.Compare(a.Service, c.Service), strings.Compare(a.Name, c.Name), strings.Compare(a.ServiceID, c.ServiceID))
	})
	slices.SortFunc(b.errs, func(a, c route.Error) int {
		return cmp.Or(strings.Compare(a.Service, c.Service), strings.Compare(a.Label, c.Label), strings.Compare(a.Error, c.Error))
	})
	return b.routes, slices.Compact(b.errs)
}

type builder struct {
	prefix string
	nets   []Network // the ingress's networks, sorted by name
	routes []*route.Route
	errs   []route.Error
}

// fail reports a problem and returns it as a blocked route's reason.
func (b *builder) fail(service, label, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	b.errs = append(b.errs, route.Error{Service: service, Label: label, Error: msg})
	return label + ": " + msg
}

// parse parses a service's labels, reporting their errors under service,
// and tells whether any was found.
func (b *builder) parse(service string, labels map[string]string) ([]Spec, bool) {
	specs, errs := ParseLabels(b.prefix, labels)
	for _, e := range errs {
		e.Service = service
		b.errs = append(b.errs, e)
	}
	return specs, len(errs) > 0
}

func (b *builder) service(svc *Service) {
	specs, _ := b.parse(svc.Name, svc.Labels)
	for _, s := range specs {
		if s.Route.Blocked == "" {
			r, reason := b.place(svc, &s)
			if reason == "" {
				b.routes = append(b.routes, r)
				continue
			}
			var ok bool
			if s, ok = blockGuarded(s, reason); !ok {
				continue
			}
		}
		r := s.Route
		r.Service, r.ServiceID, r.Created, r.Mode = svc.Name, svc.ID, svc.Created, route.ModeVIP
		if s.Upstream == route.ModeTasks || svc.EndpointMode == "dnsrr" {
			r.Mode = route.ModeTasks
		}
		b.routes = append(b.routes, &r)
	}
}

// place builds the route of a valid spec: its network and upstreams. It
// returns the reported problem instead when the route cannot be placed.
func (b *builder) place(svc *Service, s *Spec) (*route.Route, string) {
	n, reason := b.network(svc, s)
	if reason != "" {
		return nil, reason
	}
	r := s.Route
	r.Service, r.ServiceID, r.Created, r.Network = svc.Name, svc.ID, svc.Created, n.Name
	dnsrr := svc.EndpointMode == "dnsrr"
	switch {
	case s.Upstream == route.ModeVIP && dnsrr:
		return nil, b.fail(svc.Name, s.Label(b.prefix, "upstream"), "service %s uses endpoint mode dnsrr, which has no virtual IP: set upstream to tasks or remove it", svc.Name)
	case s.Upstream == route.ModeTasks || dnsrr:
		r.Mode = route.ModeTasks
		r.Upstreams = taskUpstreams(svc.Tasks, n.ID, r.Port)
	default:
		if label, problem := checkBalanced(b.prefix, s, svc.Name); problem != "" {
			return nil, b.fail(svc.Name, label, "%s", problem)
		}
		vip := svc.VIPs[n.ID].Unmap()
		if !vip.Is4() {
			return nil, b.fail(svc.Name, s.Label(b.prefix, "upstream"), "service %s has no IPv4 virtual IP on network %q (is its endpoint mode vip?): set upstream to tasks to use its tasks' addresses", svc.Name, n.Name)
		}
		r.Mode = route.ModeVIP
		r.Upstreams = []netip.AddrPort{netip.AddrPortFrom(vip, r.Port)}
	}
	return &r, ""
}

// network picks the ingress network a route reaches its service on, or
// reports why there is none (and returns the report).
func (b *builder) network(svc *Service, s *Spec) (Network, string) {
	if s.Network != "" {
		i := slices.IndexFunc(b.nets, func(n Network) bool { return n.Name == s.Network })
		if i < 0 {
			return Network{}, b.fail(svc.Name, s.Label(b.prefix, "network"), "the ingress is not attached to network %q (it is on: %s): attach the ingress to it, or name one of those",
				s.Network, b.netNames())
		}
		if !slices.Contains(svc.Networks, b.nets[i].ID) {
			return Network{}, b.fail(svc.Name, s.Label(b.prefix, "network"), "service %s is not attached to network %q: run `docker service update --network-add %s %s`",
				svc.Name, s.Network, s.Network, svc.Name)
		}
		return b.nets[i], ""
	}
	for _, n := range b.nets {
		if slices.Contains(svc.Networks, n.ID) {
			return n, ""
		}
	}
	if len(b.nets) == 0 {
		return Network{}, b.fail(svc.Name, b.prefix+"network", "service %s cannot be reached: the ingress is on no network (name its networks in its settings or attach it to an overlay network)", svc.Name)
	}
	return Network{}, b.fail(svc.Name, b.prefix+"network", "service %s shares no network with the ingress: attach it to one of %s, e.g. `docker service update --network-add %s %s`",
		svc.Name, b.netNames(), b.nets[0].Name, svc.Name)
}

func (b *builder) netNames() string {
	if len(b.nets) == 0 {
		return "none"
	}
	names := make([]string, len(b.nets))
	for i, n := range b.nets {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// taskUpstreams returns the tasks' IPv4 addresses on network netID, sorted,
// without duplicates.
func taskUpstreams(tasks []Task, netID string, port uint16) []netip.AddrPort {
	var ups []netip.AddrPort
	for _, t := range tasks {
		if a := t.Addrs[netID].Unmap(); a.Is4() {
			ups = append(ups, netip.AddrPortFrom(a, port))
		}
	}
	slices.SortFunc(ups, netip.AddrPort.Compare)
	return slices.Compact(ups)
}

// staticForbidden lists the keys that make no sense for a static service, whose
// upstreams are given, port included, by the routes file.
var staticForbidden = map[string]string{
	"network":  "a static service is not on a Docker network",
	"upstream": "a static service's upstreams are the routes file's upstreams",
	"port":     "a static service's upstreams carry their port (upstreams: [\"host:port\"])",
}

func (b *builder) static(st *StaticService) {
	var ups []netip.AddrPort
	for _, u := range st.Upstreams {
		if a := u.Addr().Unmap(); a.Is4() && u.Port() != 0 {
			ups = append(ups, netip.AddrPortFrom(a, u.Port()))
		}
	}
	slices.SortFunc(ups, netip.AddrPort.Compare)
	ups = slices.Compact(ups)
	noUpstream := ""
	if len(ups) == 0 {
		noUpstream = b.fail(st.Name, "upstreams", "static service %s has no IPv4 upstream (host:port)", st.Name)
	}
	specs, bad := b.parse(st.Name, st.Labels)
	if len(specs) == 0 && !bad && noUpstream == "" {
		b.fail(st.Name, b.prefix+"host", "static service %s has no %shost label, so it is not routed (its labels need the prefix too)", st.Name, b.prefix)
	}
	for _, s := range specs {
		if s.Route.Blocked == "" {
			reason := noUpstream
			for _, key := range []string{"network", "port", "upstream"} {
				if full, ok := s.Labels[key]; ok && reason == "" {
					reason = b.fail(st.Name, full, "remove this label: %s", staticForbidden[key])
				}
			}
			if reason != "" {
				var ok bool
				if s, ok = blockGuarded(s, reason); !ok {
					continue
				}
			}
		}
		r := s.Route
		r.Service, r.Mode, r.Port = st.Name, route.ModeStatic, 0
		if r.Blocked == "" {
			r.Upstreams = slices.Clone(ups)
		}
		b.routes = append(b.routes, &r)
	}
}
