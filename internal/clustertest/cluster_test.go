//go:build linux

package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// echo is the part of testbackend's "/" JSON these tests read.
type echo struct {
	Hostname   string `json:"hostname"`
	RemoteAddr string `json:"remote_addr"`
}

// TestCluster brings up the default cluster (two managers, one worker) and
// checks the nodes, overlay traffic between every pair of nodes (and that a
// capture sees it), tasks reaching the host, cutting and restoring a node's
// link, and that teardown leaves nothing behind.
func TestCluster(t *testing.T) {
	gate(t)
	var k int
	t.Run("up", func(t *testing.T) {
		c := Start(t, Options{})
		k = c.k
		t.Run("nodes", func(t *testing.T) { testNodes(t, c) })

		img := c.BackendImage(t)
		ovl := c.Network(t, "overlay")
		svc := c.CreateService(t, swarm.ServiceSpec{
			Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: img, Env: []string{"FETCH_ALLOW=" + ovl.Subnet + "," + c.HostAddr.String() + "/32"}},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: ovl.ID}},
			},
			EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
				Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: 80,
				PublishMode: swarm.PortConfigPublishModeHost,
			}}},
		})
		tasks := c.TasksByNode(t, c.WaitTasks(t, svc, len(c.Nodes)))
		for _, n := range c.Nodes {
			if len(tasks[n]) != 1 {
				t.Fatalf("node %s runs %d tasks of the global service, want 1", n, len(tasks[n]))
			}
		}
		// The inventory that teardown relies on sees the live cluster.
		left := strings.Join(leftovers(k), "\n")
		for _, kind := range []string{"netns ", "link ", "iptables rule ", "cgroup ", "process ", "directory "} {
			if !strings.Contains(left, kind) {
				t.Errorf("no %q in the inventory of the live cluster %d:\n%s", kind, k, left)
			}
		}
		t.Run("overlay across nodes", func(t *testing.T) { testOverlay(t, c, ovl, tasks) })
		t.Run("capture", func(t *testing.T) { testCapture(t, c, ovl, tasks) })
		t.Run("tasks reach the host", func(t *testing.T) { testHost(t, c) })
		t.Run("cut and restore", func(t *testing.T) { testCut(t, c, ovl, tasks) })
	})
	if k == 0 {
		return // Start failed before it had a cluster; "up" says why
	}
	if left := leftovers(k); len(left) > 0 {
		t.Errorf("teardown of cluster %d left:\n%s", k, strings.Join(left, "\n"))
	}
}

// testNodes checks each node as the Swarm, its own engine and its namespace
// see it.
func testNodes(t *testing.T, c *Cluster) {
	want := []swarm.NodeRole{swarm.NodeRoleManager, swarm.NodeRoleManager, swarm.NodeRoleWorker}
	if got := len(c.Nodes); got != len(want) {
		t.Fatalf("%d nodes, want %d", got, len(want))
	}
	ctx := t.Context()
	list, err := c.Manager().Client.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatalf("node list: %v", err)
	}
	if len(list) != len(c.Nodes) {
		t.Errorf("the Swarm has %d nodes, want %d", len(list), len(c.Nodes))
	}
	for i, n := range c.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			if n.Role != want[i] {
				t.Errorf("Role = %s, want %s", n.Role, want[i])
			}
			j := slices.IndexFunc(list, func(sn swarm.Node) bool { return sn.ID == n.ID })
			if j < 0 {
				t.Fatalf("node %s (%s) not in the Swarm's list", n.Name, n.ID)
			}
			sn := list[j]
			if sn.Status.State != swarm.NodeStateReady || sn.Spec.Role != n.Role || sn.Description.Hostname != n.Name || sn.Status.Addr != n.Addr.String() {
				t.Errorf("Swarm sees state %s, role %s, hostname %q, address %s; want ready, %s, %q, %s",
					sn.Status.State, sn.Spec.Role, sn.Description.Hostname, sn.Status.Addr, n.Role, n.Name, n.Addr)
			}
			info, err := n.Client.Info(ctx)
			if err != nil {
				t.Fatalf("info: %v", err)
			}
			if info.Swarm.NodeID != n.ID || info.Swarm.ControlAvailable != (n.Role == swarm.NodeRoleManager) {
				t.Errorf("engine says node %s, manager %v; want %s, %v", info.Swarm.NodeID, info.Swarm.ControlAvailable, n.ID, n.Role == swarm.NodeRoleManager)
			}
			if !strings.HasSuffix(n.DockerHost, "/docker.sock") || !strings.HasPrefix(n.DockerHost, "unix://"+baseDir+"/") {
				t.Errorf("DockerHost = %q", n.DockerHost)
			}
			if route := strings.TrimSpace(string(n.Run(t, "ip", "-4", "route", "show", "default"))); route != "" {
				t.Errorf("namespace %s has a default route: %s", n.Netns, route)
			}
			if addrs := string(n.Run(t, "ip", "-4", "-o", "addr", "show", "dev", "eth0")); !strings.Contains(addrs, " "+n.Addr.String()+"/") {
				t.Errorf("eth0 in %s does not hold %s: %s", n.Netns, n.Addr, addrs)
			}
			// What a container that mounts /var/run/docker.sock reaches: its
			// engine resolves the path in its own mount namespace.
			if name := engineSocketName(t, n); name != n.Name {
				t.Errorf("/var/run/docker.sock in %s's mount namespace is the engine of %q, want its own", n.Name, name)
			}
		})
	}
}

