package swarmtest

import (
	"fmt"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

// IngressOptions configures Rig.Ingress.
type IngressOptions struct {
	Networks []Network                // attached; the ingress reaches services on them (required)
	Env      []string                 // extra INGRESS_* settings, e.g. "INGRESS_LOG_LEVEL=debug"
	Secrets  []*swarm.SecretReference // Swarm secrets mounted into the ingress's container
}

// Ingress is a running ingress service made from the image of ./Dockerfile.
type Ingress struct {
	ServiceID string
	Task      swarm.Task
	HTTP      string // base URL of its HTTP listener on loopback, e.g. "http://127.0.0.1:41234"
	HTTPS     string // host:port of its HTTPS listener on loopback
}

// Ingress runs the ingress image as a Swarm service the way examples/serve-stack.yml
// does: uid 65532 with the Docker socket's group, the socket mounted, ports 80
// and 443 published in host mode (on free ports), INGRESS_SHUTDOWN_GRACE=1s.
// It returns once the HTTP listener answers (404 for an unknown host).
func (r *Rig) Ingress(t testing.TB, opts IngressOptions) Ingress {
	t.Helper()
	if len(opts.Networks) == 0 {
		t.Fatal("swarmtest: Ingress needs at least one network")
	}
	sockGroup, err := FileGroup("/var/run/docker.sock")
	if err != nil {
		t.Fatalf("swarmtest: stat docker socket: %v", err)
	}
	httpPort, httpsPort := FreePort(t), FreePort(t)
	for httpsPort == httpPort {
		httpsPort = FreePort(t)
	}
	var nets []swarm.NetworkAttachmentConfig
	for _, n := range opts.Networks {
		nets = append(nets, swarm.NetworkAttachmentConfig{Target: n.ID})
	}
	id := r.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: r.Name("ingress")},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:   r.IngressImage(t),
				User:    fmt.Sprintf("65532:%d", sockGroup),
				Env:     append([]string{"INGRESS_SHUTDOWN_GRACE=1s"}, opts.Env...),
				Secrets: opts.Secrets,
				Mounts: []mount.Mount{{
					Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true,
				}},
			},
			Networks: nets,
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{
			{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: uint32(httpPort), PublishMode: swarm.PortConfigPublishModeHost},
			{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 443, PublishedPort: uint32(httpsPort), PublishMode: swarm.PortConfigPublishModeHost},
		}},
	})
	ing := Ingress{
		ServiceID: id,
		Task:      r.WaitTasks(t, id, 1)[0],
		HTTP:      fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		HTTPS:     fmt.Sprintf("127.0.0.1:%d", httpsPort),
	}
	WaitHTTP(t, ing.HTTP+"/", 404)
	return ing
}
