//go:build linux

package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"golang.org/x/sync/errgroup"
)

// startEngines starts every node's dockerd at once and waits until each answers.
func (c *Cluster) startEngines(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range c.Nodes {
		g.Go(func() error { return n.startEngine(ctx) })
	}
	return g.Wait()
}

// dockerdArgs are the engine's flags: everything it owns lives under the node's
// directory, it ignores the host's /etc/docker/daemon.json, and its containers go
// to a cgroup of their own, so that teardown finds all of it. It listens on the
// node's socket and, inside its own mount namespace, on /var/run/docker.sock.
// No default bridge (docker0): Swarm tasks use overlays and docker_gwbridge.
func (n *Node) dockerdArgs() []string {
	return []string{
		"--config-file", filepath.Join(n.dir, "daemon.json"),
		"--data-root", filepath.Join(n.dir, "data"),
		"--exec-root", filepath.Join(n.dir, "run"),
		"--pidfile", n.pidFile(),
		"--host", n.DockerHost,
		"--host", "unix:///var/run/docker.sock",
		"--cgroup-parent", "/" + n.Name,
		"--bridge=none",
		"--userland-proxy=false",
		"--shutdown-timeout", "2",
	}
}

// privateRun mounts an empty /run (and /var/run, where it is not a link to
// /run) in the engine's mount namespace. The engine unlinks its socket paths
// before listening: without this, it would remove the host's
// /var/run/docker.sock.
const privateRun = `mount -t tmpfs -o mode=755 tmpfs /run && { [ -L /var/run ] || mount -t tmpfs -o mode=755 tmpfs /var/run; }`

func (n *Node) pidFile() string { return filepath.Join(n.dir, "dockerd.pid") }

// startEngine runs dockerd in the node's network namespace (nsenter --net, not
// `ip netns exec`, which remounts /sys and hides the cgroup hierarchy), in a UTS
// namespace of its own (its own hostname) and in a mount namespace of its own
// with an empty /run: there /var/run/docker.sock is the node's engine, so a
// service that mounts the Docker socket gets its own node's engine, not the
// host's. The engine's mounts stay in that namespace and go with it.
func (n *Node) startEngine(ctx context.Context) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	logFile, err := os.Create(n.LogFile)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	defer logFile.Close()
	args := append([]string{
		"--net=" + n.NetnsPath(), "--",
		"unshare", "--mount", "--uts", "--propagation", "slave", "--",
		"sh", "-c", privateRun + ` && hostname "$0" && exec "$@"`, n.Name,
		"dockerd",
	}, n.dockerdArgs()...)
	// Not CommandContext: the engine outlives ctx; teardown stops it.
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %s: start dockerd: %w", n.Name, err)
	}
	n.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()

	n.Client, err = client.NewClientWithOpts(client.WithHost(n.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("node %s: docker client: %w", n.Name, err)
	}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if _, err := n.Client.Ping(ctx); err == nil {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node %s: dockerd exited; end of %s:\n%s", n.Name, n.LogFile, n.logTail())
		case <-ctx.Done():
			return fmt.Errorf("node %s: dockerd did not answer on %s: %w; end of %s:\n%s", n.Name, n.DockerHost, ctx.Err(), n.LogFile, n.logTail())
		case <-ticker.C:
		}
	}
}

// logTail returns the last lines of the engine's log.
func (n *Node) logTail() string {
	b, err := os.ReadFile(n.LogFile)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// formSwarm initialises the Swarm on the first node, joins the other managers
// one by one (each join changes the Raft membership) and the workers at once,
// and waits until every node is Ready with its role.
func (c *Cluster) formSwarm(ctx context.Context) error {
	first := c.Nodes[0]
	_, err := first.Client.SwarmInit(ctx, swarm.InitRequest{
		ListenAddr:    "0.0.0.0:2377",
		AdvertiseAddr: first.Addr.String(),
	})
	if err != nil {
		return fmt.Errorf("swarm init on %s: %w", first.Name, err)
	}
	sw, err := first.Client.SwarmInspect(ctx)
	if err != nil {
		return fmt.Errorf("swarm inspect on %s: %w", first.Name, err)
	}
	join := func(n *Node) error {
		token := sw.JoinTokens.Worker
		if n.Role == swarm.NodeRoleManager {
			token = sw.JoinTokens.Manager
		}
		err := n.Client.SwarmJoin(ctx, swarm.JoinRequest{
			ListenAddr:    "0.0.0.0:2377",
			AdvertiseAddr: n.Addr.String(),
			RemoteAddrs:   []string{first.Addr.String() + ":2377"},
			JoinToken:     token,
		})
		if err != nil {
			return fmt.Errorf("swarm join of %s: %w", n.Name, err)
		}
		return nil
	}
	for _, n := range c.Managers()[1:] {
		if err := join(n); err != nil {
			return err
		}
	}
	var g errgroup.Group
	for _, n := range c.Workers() {
		g.Go(func() error { return join(n) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		info, err := n.Client.Info(ctx)
		if err != nil {
			return fmt.Errorf("info of %s: %w", n.Name, err)
		}
		n.ID = info.Swarm.NodeID
	}
	return c.waitReady(ctx)
}

// waitReady polls the node list on the first manager until every node is Ready
// and Active with the role it was given.
func (c *Cluster) waitReady(ctx context.Context) error {
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var last string
	for {
		nodes, err := c.Nodes[0].Client.NodeList(ctx, swarm.NodeListOptions{})
		if err == nil {
			last = c.notReady(nodes)
			if last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not ready: %w; last: %s", ctx.Err(), last)
		case <-ticker.C:
		}
	}
}

// notReady describes the first node that is not yet Ready with its role, or
// returns "" when all are.
func (c *Cluster) notReady(nodes []swarm.Node) string {
	byID := make(map[string]swarm.Node, len(nodes))
	for _, sn := range nodes {
		byID[sn.ID] = sn
	}
	for _, n := range c.Nodes {
		sn, ok := byID[n.ID]
		switch {
		case !ok:
			return fmt.Sprintf("%s (%s) not in the node list", n.Name, n.ID)
		case sn.Status.State != swarm.NodeStateReady:
			return fmt.Sprintf("%s is %s", n.Name, sn.Status.State)
		case sn.Spec.Role != n.Role:
			return fmt.Sprintf("%s has role %s, want %s", n.Name, sn.Spec.Role, n.Role)
		case n.Role == swarm.NodeRoleManager && (sn.ManagerStatus == nil || sn.ManagerStatus.Reachability != swarm.ReachabilityReachable):
			return fmt.Sprintf("manager %s not reachable yet", n.Name)
		}
	}
	return ""
}
