//go:build linux

package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a cluster leaves on the machine is found by name: this file lists it, for
// teardown, for the sweep of dead clusters, for allocation, and for the tests
// that check teardown left nothing.

// netnsNames returns the names in /run/netns that belong to cluster k (k = 0:
// to any cluster).
func netnsNames(k int) []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if owned(e.Name(), k) {
			out = append(out, e.Name())
		}
	}
	return out
}

// linkNames returns the host's links (bridge, veths) that belong to cluster k.
func linkNames(k int) []string {
	entries, _ := os.ReadDir("/sys/class/net")
	var out []string
	for _, e := range entries {
		if owned(e.Name(), k) {
			out = append(out, e.Name())
		}
	}
	return out
}

// forwardRulesOf returns the iptables FORWARD rules that name a bridge of
// cluster k, as printed by iptables -S.
func forwardRulesOf(k int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := output(ctx, "iptables", "-w", "-S", "FORWARD")
	if err != nil {
		return []string{err.Error()}
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "sicbr") && owned(f, k) {
				rules = append(rules, line)
				break
			}
		}
	}
	return rules
}

// cgroupDirs returns the top-level cgroup directories of cluster k's nodes in
// every mounted hierarchy (v1 or v2).
func cgroupDirs(k int) []string {
	var out []string
	for _, m := range mounts() {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		entries, _ := os.ReadDir(m.point)
		for _, e := range entries {
			if e.IsDir() && owned(e.Name(), k) {
				out = append(out, filepath.Join(m.point, e.Name()))
			}
		}
	}
	return out
}

// mountsUnder returns the mount points under dir, innermost (latest) first.
func mountsUnder(dir string) []string {
	var out []string
	for _, m := range mounts() {
		if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
			out = append(out, m.point)
		}
	}
	slices.Reverse(out)
	return out
}

type mount struct{ point, fstype string }

// mounts parses /proc/self/mountinfo, in mount order.
func mounts() []mount {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []mount
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, mount{point: unescape(fields[4]), fstype: fields[sep+1]})
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// processes returns the pids of cluster k's processes: its engines, their
// containerd and shims (command line under the cluster's directory, or in one of
// its namespaces) and the containers (in its cgroups).
func processes(k int) []int {
	dir := []byte(clusterDir(k) + "/")
	cgroup := []byte(":/" + fmt.Sprintf("sic%d-n", k))
	type nsID struct{ dev, ino uint64 }
	netns := map[nsID]bool{}
	for _, name := range netnsNames(k) {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/run/netns", name), &st) == nil {
			netns[nsID{st.Dev, st.Ino}] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		proc := filepath.Join("/proc", e.Name())
		cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
		cgroups, _ := os.ReadFile(filepath.Join(proc, "cgroup"))
		var st syscall.Stat_t
		inNetns := syscall.Stat(filepath.Join(proc, "ns", "net"), &st) == nil && netns[nsID{st.Dev, st.Ino}]
		if inNetns || bytes.Contains(cmdline, dir) || bytes.Contains(cgroups, cgroup) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// leftovers describes everything of cluster k that still exists on the machine.
func leftovers(k int) []string {
	var out []string
	add := func(kind string, names []string) {
		for _, n := range names {
			out = append(out, kind+" "+n)
		}
	}
	add("netns", netnsNames(k))
	add("link", linkNames(k))
	add("iptables rule", forwardRulesOf(k))
	add("cgroup", cgroupDirs(k))
	add("mount", mountsUnder(clusterDir(k)))
	for _, pid := range processes(k) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("process %d %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	if _, err := os.Stat(clusterDir(k)); err == nil {
		out = append(out, "directory "+clusterDir(k))
	}
	return out
}

// clustersOnMachine returns the numbers of the clusters that have a directory or
// any namespace, link, rule or cgroup on the machine.
func clustersOnMachine() map[int]bool {
	found := map[int]bool{}
	var names []string
	names = append(names, netnsNames(0)...)
	names = append(names, linkNames(0)...)
	names = append(names, cgroupDirs(0)...)
	for _, rule := range forwardRulesOf(0) {
		names = append(names, strings.Fields(rule)...)
	}
	for _, name := range names {
		if k := clusterOf(filepath.Base(name)); k > 0 {
			found[k] = true
		}
	}
	entries, _ := os.ReadDir(baseDir)
	for _, e := range entries {
		if k, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			found[k] = true
		}
	}
	return found
}

// owned reports whether name is one of cluster k's names (k = 0: any cluster's).
func owned(name string, k int) bool {
	got := clusterOf(name)
	return got > 0 && (k == 0 || got == k)
}
