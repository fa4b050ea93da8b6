//go:build linux

package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of teardown's waits.
const (
	gracefulStop = 10 * time.Second // dockerd stops its containers (--shutdown-timeout 2) and containerd
	killWait     = 15 * time.Second // SIGKILLed processes disappear
)

// teardown stops the cluster and removes every trace of it. It runs in
// t.Cleanup, after the test's own cleanups; on a failed test it first logs the
// end of each engine's log.
func (c *Cluster) teardown(t testing.TB) {
	t.Helper()
	began := time.Now()
	if t.Failed() {
		for _, n := range c.Nodes {
			t.Logf("clustertest: end of %s's log (%s):\n%s", n.Name, n.LogFile, n.logTail())
		}
	}
	for _, n := range c.Nodes {
		if n.Client != nil {
			_ = n.Client.Close()
		}
	}
	if err := remove(c.k); err != nil {
		t.Errorf("clustertest: teardown of cluster %d: %v", c.k, err)
	}
	// Reap the engines this process started (remove killed them).
	for _, n := range c.Nodes {
		if n.exited != nil {
			select {
			case <-n.exited:
			case <-time.After(killWait):
				t.Errorf("clustertest: dockerd of %s still not reaped after %v", n.Name, killWait)
			}
		}
	}
	t.Logf("clustertest: cluster %d torn down in %v", c.k, time.Since(began).Round(time.Millisecond))
}

// remove stops cluster k's processes and deletes its mounts, namespaces, links,
// rules, cgroups and directory. It is idempotent and goes on after an error, so
// that a half-built or half-removed cluster is removed as far as possible.
func remove(k int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	stopEngines(k)
	note(killAll(k))
	note(unmountAll(clusterDir(k)))
	for _, name := range netnsNames(k) {
		note(command(ctx, "ip", "netns", "del", name))
	}
	// Deleting a namespace deletes the veth ends inside it and so their peers;
	// what is left is the bridge and veths whose namespace never got them.
	for _, name := range linkNames(k) {
		if err := command(ctx, "ip", "link", "del", name); err != nil && slices.Contains(linkNames(k), name) {
			note(err)
		}
	}
	note(deleteRules(ctx, k))
	note(removeCgroups(k))
	note(os.RemoveAll(clusterDir(k)))
	return errors.Join(errs...)
}

// stopEngines asks each engine (by its pidfile) to stop, so that it stops its
// containers and containerd cleanly, and waits a bounded time for them.
func stopEngines(k int) {
	files, _ := filepath.Glob(filepath.Join(clusterDir(k), "n*", "dockerd.pid"))
	var wg sync.WaitGroup
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !slices.Contains(processes(k), pid) {
			continue // gone, or the pid now belongs to another process
		}
		if syscall.Kill(pid, syscall.SIGTERM) != nil {
			continue
		}
		wg.Go(func() {
			deadline := time.Now().Add(gracefulStop)
			for time.Now().Before(deadline) && alive(pid) {
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// killAll SIGKILLs what is left of cluster k's processes until none is left.
func killAll(k int) error {
	deadline := time.Now().Add(killWait)
	for {
		pids := processes(k)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running after SIGKILL: %v", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (a zombie counts as gone).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// unmountAll detaches every mount under dir: the engine's overlay layers, shm,
// network namespaces of its sandboxes and the bind mount of its data root.
func unmountAll(dir string) error {
	for range 5 {
		points := mountsUnder(dir)
		if len(points) == 0 {
			return nil
		}
		for _, p := range points {
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	return nil
}

// deleteRules deletes the FORWARD rules of cluster k's bridge (each may have
// been inserted more than once by a half-failed start).
func deleteRules(ctx context.Context, k int) error {
	bridge := bridgeName(k)
	for _, rule := range forwardRules(bridge) {
		for range 10 {
			if command(ctx, "iptables", append([]string{"-w", "-D"}, rule...)...) != nil {
				break
			}
		}
	}
	if left := forwardRulesOf(k); len(left) > 0 {
		return fmt.Errorf("iptables rules left: %v", left)
	}
	return nil
}

// removeCgroups removes the cgroup directories of cluster k's nodes, deepest
// first (the engines made one per container under them).
func removeCgroups(k int) error {
	var errs []error
	for _, top := range cgroupDirs(k) {
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

var (
	sweepMu   sync.Mutex
	sweptOnce bool
)

// sweepOnce removes, once per test process, the clusters of test processes that
// are gone, and returns what it did.
func sweepOnce() []string {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	if sweptOnce {
		return nil
	}
	sweptOnce = true
	return sweep()
}

// sweep removes every cluster whose owner is dead (or unknown: no directory),
// holding the allocation lock so that no cluster is claimed meanwhile.
func sweep() []string {
	unlock, err := lock()
	if err != nil {
		return []string{err.Error()}
	}
	defer unlock()
	var report []string
	for k := range clustersOnMachine() {
		if ownerAlive(k) {
			continue
		}
		if err := remove(k); err != nil {
			report = append(report, fmt.Sprintf("remove cluster %d: %v", k, err))
		} else {
			report = append(report, fmt.Sprintf("removed cluster %d of a dead test process", k))
		}
	}
	return report
}
