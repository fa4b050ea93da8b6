package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The networks the ingress reaches services on: the names in
// Config.Networks, or else the overlay networks of its own container.

// defaultNetworkSetting names Config.Networks in errors when
// Config.NetworkSetting is empty.
const defaultNetworkSetting = "networks"

// ingressService is the Service of errors about the ingress itself.
const ingressService = "ingress"

// errNetworkSetup is a problem an operator has to fix (a missing network,
// no own container), as opposed to Docker being unreachable.
var errNetworkSetup = errors.New("network setup")

// resolveNetworks returns the networks the ingress reaches services on.
// names empty means the overlay networks of the container selfID returns.
// Setup problems come back wrapping errNetworkSetup, with what to do;
// setting is the name operators give names by (Config.NetworkSetting).
func resolveNetworks(ctx context.Context, api DockerAPI, names []string, setting string, selfID func() (string, error)) ([]Network, error) {
	all, err := api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	if len(names) > 0 {
		return namedNetworks(all, names, setting)
	}
	id, err := selfID()
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not set and the ingress's own container was not found (%v): set %s to the overlay networks the services are on",
			errNetworkSetup, setting, err, setting)
	}
	return containerNetworks(ctx, api, id, all, setting)
}

// namedNetworks finds each name among all; each must be a Swarm overlay.
func namedNetworks(all []network.Summary, names []string, setting string) ([]Network, error) {
	var out []Network
	var errs []error
	for _, name := range names {
		i := slices.IndexFunc(all, func(n network.Summary) bool { return n.Name == name && usable(n) })
		if i >= 0 {
			out = append(out, Network{ID: all[i].ID, Name: name})
			continue
		}
		if j := slices.IndexFunc(all, func(n network.Summary) bool { return n.Name == name }); j >= 0 {
			errs = append(errs, fmt.Errorf("%w: network %q (%s) is a %s %s network, not an overlay: list overlay networks in %s (docker network create --driver overlay %s)",
				errNetworkSetup, name, setting, all[j].Scope, all[j].Driver, setting, name))
			continue
		}
		errs = append(errs, fmt.Errorf("%w: network %q (%s) does not exist: create it with `docker network create --driver overlay %s` and attach the services and the ingress to it",
			errNetworkSetup, name, setting, name))
	}
	return sortNetworks(out), errors.Join(errs...)
}

// containerNetworks returns the overlay networks container id is attached to,
// leaving out Swarm's routing-mesh `ingress` network. all is NetworkList's
// answer, to learn each network's driver.
func containerNetworks(ctx context.Context, api DockerAPI, id string, all []network.Summary, setting string) ([]Network, error) {
	c, err := api.ContainerInspect(ctx, id)
	if client.IsErrNotFound(err) {
		return nil, fmt.Errorf("%w: the ingress's own container %s is not known to this Docker engine: set %s, or point DOCKER_HOST at this node's engine",
			errNetworkSetup, id, setting)
	}
	if err != nil {
		return nil, fmt.Errorf("inspect own container %s: %w", id, err)
	}
	var out []Network
	if c.NetworkSettings != nil {
		for name, ep := range c.NetworkSettings.Networks {
			if ep == nil {
				continue
			}
			i := slices.IndexFunc(all, func(n network.Summary) bool { return n.ID == ep.NetworkID })
			if i >= 0 && usable(all[i]) {
				out = append(out, Network{ID: ep.NetworkID, Name: name})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the ingress's container %s is on no overlay network: attach one (docker service update --network-add NET <ingress service>) or set %s",
			errNetworkSetup, shortID(id), setting)
	}
	return sortNetworks(out), nil
}

// usable reports whether services can be reached on n: an overlay network
// other than Swarm's routing mesh.
func usable(n network.Summary) bool { return n.Driver == "overlay" && !n.Ingress }

func sortNetworks(ns []Network) []Network {
	slices.SortFunc(ns, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return ns
}

// networkErrors turns setup errors into table errors of the setting;
// other errors are returned (Docker is unreachable: keep the last table).
func networkErrors(err error, setting string) ([]route.Error, error) {
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, errNetworkSetup) {
		return nil, err
	}
	var out []route.Error
	var joined interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		msg := strings.TrimPrefix(e.Error(), errNetworkSetup.Error()+": ")
		out = append(out, route.Error{Service: ingressService, Label: setting, Error: msg})
	}
	return out, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// selfContainerID finds the ID of the container this process runs in: from
// the Docker-managed /etc/hostname mount in /proc/self/mountinfo (works with
// cgroup v1 and v2), else from /proc/self/cgroup, else from the hostname,
// which Swarm sets to the short container ID unless the service overrides it.
func selfContainerID() (string, error) {
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if id := idFromMountinfo(b); id != "" {
			return id, nil
		}
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		if id := idFromCgroup(b); id != "" {
			return id, nil
		}
	}
	if h, err := os.Hostname(); err == nil && shortIDPattern.MatchString(h) {
		return h, nil
	}
	return "", errors.New("no container ID in /proc/self/mountinfo, /proc/self/cgroup or the hostname")
}

var (
	mountinfoPattern = regexp.MustCompile(`/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)\s`)
	cgroupPattern    = regexp.MustCompile(`(?:/docker/|docker-)([0-9a-f]{64})(?:\.scope)?$`)
	shortIDPattern   = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

func idFromMountinfo(b []byte) string {
	if m := mountinfoPattern.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

func idFromCgroup(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if m := cgroupPattern.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	return ""
}
