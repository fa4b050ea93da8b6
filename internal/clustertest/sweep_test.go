//go:build linux

package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// helperEnv makes TestClusterHelperProcess run: TestClusterSweep sets it.
const helperEnv = "SWARM_INGRESS_CLUSTER_HELPER"

// TestClusterHelperProcess is not a test of its own: TestClusterSweep runs the
// test binary with it to get a cluster with a running container, then kills
// this process with SIGKILL so that no cleanup runs.
func TestClusterHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestClusterSweep")
	}
	img := swarmtest.New(t).BackendImage(t)
	c := Start(t, Options{Managers: 1, Workers: 1, Images: []string{img}})
	svc := c.CreateService(t, swarm.ServiceSpec{
		Mode:         swarm.ServiceMode{Global: &swarm.GlobalService{}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: img}},
	})
	c.WaitTasks(t, svc, len(c.Nodes))
	fmt.Printf("READY %d\n", c.k)
	time.Sleep(5 * time.Minute) // killed long before
}

// TestClusterSweep kills a test process that holds a cluster (kill -9: no
// cleanup runs) and checks that the sweep Start runs removes all of it.
func TestClusterSweep(t *testing.T) {
	gate(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestClusterHelperProcess$", "-test.v", "-test.timeout=6m")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	var k int
	var out strings.Builder
	scanner := bufio.NewScanner(stdout)
	for k == 0 && scanner.Scan() {
		out.WriteString(scanner.Text() + "\n")
		if strings.Contains(scanner.Text(), "clustertest:") {
			t.Logf("helper: %s", strings.TrimSpace(scanner.Text()))
		}
		if v, ok := strings.CutPrefix(scanner.Text(), "READY "); ok {
			k, _ = strconv.Atoi(v)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	_ = cmd.Wait()
	if k == 0 {
		t.Fatalf("helper did not report a cluster:\n%s\n%s", out.String(), stderr.String())
	}
	t.Cleanup(func() { _ = remove(k) }) // should the sweep fail

	left := strings.Join(leftovers(k), "\n")
	for _, kind := range []string{"netns ", "link ", "iptables rule ", "cgroup ", "process ", "directory "} {
		if !strings.Contains(left, kind) {
			t.Errorf("after the kill, no %q left of cluster %d, so the sweep is not tested:\n%s", kind, k, left)
		}
	}
	report := sweep()
	t.Logf("sweep: %q", report)
	if !strings.Contains(strings.Join(report, "\n"), fmt.Sprintf("removed cluster %d ", k)) {
		t.Errorf("sweep report %q does not mention cluster %d", report, k)
	}
	if left := leftovers(k); len(left) > 0 {
		t.Errorf("the sweep left of cluster %d:\n%s", k, strings.Join(left, "\n"))
	}
}

// TestClusterAllocate claims cluster numbers from several goroutines at once
// (as test processes do): each gets its own, owned by this live process, and
// the sweep removes one only once its owner is a dead process.
func TestClusterAllocate(t *testing.T) {
	gate(t)
	const n = 4
	got := make(chan int, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			k, err := allocate()
			got <- k
			errs <- err
		}()
	}
	seen := map[int]bool{}
	for range n {
		k, err := <-got, <-errs
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		t.Cleanup(func() { _ = remove(k) })
		if seen[k] {
			t.Errorf("cluster %d allocated twice", k)
		}
		seen[k] = true
		if !ownerAlive(k) {
			t.Errorf("cluster %d: owner not alive right after allocate", k)
		}
	}

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	var victim int
	for k := range seen {
		victim = k
		break
	}
	// What a dead owner's file holds: its pid and the start time it had.
	if err := os.WriteFile(ownerFile(victim), []byte(fmt.Sprintf("%d 12345", dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	sweep()
	for k := range seen {
		_, err := os.Stat(clusterDir(k))
		if gone := err != nil; gone != (k == victim) {
			t.Errorf("cluster %d: directory gone = %v after the sweep, want %v (owner dead: %v)", k, gone, k == victim, k == victim)
		}
	}
}

// gate skips a test of the rig itself the way Start does.
func gate(t *testing.T) {
	if os.Getenv(EnvGate) != "1" {
		t.Skipf("multi-node test: set %s=1 to run it (make test-cluster)", EnvGate)
	}
	if testing.Short() {
		t.Skip("multi-node test; skipped with -short")
	}
}