// testOverlay GETs each node's published port from the host, then has each
// node's task fetch every other node's task by its overlay address: the answer
// names the target task's container and the source task's overlay address.
func testOverlay(t *testing.T, c *Cluster, ovl swarmtest.Network, tasks map[*Node][]swarm.Task) {
	for _, a := range c.Nodes {
		got := getEcho(t, a.URL(80)+"/")
		if want := shortID(tasks[a][0]); got.Hostname != want {
			t.Errorf("%s:80 answered from container %q, want its own task's %q", a.Name, got.Hostname, want)
		}
		for _, b := range c.Nodes {
			if a == b {
				continue
			}
			target := "http://" + swarmtest.TaskIP(tasks[b][0], ovl.ID) + "/"
			got := getEcho(t, a.URL(80)+"/fetch?url="+url.QueryEscape(target))
			from, _, _ := net.SplitHostPort(got.RemoteAddr)
			if want := shortID(tasks[b][0]); got.Hostname != want || from != swarmtest.TaskIP(tasks[a][0], ovl.ID) {
				t.Errorf("%s → %s over the overlay: answered by %q from %s; want %q from %s",
					a.Name, b.Name, got.Hostname, got.RemoteAddr, want, swarmtest.TaskIP(tasks[a][0], ovl.ID))
			}
		}
	}
}

// testCapture captures while a manager's task fetches a path from the worker's
// task: the inner request line, which only the overlay carries (the host asks
// for /fetch), is in the capture.
func testCapture(t *testing.T, c *Cluster, ovl swarmtest.Network, tasks map[*Node][]swarm.Task) {
	worker, manager := c.Workers()[0], c.Managers()[0]
	marker := fmt.Sprintf("capture-marker-%d", time.Now().UnixNano())
	capture := c.Capture(t)
	target := "http://" + swarmtest.TaskIP(tasks[worker][0], ovl.ID) + "/" + marker
	getEcho(t, manager.URL(80)+"/fetch?url="+url.QueryEscape(target))
	frames := capture.Stop()
	if want := "GET /" + marker + " HTTP/1.1"; !bytes.Contains(frames, []byte(want)) {
		t.Errorf("%q not in the %d bytes captured", want, len(frames))
	}
}

