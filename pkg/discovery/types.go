package discovery

import (
	"net/netip"
	"time"
)

// The plain data that Build turns into routes. The Docker side (snapshot.go)
// produces it; Build never talks to Docker, so it is tested without Docker.

// Input is everything one table is built from.
type Input struct {
	LabelPrefix string          // e.g. "ingress."
	Networks    []Network       // the networks the ingress reaches services on
	Services    []Service       // Swarm services, in any order
	Static      []StaticService // from the routes file
}

// Network is a Docker network the ingress is attached to.
type Network struct {
	ID   string
	Name string
}

// Service is one Swarm service as Build needs it.
type Service struct {
	ID           string
	Name         string
	Created      time.Time
	Labels       map[string]string     // service (deploy) labels
	EndpointMode string                // "vip" or "dnsrr"
	VIPs         map[string]netip.Addr // network ID -> IPv4 virtual IP (prefix length stripped)
	Networks     []string              // IDs of the networks the service is attached to
	Tasks        []Task                // running tasks only
}

// Task is one running task of a service.
type Task struct {
	ID    string
	Node  string
	Addrs map[string]netip.Addr // network ID -> IPv4 address (prefix length stripped)
}

// StaticService is one entry of the static routes file, upstreams resolved.
type StaticService struct {
	Name      string
	Upstreams []netip.AddrPort // IPv4 only
	Labels    map[string]string
}
