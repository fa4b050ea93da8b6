//go:build linux

// Package clustertest runs a real multi-node Docker Swarm on this one machine for
// tests: extra Docker engines (two managers and one worker by default), each in
// its own network namespace on a private Linux bridge, joined into a Swarm of
// their own. The host's engine and its single-node Swarm are not touched.
//
// Layout of cluster k (1-254, the first free one):
//
//	bridge sicbr<k>  10.213.<k>.1/24 on the host (HostAddr)
//	node i           netns sic<k>-n<i>, address 10.213.<k>.<10+i> on its eth0,
//	                 host end of its veth sic<k>n<i>, hostname sic<k>-n<i>
//	engine i         dockerd started with nsenter --net=/run/netns/sic<k>-n<i>, in a
//	                 mount namespace of its own where /var/run/docker.sock is its
//	                 socket (a service that mounts the socket gets its node's engine);
//	                 data, exec root, pidfile, socket and log under
//	                 /tmp/swarm-ingress-cluster/<k>/n<i>/, cgroup parent /sic<k>-n<i>
//
// The namespaces have no default route: the engines reach nothing but each other
// and the host, so every image is loaded from the host's engine (LoadImage).
// Two iptables rules accept forwarding on the bridge (Docker's FORWARD policy is
// DROP); Swarm's ports (2377, 7946, VXLAN 4789) then pass between the nodes.
//
// A test typically does:
//
//	c := clustertest.Start(t, clustertest.Options{})  // ~7 s here
//	img := c.BackendImage(t)                          // or c.IngressImage(t), c.LoadImage(t, ref)
//	ovl := c.Network(t, "front")
//	id := c.CreateService(t, swarm.ServiceSpec{...})  // e.g. global, port 80 published in host mode
//	tasks := c.TasksByNode(t, c.WaitTasks(t, id, len(c.Nodes)))
//	w := c.Workers()[0]
//	swarmtest.WaitHTTP(t, w.URL(80)+"/", 200)         // the worker's published port, from the host
//	w.Cut(t)                                          // its link down; w.Restore(t) brings it back
//	cp := c.Capture(t); ...; frames := cp.Stop()      // what crossed the nodes' links, VXLAN included
//
// Everything is torn down in t.Cleanup, even when the test fails: processes are
// killed, mounts detached, namespaces, links, rules, cgroups and files removed.
// Leftovers of a killed test process are swept at the next Start.
//
// Multi-node tests are slow and need root, so they run only when the environment
// variable SWARM_INGRESS_CLUSTER=1 is set (`make test-cluster`); otherwise Start
// skips the test, as does `go test -short`. By convention their names start with
// TestCluster, which is what `make test-cluster` runs in every package. When the
// variable is set and something is missing (root, ip, iptables, nsenter,
// unshare, dockerd), Start fails the test with what to install
// (scripts/ensure-cluster-tools.sh installs it).
package clustertest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// EnvGate is the environment variable that enables multi-node tests ("1").
const EnvGate = "SWARM_INGRESS_CLUSTER"

// startTimeout bounds Start from the first namespace to the last node Ready.
const startTimeout = 3 * time.Minute

// Options configures Start. The zero value is two managers and one worker.
type Options struct {
	Managers int      // at least 1 when Workers is set; at most 7 nodes in all
	Workers  int      // worker nodes
	Images   []string // images of the host's engine loaded on every node before Start returns
}

// maxNodes bounds the size of a cluster (two cores).
const maxNodes = 7

// Cluster is a running Swarm of extra engines.
type Cluster struct {
	Nodes    []*Node      // managers first; Nodes[0] initialised the Swarm
	Bridge   string       // the host's bridge, e.g. "sicbr3"
	Subnet   netip.Prefix // the bridge's subnet, e.g. 10.213.3.0/24
	HostAddr netip.Addr   // the host's address on the bridge, e.g. 10.213.3.1; tasks reach a server listening on it

	k      int
	dir    string
	host   *client.Client // the host's engine, source of the images
	seq    atomic.Int64
	loadMu sync.Mutex
	loaded map[string]bool
}

