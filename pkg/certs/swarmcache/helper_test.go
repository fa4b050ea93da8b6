package swarmcache

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
)

// helperHolder is the lock holder id of the helper process.
const helperHolder = "helper-process"

// helperEnv carries the helper's settings from the test to the process.
type helperEnv struct {
	Namespace string
	Labels    map[string]string
	KeyFile   string
	CA        string
	CARoots   string
	Host      string
	TTL       time.Duration
}

const helperVar = "SWARMCACHE_TEST_HELPER"

// helperProc is an ingress instance in a separate process (this test
// binary running TestHelperInstance), so that it can really be killed.
type helperProc struct {
	cmd  *exec.Cmd
	once sync.Once
	mu   sync.Mutex
	out  bytes.Buffer
	e    env
	host string
}

func startHelper(t *testing.T, e env, keyFile string, p *pebbletest.Pebble, host string, ttl time.Duration) *helperProc {
	t.Helper()
	settings, err := json.Marshal(helperEnv{Namespace: e.ns, Labels: e.labels, KeyFile: keyFile, CA: p.DirectoryURL, CARoots: p.RootsFile, Host: host, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	h := &helperProc{e: e, host: host}
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperInstance$", "-test.v", "-test.timeout=3m")
	h.cmd.Env = append(os.Environ(), helperVar+"="+string(settings))
	h.cmd.Stdout, h.cmd.Stderr = h, h
	stdin, err := h.cmd.StdinPipe() // the helper exits when it closes
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		h.kill()
		if t.Failed() {
			t.Logf("helper output:\n%s", h.output())
		}
	})
	return h
}

func (h *helperProc) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.Write(b)
}

func (h *helperProc) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.String()
}

// kill sends SIGKILL and reaps the process.
func (h *helperProc) kill() {
	h.once.Do(func() {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
	})
}

// lastExpiry reads the expiry on the dead helper's lock config: the last
// renewal it made before it died.
func (h *helperProc) lastExpiry(t *testing.T) time.Time {
	t.Helper()
	l := NewLocker(LockerConfig{Client: h.e.api, Namespace: h.e.ns})
	c, _, err := h.e.api.ConfigInspectWithRaw(context.Background(), l.lockName(h.host))
	if err != nil {
		t.Fatalf("inspect the dead holder's lock: %v", err)
	}
	if c.Spec.Labels[LabelHolder] != helperHolder {
		t.Fatalf("lock held by %q right after the holder died", c.Spec.Labels[LabelHolder])
	}
	expires, err := time.Parse(time.RFC3339Nano, c.Spec.Labels[LabelExpires])
	if err != nil {
		t.Fatal(err)
	}
	return expires
}

// TestHelperInstance is not a test: it is the body of the helper process
// started by startHelper. It runs one instance until killed, until its stdin
// closes (the test process is gone) or for two minutes at most.
func TestHelperInstance(t *testing.T) {
	settings := os.Getenv(helperVar)
	if settings == "" {
		t.Skip("helper process body; runs only when started by startHelper")
	}
	var cfg helperEnv
	if err := json.Unmarshal([]byte(settings), &cfg); err != nil {
		t.Fatal(err)
	}
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	log := testLogger(t).With().Str("instance", helperHolder).Logger()
	store, err := New(ctx, Config{Client: docker, KeyFile: cfg.KeyFile, Namespace: cfg.Namespace, Labels: cfg.Labels, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	locker := NewLocker(LockerConfig{Client: docker, Namespace: cfg.Namespace, Labels: cfg.Labels, Holder: helperHolder, TTL: cfg.TTL, Logger: log})
	mgr, err := certs.New(managerConfig(t, cfg.CA, cfg.CARoots, store, locker, log))
	if err != nil {
		t.Fatal(err)
	}
	mgr.SetTable(tlsTable(cfg.Host))
	if err := mgr.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
