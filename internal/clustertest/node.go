//go:build linux

package clustertest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// HostPort returns the node's address with port, e.g. "10.213.3.11:80": where
// the host reaches a port a service publishes in host mode on this node.
func (n *Node) HostPort(port int) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(port))
}

// URL returns "http://<node address>:<port>".
func (n *Node) URL(port int) string {
	return "http://" + n.HostPort(port)
}

// NetnsPath returns the path of the node's network namespace, for
// nsenter --net=<path>.
func (n *Node) NetnsPath() string {
	return "/run/netns/" + n.Netns
}

// Command returns a command that runs name with args inside the node's network
// namespace (through nsenter), e.g. to reach the node's own containers on its
// docker_gwbridge, or to inspect its interfaces and iptables rules.
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.NetnsPath(), "--", name}, args...)...)
}

// runTimeout bounds Run.
const runTimeout = time.Minute

// Run runs name with args inside the node's network namespace and returns its
// combined output; it fails the test when the command fails or runs over a
// minute.
func (n *Node) Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("clustertest: on %s: %s %v: %v: %s", n.Name, name, args, err, out)
	}
	return out
}

func (n *Node) String() string {
	return fmt.Sprintf("%s (%s, %s)", n.Name, n.Role, n.Addr)
}
