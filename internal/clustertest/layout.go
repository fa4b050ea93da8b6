//go:build linux

package clustertest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/swarm"
)

// baseDir holds one directory per cluster (named by its number k) and the lock
// that serialises allocation and sweeping across test processes.
const baseDir = "/tmp/swarm-ingress-cluster"

// Every cluster's addresses come from 10.213.0.0/16, one /24 per cluster: outside
// Docker's default local pools (172.17-31.x, 192.168.x) so the host's engine never
// picks it, and far into the Swarm overlay pool 10.0.0.0/8, which is handed out
// from 10.0.0.0/24 upwards.
const subnetOctets = "10.213"

func bridgeName(k int) string  { return fmt.Sprintf("sicbr%d", k) }
func nodeName(k, i int) string { return fmt.Sprintf("sic%d-n%d", k, i) }
func vethName(k, i int) string { return fmt.Sprintf("sic%dn%d", k, i) }
func clusterDir(k int) string  { return filepath.Join(baseDir, strconv.Itoa(k)) }
func subnet(k int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("%s.%d.0/24", subnetOctets, k))
}
func hostAddr(k int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("%s.%d.1", subnetOctets, k)) }
func nodeAddr(k, i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("%s.%d.%d", subnetOctets, k, 10+i))
}

func newNode(k, i int, role swarm.NodeRole) *Node {
	dir := filepath.Join(clusterDir(k), fmt.Sprintf("n%d", i))
	return &Node{
		Name:       nodeName(k, i),
		Role:       role,
		Addr:       nodeAddr(k, i),
		Netns:      nodeName(k, i),
		Veth:       vethName(k, i),
		DockerHost: "unix://" + filepath.Join(dir, "docker.sock"),
		LogFile:    filepath.Join(dir, "dockerd.log"),
		dir:        dir,
	}
}

// namePattern matches the names above: bridge, namespace, veth and its peer
// (at most 9 nodes, see maxNodes).
var namePattern = regexp.MustCompile(`^sic(?:br([1-9][0-9]{0,2})|([1-9][0-9]{0,2})(?:-n[1-9]|n[1-9]p?))$`)

// clusterOf returns k when name is one of cluster k's names, else 0.
func clusterOf(name string) int {
	m := namePattern.FindStringSubmatch(name)
	if m == nil {
		return 0
	}
	k, err := strconv.Atoi(m[1] + m[2])
	if err != nil || k < 1 || k > 254 {
		return 0
	}
	return k
}

// lock takes the cross-process lock of baseDir and returns its release.
func lock() (func(), error) {
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", baseDir, err)
	}
	f, err := os.OpenFile(filepath.Join(baseDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// allocate picks the first k whose directory does not exist and whose names and
// subnet are unused, and claims it by creating the directory with an owner file
// naming this process.
func allocate() (int, error) {
	unlock, err := lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	used := clustersOnMachine()
	for k := 1; k <= 254; k++ {
		if used[k] || subnetInUse(subnet(k)) {
			continue
		}
		if err := os.Mkdir(clusterDir(k), 0o755); err != nil {
			return 0, fmt.Errorf("create %s: %w", clusterDir(k), err)
		}
		if err := os.WriteFile(ownerFile(k), []byte(selfOwner()), 0o644); err != nil {
			return 0, fmt.Errorf("write owner of cluster %d: %w", k, err)
		}
		return k, nil
	}
	return 0, errors.New("no free cluster number in 1-254")
}

// subnetInUse reports whether an address of the host lies in p (someone else's
// network there would make the cluster's addresses ambiguous).
func subnetInUse(p netip.Prefix) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipnet.IP); ok && p.Contains(ip.Unmap()) {
				return true
			}
		}
	}
	return false
}

func ownerFile(k int) string { return filepath.Join(clusterDir(k), "owner") }

// An owner is "<pid> <start time>": the start time (field 22 of /proc/<pid>/stat)
// tells a live owner from a new process that reuses its pid.
func selfOwner() string {
	return owner(os.Getpid())
}

func owner(pid int) string {
	return fmt.Sprintf("%d %s", pid, startTime(pid))
}

func startTime(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// ownerAlive reports whether the process that claimed cluster k still runs.
func ownerAlive(k int) bool {
	b, err := os.ReadFile(ownerFile(k))
	if err != nil {
		return false
	}
	pidStr, _, _ := strings.Cut(string(b), " ")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || startTime(pid) == "" {
		return false
	}
	return owner(pid) == string(b)
}
