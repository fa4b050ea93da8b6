package control

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Locator lists the addresses (host:port) of the controllers to connect to.
type Locator func(ctx context.Context) ([]string, error)

// Static is a fixed list of controller addresses.
func Static(addrs ...string) Locator {
	return func(context.Context) ([]string, error) { return addrs, nil }
}

// Resolver is the part of *net.Resolver a DNS Locator uses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DNS finds the controllers of a Swarm service through Swarm's embedded DNS:
// "tasks.<service>" lists the IPv4 address of every running task on the
// networks the edge shares with it. A nil r is net.DefaultResolver.
func DNS(r Resolver, service string, port uint16) Locator {
	if r == nil {
		r = net.DefaultResolver
	}
	name := "tasks." + service
	return func(ctx context.Context) ([]string, error) {
		ips, err := r.LookupNetIP(ctx, "ip4", name)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		out := make([]string, 0, len(ips))
		for _, ip := range ips {
			if ip = ip.Unmap(); ip.Is4() {
				out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
			}
		}
		return out, nil
	}
}
