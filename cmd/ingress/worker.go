package main

import (
	"context"
	"errors"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// errWorker is what serve and controller say on a Swarm worker.
var errWorker = errors.New("this node is a Swarm worker: a worker's Docker API cannot list services and tasks, " +
	"so this process cannot read the cluster here. Run `ingress serve` or `ingress controller` on a manager " +
	"(constraint node.role == manager), and `ingress edge` on every node, workers included " +
	"(see examples/stack.yml)")

// errNoSwarm is what serve says on an engine outside any Swarm.
var errNoSwarm = errors.New("this Docker engine is not part of a Swarm: run `docker swarm init` (or join a Swarm) " +
	"and run `ingress serve` or `ingress controller` on a manager")

// checkManager asks Docker whether this node can read the cluster. An engine
// that does not answer is not judged: discovery reports and retries it.
func (a *app) checkManager(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := a.docker.Info(ctx)
	if err != nil {
		a.log.Warn().Err(err).Msg("docker info; discovery will keep trying")
		return nil
	}
	return swarmRole(info)
}

// swarmRole reports why an engine with this info cannot list services.
func swarmRole(info system.Info) error {
	switch {
	case info.Swarm.LocalNodeState != swarm.LocalNodeStateActive:
		return errNoSwarm
	case !info.Swarm.ControlAvailable:
		return errWorker
	}
	return nil
}