// testHost has each node's task fetch from a server the test runs on the
// host's bridge address (as an ACME server for the nodes would).
func testHost(t *testing.T, c *Cluster) {
	l, err := net.Listen("tcp4", net.JoinHostPort(c.HostAddr.String(), "0"))
	if err != nil {
		t.Fatalf("listen on the bridge address: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "from the host")
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	for _, n := range c.Nodes {
		body := swarmtest.WaitHTTP(t, n.URL(80)+"/fetch?url="+url.QueryEscape(srv.URL+"/"), http.StatusOK)
		if string(body) != "from the host" {
			t.Errorf("%s's task fetched %q from the host, want %q", n.Name, body, "from the host")
		}
	}
}

// testCut cuts the worker's link: its published port stops answering while a
// manager's still does, and Swarm marks the worker down; after Restore the
// worker is Ready again, its port answers and a manager's task reaches the
// worker's task over the overlay.
func testCut(t *testing.T, c *Cluster, ovl swarmtest.Network, tasks map[*Node][]swarm.Task) {
	worker, manager := c.Workers()[0], c.Managers()[0]
	worker.Cut(t)
	// No answer can come through a link that is down, however long we wait;
	// 3 s only bounds how long the test waits to see it.
	if conn, err := net.DialTimeout("tcp", worker.HostPort(80), 3*time.Second); err == nil {
		conn.Close()
		t.Errorf("dialled %s through a cut link", worker.HostPort(80))
	}
	getEcho(t, manager.URL(80)+"/")
	t.Logf("Swarm marked %s down %v after the cut and the checks", worker.Name, c.WaitNodeState(t, worker, swarm.NodeStateDown).Round(time.Millisecond))
	worker.Restore(t)
	t.Logf("%s Ready %v after Restore", worker.Name, c.WaitNodeState(t, worker, swarm.NodeStateReady).Round(time.Millisecond))

	// Swarm may have replaced the worker's task meanwhile: ask again.
	var task swarm.Task
	for _, tk := range c.WaitTasks(t, tasks[worker][0].ServiceID, len(c.Nodes)) {
		if tk.NodeID == worker.ID {
			task = tk
		}
	}
	if task.ID == "" {
		t.Fatalf("no running task on %s after Restore", worker.Name)
	}
	if got := getEcho(t, worker.URL(80)+"/"); got.Hostname != shortID(task) {
		t.Errorf("%s:80 answered from %q after Restore, want its task's %q", worker.Name, got.Hostname, shortID(task))
	}
	// The overlay between the nodes comes back after Docker's nodes re-sync
	// their peer tables, which took over 30 s once on this machine: a hang
	// guard of 2 minutes, not a goal.
	target := "http://" + swarmtest.TaskIP(task, ovl.ID) + "/"
	if got := decodeEcho(t, swarmtest.WaitHTTPWithin(t, manager.URL(80)+"/fetch?url="+url.QueryEscape(target), "", http.StatusOK, 2*time.Minute)); got.Hostname != shortID(task) {
		t.Errorf("%s → %s after Restore: answered by %q, want %q", manager.Name, worker.Name, got.Hostname, shortID(task))
	}
	if task.ID != tasks[worker][0].ID {
		t.Logf("Swarm replaced the worker's task %s with %s", tasks[worker][0].ID, task.ID)
	}
}

// engineSocketName runs `docker info` on /var/run/docker.sock in the mount
// namespace of the node's engine and returns the engine's name (its hostname).
func engineSocketName(t *testing.T, n *Node) string {
	t.Helper()
	pid, err := os.ReadFile(n.pidFile())
	if err != nil {
		t.Fatalf("pidfile of %s: %v", n.Name, err)
	}
	cmd := exec.CommandContext(t.Context(), "nsenter", "--mount=/proc/"+strings.TrimSpace(string(pid))+"/ns/mnt", "--",
		"docker", "--host", "unix:///var/run/docker.sock", "info", "--format", "{{.Name}}")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker info in %s's mount namespace: %v: %s", n.Name, err, out)
	}
	return strings.TrimSpace(string(out))
}

func getEcho(t *testing.T, u string) echo {
	t.Helper()
	return decodeEcho(t, swarmtest.WaitHTTP(t, u, http.StatusOK))
}

func decodeEcho(t *testing.T, body []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not the backend's echo: %v: %s", err, body)
	}
	return e
}

// shortID is the hostname Docker gives a task's container.
func shortID(task swarm.Task) string {
	id := task.Status.ContainerStatus.ContainerID
	return id[:min(12, len(id))]
}

func TestClusterOf(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{name: bridgeName(3), want: 3},
		{name: nodeName(12, 2), want: 12},
		{name: vethName(254, 7), want: 254},
		{name: vethName(9, 1) + "p", want: 9},
		{name: "sicbr0", want: 0},
		{name: "sicbr255", want: 0},
		{name: "sic3", want: 0},
		{name: "sic3-n", want: 0},
		{name: "sicbr3x", want: 0},
		{name: "docker0", want: 0},
		{name: "sic", want: 0},
		{name: "sic03-n1", want: 0},
		{name: "sic3-n10", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clusterOf(tt.name); got != tt.want {
				t.Errorf("clusterOf(%q) = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

// FuzzClusterOf checks that a name is attributed to cluster k only when it is
// exactly one of the names the rig gives cluster k's resources.
func FuzzClusterOf(f *testing.F) {
	for _, s := range []string{"sicbr3", "sic3-n1", "sic3n1", "sic3n1p", "sic03-n1", "sicbr", "eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		k := clusterOf(name)
		if k == 0 {
			return
		}
		if name == bridgeName(k) {
			return
		}
		for i := 1; i <= 9; i++ {
			if name == nodeName(k, i) || name == vethName(k, i) || name == vethName(k, i)+"p" {
				return
			}
		}
		t.Errorf("clusterOf(%q) = %d, but that is not one of its names", name, k)
	})
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: `/tmp/a`, want: "/tmp/a"},
		{in: `/tmp/a\040b`, want: "/tmp/a b"},
		{in: `/tmp/a\134b`, want: `/tmp/a\b`},
		{in: `/tmp/a\`, want: `/tmp/a\`},
		{in: `/tmp/a\9`, want: `/tmp/a\9`},
	}
	for _, tt := range tests {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzUnescape checks that unescape inverts the escaping mountinfo applies to
// space, tab, newline and backslash.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"/tmp/a b", "a\\b", "\t\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		escaped := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(s)
		if got := unescape(escaped); got != s {
			t.Errorf("unescape(%q) = %q, want %q", escaped, got, s)
		}
	})
}
