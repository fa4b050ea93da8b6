package nginximport

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// Where a proxy_pass sends requests: a Swarm service to label, or an entry
// of the routes file (docs/import-nginx.md, "Which service").

// addrKind classifies an upstream address.
type addrKind int

const (
	addrLoopback addrKind = iota // localhost, 127.0.0.0/8, ::1
	addrIP                       // another IPv4 literal: outside Swarm
	addrService                  // a name without dots: a Swarm service (or a network alias)
	addrName                     // a dotted name: outside Swarm, resolved by the routes file
	addrBad                      // IPv6 literal, unix socket
)

func classifyAddr(host string) addrKind {
	if host == "localhost" {
		return addrLoopback
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		switch {
		case a.IsLoopback():
			return addrLoopback
		case a.Is4():
			return addrIP
		}
		return addrBad
	}
	if strings.HasPrefix(host, "unix:") || host == "" {
		return addrBad
	}
	if strings.Contains(host, ".") {
		return addrName
	}
	return addrService
}

// splitHostPort splits "host[:port]" ("[::1]:80" too), port 0 when absent.
func splitHostPort(hp string) (string, int) {
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return hp, 0
		}
		host, rest := hp[:end+1], hp[end+1:]
		p, _ := strconv.Atoi(strings.TrimPrefix(rest, ":"))
		return host, p
	}
	host, port, ok := strings.Cut(hp, ":")
	if !ok {
		return hp, 0
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return hp, 0
	}
	return host, p
}

// target is where a proxy_pass sends requests.
type target struct {
	svc    *Service
	port   int
	scheme string // http, https or h2c
	uri    string // the URI part of proxy_pass, when hasURI
	hasURI bool
}

// target resolves a proxy_pass (or grpc_pass) to a service; bad when it
// cannot be carried (noted).
func (t *translator) target(pp *nginxconf.Directive, s *server) (*target, bool) {
	if tg, ok := t.targets[pp]; ok {
		return tg, tg == nil
	}
	tg := t.resolve(pp, s)
	t.targets[pp] = tg
	return tg, tg == nil
}

func (t *translator) resolve(pp *nginxconf.Directive, s *server) *target {
	raw := pp.Arg(0)
	if strings.Contains(raw, "$") {
		t.drop(pp, "an upstream computed from variables cannot be carried: a route names one service")
		return nil
	}
	tg := &target{scheme: "http"}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	switch {
	case pp.Name == "grpc_pass" && (scheme == "grpc" || scheme == ""):
		tg.scheme = "h2c"
	case pp.Name == "grpc_pass" && scheme == "grpcs", scheme == "https":
		tg.scheme = "https"
	case scheme == "http":
	default:
		t.drop(pp, "only http:// and https:// upstreams (grpc:// with grpc_pass) can be carried")
		return nil
	}
	hostport, uri, hasURI := strings.Cut(rest, "/")
	if hasURI {
		tg.uri, tg.hasURI = "/"+uri, true
	}
	host, port := splitHostPort(hostport)
	defPort := 80
	if tg.scheme == "https" {
		defPort = 443
	}
	if up, ok := t.upstreams[host]; ok {
		return t.upstreamTarget(pp, s, up, tg, defPort)
	}
	if port == 0 {
		port = defPort
	}
	tg.port = port
	switch classifyAddr(host) {
	case addrLoopback:
		name := t.localName(s, host, port)
		tg.svc = t.service(name, fmt.Sprintf("Nginx reached it on the loopback address %s:%d; the name %q comes from the host %s: use your Swarm service's name", host, port, name, firstHost(s)), nil)
		t.unneeded(pp, "Nginx on the host reaches the application on a loopback port; the ingress reaches the Swarm service over the overlay network by its IPv4 addresses (no published port, no localhost or ::1 in between)")
	case addrService:
		tg.svc = t.service(host, fmt.Sprintf("proxy_pass names the host %q: the Swarm service of that name", host), nil)
		t.done(pp)
	case addrIP, addrName:
		name := sanitize(host)
		tg.svc = t.service(name, fmt.Sprintf("%s is outside Swarm: an entry of the routes file (INGRESS_ROUTES_FILE)", host), []string{host + ":" + strconv.Itoa(port)})
		t.done(pp)
	default:
		t.drop(pp, "the ingress dials IPv4 addresses only")
		return nil
	}
	return tg
}

