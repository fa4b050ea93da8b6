// Package swarmtest is the shared integration rig: it makes sure a Docker Engine
// in Swarm mode is available, builds the test images, and creates uniquely named,
// labelled networks and services that are removed in t.Cleanup even when a test
// fails. Leftovers of killed test processes are swept once per process.
//
// Integration tests always run: New fails loudly when the engine cannot be made
// available. Only `go test -short` skips them.
package swarmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Labels put on every resource the rig creates.
const (
	LabelTest = "swarm-ingress.test"     // always "1"
	LabelPID  = "swarm-ingress.test.pid" // pid of the test process that owns the resource
)

// cleanupTimeout bounds every removal done in t.Cleanup.
const cleanupTimeout = 60 * time.Second

// Rig gives a test access to the engine. It is cheap; tests may call New freely.
type Rig struct {
	Client *client.Client
}

var (
	setupOnce   sync.Once
	setupClient *client.Client
	setupErr    error
	sweepReport []string
	reportOnce  sync.Once // the sweep is reported in the first test only
	nameSeq     atomic.Int64
)

// New ensures the engine and Swarm are up (running scripts/ensure-docker.sh),
// sweeps leftovers of dead test processes once per process, and returns a rig.
// It skips the test under -short.
func New(t testing.TB) *Rig {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test against Docker Swarm; skipped with -short")
	}
	setupOnce.Do(func() {
		setupClient, setupErr = setup()
		if setupErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sweepReport = sweep(ctx, setupClient)
		}
	})
	if setupErr != nil {
		t.Fatalf("swarmtest: Docker Swarm is not available: %v", setupErr)
	}
	reportOnce.Do(func() {
		for _, line := range sweepReport {
			t.Logf("swarmtest: sweep: %s", line)
		}
	})
	return &Rig{Client: setupClient}
}

func setup() (*client.Client, error) {
	if _, err := runScript(5*time.Minute, "ensure-docker.sh"); err != nil {
		return nil, err
	}
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker info: %w", err)
	}
	if info.Swarm.LocalNodeState != "active" || !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("swarm state %q, manager %v: want an active manager", info.Swarm.LocalNodeState, info.Swarm.ControlAvailable)
	}
	return c, nil
}

// Name returns a unique resource name "sit-<pid>-<n>-<base>".
func (r *Rig) Name(base string) string {
	return fmt.Sprintf("sit-%d-%d-%s", os.Getpid(), nameSeq.Add(1), base)
}

// labels returns the rig's labels merged over extra (the rig's win).
func labels(extra map[string]string) map[string]string {
	out := make(map[string]string, len(extra)+2)
	for k, v := range extra {
		out[k] = v
	}
	out[LabelTest] = "1"
	out[LabelPID] = strconv.Itoa(os.Getpid())
	return out
}

// RepoRoot returns the directory holding go.mod, found upwards from the working
// directory (go test runs in the package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// runScript runs scripts/<name> from the repository root and returns its
// trimmed stdout; on failure the error carries its stderr.
func runScript(timeout time.Duration, name string, args ...string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "scripts", name)}, args...)...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/%s: %w\n%s", name, err, stderr.Bytes())
	}
	return string(bytes.TrimSpace(stdout.Bytes())), nil
}
