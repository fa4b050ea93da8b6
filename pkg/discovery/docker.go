package discovery

import (
	"context"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// DockerAPI is the narrow part of the Docker Engine API that discovery uses.
// *client.Client satisfies it.
type DockerAPI interface {
	Ping(ctx context.Context) (types.Ping, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	ContainerInspect(ctx context.Context, container string) (container.InspectResponse, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

var _ DockerAPI = (*client.Client)(nil)

// NewClient returns a Docker client configured from the standard DOCKER_*
// environment variables, negotiating the API version with the engine.
func NewClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}