// Node is one engine of the cluster.
type Node struct {
	Name       string         // hostname and Swarm hostname, e.g. "sic3-n1"
	Role       swarm.NodeRole // swarm.NodeRoleManager or swarm.NodeRoleWorker
	ID         string         // Swarm node ID
	Addr       netip.Addr     // address on the bridge, reachable from the host
	Netns      string         // network namespace name, under /run/netns
	Veth       string         // host end of its link (Cut and Restore set it down and up)
	DockerHost string         // e.g. "unix:///tmp/swarm-ingress-cluster/3/n1/docker.sock"
	Client     *client.Client // on DockerHost, API version negotiated
	LogFile    string         // the engine's log

	dir    string
	cutMu  sync.Mutex
	isCut  bool
	exited chan struct{} // closed when the dockerd this process started exits
}

// Start brings up a cluster and registers its teardown with t.Cleanup. It skips
// the test unless SWARM_INGRESS_CLUSTER=1 (and under -short), and fails it with
// the reason when the cluster cannot be built.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if os.Getenv(EnvGate) != "1" {
		t.Skipf("multi-node test: set %s=1 to run it (make test-cluster)", EnvGate)
	}
	host := swarmtest.New(t) // skips under -short; makes sure the host's engine runs
	managers, workers, err := opts.counts()
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	if err := checkTools(); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	for _, line := range sweepOnce() {
		t.Logf("clustertest: sweep: %s", line)
	}

	began := time.Now()
	k, err := allocate()
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	c := &Cluster{
		Bridge:   bridgeName(k),
		Subnet:   subnet(k),
		HostAddr: hostAddr(k),
		k:        k,
		dir:      clusterDir(k),
		host:     host.Client,
		loaded:   map[string]bool{},
	}
	for i := 1; i <= managers+workers; i++ {
		role := swarm.NodeRoleManager
		if i > managers {
			role = swarm.NodeRoleWorker
		}
		c.Nodes = append(c.Nodes, newNode(k, i, role))
	}
	t.Cleanup(func() { c.teardown(t) })

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	phases, err := c.start(ctx)
	if err != nil {
		t.Fatalf("clustertest: start cluster %d: %v", k, err)
	}
	t.Logf("clustertest: cluster %d (%d managers, %d workers) up in %v (%s)", k, managers, workers, time.Since(began).Round(time.Millisecond), phases)
	for _, ref := range opts.Images {
		c.LoadImage(t, ref)
	}
	return c
}

func (o Options) counts() (managers, workers int, err error) {
	managers, workers = o.Managers, o.Workers
	if managers == 0 && workers == 0 {
		managers, workers = 2, 1
	}
	switch {
	case managers < 1 || workers < 0:
		return 0, 0, fmt.Errorf("options: %d managers, %d workers: need at least one manager", managers, workers)
	case managers+workers > maxNodes:
		return 0, 0, fmt.Errorf("options: %d nodes: at most %d", managers+workers, maxNodes)
	}
	return managers, workers, nil
}

// start builds the network, starts the engines and forms the Swarm, and
// says how long each phase took.
func (c *Cluster) start(ctx context.Context) (string, error) {
	var phases []string
	phase := func(name string, f func() error) error {
		began := time.Now()
		err := f()
		phases = append(phases, fmt.Sprintf("%s %v", name, time.Since(began).Round(time.Millisecond)))
		return err
	}
	err := phase("network", func() error {
		if err := c.setupBridge(ctx); err != nil {
			return err
		}
		for _, n := range c.Nodes {
			if err := c.setupNode(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = phase("engines", func() error { return c.startEngines(ctx) })
	}
	if err == nil {
		err = phase("swarm", func() error { return c.formSwarm(ctx) })
	}
	return strings.Join(phases, ", "), err
}

// Managers returns the manager nodes.
func (c *Cluster) Managers() []*Node { return c.byRole(swarm.NodeRoleManager) }

// Workers returns the worker nodes.
func (c *Cluster) Workers() []*Node { return c.byRole(swarm.NodeRoleWorker) }

func (c *Cluster) byRole(role swarm.NodeRole) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Manager returns the first manager whose link is up, through which the
// cluster's helpers talk to the Swarm. Note that with two managers, cutting
// either one loses the Raft quorum: the Swarm then accepts no changes.
func (c *Cluster) Manager() *Node {
	for _, n := range c.Managers() {
		if !n.cut() {
			return n
		}
	}
	return c.Nodes[0]
}

// Node returns the node with the Swarm node ID id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Name returns a name unique within the cluster, "<base>-<n>".
func (c *Cluster) Name(base string) string {
	return fmt.Sprintf("%s-%d", base, c.seq.Add(1))
}
