package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// LookupFunc resolves host to addresses; network is "ip4". It has the shape of
// (*net.Resolver).LookupNetIP.
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// loopback4 is what a localhost name means (RFC 6761) when the resolver
// finds no IPv4 address for it.
var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// ResolveStatic turns the upstreams of the routes file's entries into IPv4
// addresses: an IPv4 literal is used as is; a name is looked up for IPv4 only
// (lookup nil means net.DefaultResolver.LookupNetIP) and every IPv4 address
// it has becomes an upstream. IPv6 is never used: "localhost" becomes
// 127.0.0.1 even when /etc/hosts lists "::1 localhost" first, and a localhost
// name (RFC 6761) that resolves to no IPv4 address becomes 127.0.0.1.
//
// An entry with any upstream that cannot be resolved is left out and
// reported (label "upstreams"), so that it is never served by only some of
// its upstreams; the other entries are returned in file order.
func ResolveStatic(ctx context.Context, entries []StaticEntry, lookup LookupFunc) ([]StaticService, []route.Error) {
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	cache := map[string][]netip.Addr{}
	var out []StaticService
	var errs []route.Error
	for _, e := range entries {
		st := StaticService{Name: e.Name, Labels: e.Labels}
		var failed bool
		for _, u := range e.Upstreams {
			ups, err := resolveUpstream(ctx, u, lookup, cache)
			if err != nil {
				errs = append(errs, route.Error{Service: e.Name, Label: "upstreams", Error: err.Error()})
				failed = true
				continue
			}
			st.Upstreams = append(st.Upstreams, ups...)
		}
		if failed {
			continue
		}
		slices.SortFunc(st.Upstreams, netip.AddrPort.Compare)
		st.Upstreams = slices.Compact(st.Upstreams)
		out = append(out, st)
	}
	return out, errs
}

func resolveUpstream(ctx context.Context, u string, lookup LookupFunc, cache map[string][]netip.Addr) ([]netip.AddrPort, error) {
	if err := checkUpstream(u); err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(u)
	n, _ := strconv.ParseUint(portStr, 10, 16)
	port := uint16(n)
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return nil, fmt.Errorf("upstream %q is not an IPv4 address: upstreams are IPv4 only", u)
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, port)}, nil
	}
	addrs, ok := cache[host]
	if !ok {
		found, err := lookup(ctx, "ip4", host)
		for _, a := range found {
			if a = a.Unmap(); a.Is4() {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 && isLocalhost(host) {
			addrs, err = []netip.Addr{loopback4}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("upstream %q: look up %s: %w", u, host, err)
		}
		cache[host] = addrs
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("upstream %q: %s has no IPv4 address (IPv6 is never used)", u, host)
	}
	ups := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		ups[i] = netip.AddrPortFrom(a, port)
	}
	return ups, nil
}

// isLocalhost reports whether host is "localhost" or a name under it.
func isLocalhost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
