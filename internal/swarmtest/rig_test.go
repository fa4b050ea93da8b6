package swarmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// backendEcho is the part of testbackend's "/" JSON this test reads.
type backendEcho struct {
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Headers  http.Header `json:"headers"`
	Hostname string      `json:"hostname"`
}

// TestRig brings up a backend and a second backend task that fetches from the
// first one's task IP over their shared overlay network, then checks that
// cleanup removed the services and the network.
func TestRig(t *testing.T) {
	rig := New(t)
	var created struct {
		services []string
		network  string
	}

	t.Run("up", func(t *testing.T) {
		net := rig.Network(t, "front")
		created.network = net.ID
		if net.Subnet == "" {
			t.Fatalf("network %s has no subnet", net.Name)
		}
		img := rig.BackendImage(t)

		backend := rig.CreateService(t, swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: img},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
			},
		})
		port := FreePort(t)
		fetcher := rig.CreateService(t, swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: img, Env: []string{"FETCH_ALLOW=" + net.Subnet}},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
			},
			EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
				Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80,
				PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost,
			}}},
		})
		created.services = []string{backend, fetcher}

		tasks := rig.WaitTasks(t, backend, 1)
		ip := TaskIP(tasks[0], net.ID)
		if ip == "" {
			t.Fatalf("backend task %s has no address on %s: %+v", tasks[0].ID, net.Name, tasks[0].NetworksAttachments)
		}
		if byName := TaskIP(tasks[0], net.Name); byName != ip {
			t.Errorf("TaskIP by name = %q, by ID = %q", byName, ip)
		}
		rig.WaitTasks(t, fetcher, 1)

		target := fmt.Sprintf("http://%s:80/hello", ip)
		body := WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/fetch?url=%s", port, url.QueryEscape(target)), 200)
		var got backendEcho
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("fetch body is not the backend's echo: %v: %s", err, body)
		}
		containerID := tasks[0].Status.ContainerStatus.ContainerID
		if got.Host != ip+":80" || got.Path != "/hello" || len(containerID) < 12 || got.Hostname != containerID[:12] {
			t.Errorf("echo = %+v; want host %s:80, path /hello, hostname %.12s", got, ip, containerID)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range created.services {
		if _, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{}); !errdefsNotFound(err) {
			t.Errorf("service %s still there after cleanup (err %v)", id, err)
		}
	}
	if created.network != "" {
		if _, err := rig.Client.NetworkInspect(ctx, created.network, network.InspectOptions{}); !errdefsNotFound(err) {
			t.Errorf("network %s still there after cleanup (err %v)", created.network, err)
		}
	}
}

// TestSweep checks that the sweep removes resources of a dead pid and keeps
// those of a live one.
func TestSweep(t *testing.T) {
	rig := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run true: %v", err)
	}
	deadPID := cmd.Process.Pid
	if alive(deadPID) {
		t.Skipf("pid %d was reused already", deadPID)
	}

	tests := []struct {
		name     string
		pid      int
		wantGone bool
	}{
		{name: "dead", pid: deadPID, wantGone: true},
		{name: "live", pid: os.Getpid(), wantGone: false},
	}
	type created struct{ network, config string }
	ids := make([]created, len(tests))
	for i, tt := range tests {
		lbl := map[string]string{LabelTest: "1", LabelPID: strconv.Itoa(tt.pid)}
		n, err := rig.Client.NetworkCreate(ctx, rig.Name("sweep-"+tt.name), network.CreateOptions{Driver: "overlay", Labels: lbl})
		if err != nil {
			t.Fatalf("create network: %v", err)
		}
		t.Cleanup(func() { _ = rig.Client.NetworkRemove(context.Background(), n.ID) })
		c, err := rig.Client.ConfigCreate(ctx, swarm.ConfigSpec{
			Annotations: swarm.Annotations{Name: rig.Name("sweep-" + tt.name), Labels: lbl},
			Data:        []byte("x"),
		})
		if err != nil {
			t.Fatalf("create config: %v", err)
		}
		t.Cleanup(func() { _ = rig.Client.ConfigRemove(context.Background(), c.ID) })
		ids[i] = created{network: n.ID, config: c.ID}
	}

	sweep(ctx, rig.Client)

	for i, tt := range tests {
		_, err := rig.Client.NetworkInspect(ctx, ids[i].network, network.InspectOptions{})
		if gone := errdefsNotFound(err); gone != tt.wantGone {
			t.Errorf("%s pid %d: network gone = %v (err %v), want %v", tt.name, tt.pid, gone, err, tt.wantGone)
		}
		_, _, err = rig.Client.ConfigInspectWithRaw(ctx, ids[i].config)
		if gone := errdefsNotFound(err); gone != tt.wantGone {
			t.Errorf("%s pid %d: config gone = %v (err %v), want %v", tt.name, tt.pid, gone, err, tt.wantGone)
		}
	}
}

func TestTaskIP(t *testing.T) {
	task := swarm.Task{NetworksAttachments: []swarm.NetworkAttachment{
		{Network: swarm.Network{ID: "n1", Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "front"}}},
			Addresses: []string{"fd00::5/64", "10.0.1.5/24"}},
		{Network: swarm.Network{ID: "n2"}, Addresses: []string{"10.0.2.7/24"}},
	}}
	tests := []struct {
		name    string
		network string
		want    string
	}{
		{name: "by id skips IPv6", network: "n1", want: "10.0.1.5"},
		{name: "by name", network: "front", want: "10.0.1.5"},
		{name: "second network", network: "n2", want: "10.0.2.7"},
		{name: "not attached", network: "n3", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TaskIP(task, tt.network); got != tt.want {
				t.Errorf("TaskIP(%q) = %q, want %q", tt.network, got, tt.want)
			}
		})
	}
}
