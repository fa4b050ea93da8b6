package discovery

import "github.com/docker/docker/client"

// DockerAPI is the narrow part of the Docker Engine API that discovery uses.
// *client.Client satisfies it. (STUB: the discovery owner lists the calls.)
type DockerAPI interface{}

// NewClient returns a Docker client configured from the standard DOCKER_*
// environment variables, negotiating the API version with the engine.
func NewClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}