func (t *translator) upstreamTarget(pp *nginxconf.Directive, s *server, up *nginxconf.Directive, tg *target, defPort int) *target {
	name := up.Arg(0)
	var addrs []string
	kinds := map[addrKind]bool{}
	hosts := map[string]bool{}
	for _, d := range up.Block {
		switch d.Name {
		case "server":
			h, p := splitHostPort(d.Arg(0))
			if p == 0 {
				p = defPort
			}
			if tg.port == 0 {
				tg.port = p
			}
			kinds[classifyAddr(h)] = true
			hosts[h] = true
			addrs = append(addrs, h+":"+strconv.Itoa(p))
			if len(d.Args) > 1 {
				t.changed(d, "server parameters (%s) are not carried: the ingress balances the addresses equally and ejects failing ones (ingress.eject.after)", strings.Join(argsFrom(d, 1), " "))
			} else {
				t.done(d)
			}
		case "keepalive", "keepalive_timeout", "keepalive_requests":
			t.unneeded(d, "%s", whyKeepalive)
		case "ip_hash", "hash", "sticky":
			t.drop(d, "affinity by address is not carried: ingress.sticky=true pins a client to a task with a cookie")
		case "least_conn", "random", "zone":
			t.unneeded(d, "the ingress balances the addresses of a route itself")
		default:
			t.drop(d, "not recognised by the importer")
		}
	}
	t.done(pp)
	switch {
	case len(addrs) == 0:
		t.drop(up, "an upstream without servers")
		return nil
	case len(kinds) == 1 && kinds[addrLoopback]:
		sv := sanitize(name)
		tg.svc = t.service(sv, fmt.Sprintf("from upstream %q, which Nginx reached on a loopback address (%s); use your Swarm service's name", name, strings.Join(addrs, ", ")), nil)
		t.unneeded(up, "Nginx on the host reaches the application on a loopback port; the ingress reaches the Swarm service over the overlay network by its IPv4 addresses")
	case len(kinds) == 1 && kinds[addrService] && len(hosts) == 1:
		for h := range hosts {
			tg.svc = t.service(h, fmt.Sprintf("upstream %q names the host %q: the Swarm service of that name", name, h), nil)
		}
		t.done(up)
	case len(kinds) == 1 && kinds[addrService]:
		sv := sanitize(name)
		tg.svc = t.service(sv, fmt.Sprintf("upstream %q lists several hosts (%s); as replicas of one Swarm service the ingress balances its tasks", name, strings.Join(addrs, ", ")), nil)
		t.changed(up, "several servers become the tasks of one Swarm service %q: run them as replicas", sv)
	case !kinds[addrLoopback] && !kinds[addrService] && !kinds[addrBad]:
		sv := sanitize(name)
		tg.svc = t.service(sv, fmt.Sprintf("upstream %q holds addresses outside Swarm: an entry of the routes file (INGRESS_ROUTES_FILE)", name), addrs)
		t.done(up)
	default:
		t.drop(up, "an upstream mixing loopback, Swarm and outside addresses (or IPv6) cannot be one route's upstream")
		return nil
	}
	return tg
}

// localName names the service behind a loopback address after the
// server's first host ("grafana.example.com" -> "grafana"); another port
// gets the port appended.
func (t *translator) localName(s *server, host string, port int) string {
	base := "app"
	for _, h := range s.hosts {
		first, _, _ := strings.Cut(strings.TrimPrefix(h, "*."), ".")
		if first != "www" && first != "" {
			base = sanitize(first)
			break
		}
	}
	key := host + ":" + strconv.Itoa(port)
	if n, ok := t.localNames[key]; ok {
		return n
	}
	name := base
	for _, n := range t.localNames {
		if n == name {
			name = base + "-" + strconv.Itoa(port)
		}
	}
	t.localNames[key] = name
	return name
}

// hostService is the service of a server without any proxy_pass.
func (t *translator) hostService(s *server) *Service {
	name := t.localName(s, "(none)", 0)
	return t.service(name, fmt.Sprintf("the server of %s has no proxy_pass: label the service that serves it (the name %q comes from the host)", firstHost(s), name), nil)
}

// service returns the service of that name, made on first use.
func (t *translator) service(name, why string, static []string) *Service {
	if name == "" {
		name = "app"
	}
	if sv, ok := t.services[name]; ok {
		for _, a := range static {
			if !slices.Contains(sv.Upstreams, a) {
				sv.Upstreams = append(sv.Upstreams, a)
			}
		}
		return sv
	}
	if name == "" {
		name = "app"
	}
	sv := &Service{Name: name, Why: why, Upstreams: static}
	t.services[name] = sv
	return sv
}

// addRoute adds a route unless another location already claims its hosts
// and path.
func (t *translator) addRoute(svc *Service, r *Route, s *server, l *location) {
	key := r.Get("host") + " " + r.Get("path")
	if prev, ok := t.claimed[key]; ok {
		t.drop(l.d, "the route of this location has the same hosts and path as the location at %s", prev)
		return
	}
	t.claimed[key] = r.From
	svc.Routes = append(svc.Routes, r)
}
