package swarmtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
)

// Network is an overlay network created by the rig.
type Network struct {
	ID     string
	Name   string
	Subnet string // IPv4 CIDR allocated by Swarm, e.g. "10.0.3.0/24"
}

// Network creates an attachable overlay network named r.Name(base) and removes
// it at Cleanup (retrying while the tasks of removed services still hold it).
func (r *Rig) Network(t testing.TB, base string) Network {
	t.Helper()
	name := r.Name(base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := r.Client.NetworkCreate(ctx, name, network.CreateOptions{
		Driver:     "overlay",
		Attachable: true,
		Labels:     labels(nil),
	})
	if err != nil {
		t.Fatalf("swarmtest: create network %s: %v", name, err)
	}
	t.Cleanup(func() { r.removeNetwork(t, created.ID, name) })

	// Swarm allocates the subnet just after the create call returns.
	n := Network{ID: created.ID, Name: name}
	err = retry(ctx, func() error {
		inspect, err := r.Client.NetworkInspect(ctx, created.ID, network.InspectOptions{Scope: "swarm"})
		if err != nil {
			return err
		}
		for _, cfg := range inspect.IPAM.Config {
			n.Subnet = cfg.Subnet
		}
		if n.Subnet == "" {
			return errors.New("no subnet allocated yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("swarmtest: inspect network %s: %v", name, err)
	}
	return n
}

func (r *Rig) removeNetwork(t testing.TB, id, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	err := retry(ctx, func() error { return r.Client.NetworkRemove(ctx, id) })
	if err != nil && !errdefsNotFound(err) {
		t.Errorf("swarmtest: remove network %s: %v", name, err)
	}
}

// retry calls f every 250ms until it succeeds, returns a not-found error, or
// ctx ends; it returns f's last error.
func retry(ctx context.Context, f func() error) error {
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		err := f()
		if err == nil || errdefsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-ticker.C:
		}
	}
}
