//go:build linux

package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// tools are the commands the rig runs; checkTools names the package of each.
var tools = []struct{ cmd, pkg string }{
	{"ip", "iproute2"},
	{"iptables", "iptables"},
	{"nsenter", "util-linux"},
	{"unshare", "util-linux"},
	{"mount", "mount"},
	{"hostname", "hostname"},
	{"dockerd", "docker.io"},
}

// checkTools fails with what to install (scripts/ensure-cluster-tools.sh does it)
// when the rig cannot run here.
func checkTools() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("multi-node tests need root (network namespaces, bridges, iptables)"))
	}
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			missing = append(missing, tool.pkg)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing commands; install: apt-get install -y %s (or run scripts/ensure-cluster-tools.sh)", strings.Join(missing, " ")))
	}
	return errors.Join(errs...)
}

// command runs a command to completion; its error carries the combined output.
func command(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// forwardRules are the iptables FORWARD rules that let the nodes reach each
// other across the bridge despite Docker's DROP policy.
func forwardRules(bridge string) [][]string {
	return [][]string{
		{"FORWARD", "-i", bridge, "-j", "ACCEPT"},
		{"FORWARD", "-o", bridge, "-j", "ACCEPT"},
	}
}

func (c *Cluster) setupBridge(ctx context.Context) error {
	steps := [][]string{
		{"ip", "link", "add", c.Bridge, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", c.HostAddr, c.Subnet.Bits()), "dev", c.Bridge},
		{"ip", "link", "set", c.Bridge, "up"},
	}
	for _, rule := range forwardRules(c.Bridge) {
		steps = append(steps, append([]string{"iptables", "-w", "-I"}, rule...))
	}
	for _, s := range steps {
		if err := command(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
	}
	return nil
}

// setupNode makes the node's namespace and its link to the bridge. The
// namespace gets loopback and its address, and no default route.
func (c *Cluster) setupNode(ctx context.Context, n *Node) error {
	peer := n.Veth + "p"
	addr := fmt.Sprintf("%s/%d", n.Addr, c.Subnet.Bits())
	steps := [][]string{
		{"ip", "netns", "add", n.Netns},
		{"ip", "link", "add", n.Veth, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", n.Netns},
		{"ip", "link", "set", n.Veth, "master", c.Bridge, "up"},
		{"ip", "-n", n.Netns, "link", "set", peer, "name", "eth0"},
		{"ip", "-n", n.Netns, "addr", "add", addr, "dev", "eth0"},
		{"ip", "-n", n.Netns, "link", "set", "eth0", "up"},
		{"ip", "-n", n.Netns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := command(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// Cut sets the host end of the node's link down: the node can reach neither the
// host nor the other nodes, and they cannot reach it, until Restore (or the end
// of the test, which restores it). Its engine still answers on DockerHost. Cut
// a worker, or run three managers: with two, cutting one loses the Raft quorum.
func (n *Node) Cut(t testing.TB) {
	t.Helper()
	if err := n.setLink("down"); err != nil {
		t.Fatalf("clustertest: cut %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		if err := n.setLink("up"); err != nil {
			t.Errorf("clustertest: restore %s: %v", n.Name, err)
		}
	})
}

// Restore sets the node's link up again after Cut.
func (n *Node) Restore(t testing.TB) {
	t.Helper()
	if err := n.setLink("up"); err != nil {
		t.Fatalf("clustertest: restore %s: %v", n.Name, err)
	}
}

func (n *Node) setLink(state string) error {
	n.cutMu.Lock()
	defer n.cutMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := command(ctx, "ip", "link", "set", n.Veth, state); err != nil {
		return err
	}
	n.isCut = state == "down"
	return nil
}

func (n *Node) cut() bool {
	n.cutMu.Lock()
	defer n.cutMu.Unlock()
	return n.isCut
}
