package swarmcache

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// env is one test's slice of the real Swarm: a unique namespace whose
// configs carry the rig's labels and are all removed at cleanup.
type env struct {
	api    API
	ns     string
	labels map[string]string
}

func newEnv(t *testing.T) env {
	t.Helper()
	rig := swarmtest.New(t)
	e := env{
		api: rig.Client,
		ns:  rig.Name("cache"),
		labels: map[string]string{
			swarmtest.LabelTest: "1",
			swarmtest.LabelPID:  strconv.Itoa(os.Getpid()),
		},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := e.api.ConfigList(ctx, listFilter(e.ns))
		if err != nil {
			t.Errorf("cleanup: list configs of %s: %v", e.ns, err)
			return
		}
		for _, c := range list {
			if err := ignoreNotFound(e.api.ConfigRemove(ctx, c.ID)); err != nil {
				t.Errorf("cleanup: remove config %s: %v", c.Spec.Name, err)
			}
		}
	})
	return e
}

// configs lists every config of the namespace.
func (e env) configs(t *testing.T) []swarm.Config {
	t.Helper()
	list, err := e.api.ConfigList(context.Background(), listFilter(e.ns))
	if err != nil {
		t.Fatalf("list configs: %v", err)
	}
	return list
}

// entries lists the cache entry configs of one key.
func (e env) entries(t *testing.T, key string) []swarm.Config {
	t.Helper()
	list, err := e.api.ConfigList(context.Background(), listFilter(e.ns, LabelEntry, "1", LabelKeyHash, keyHash(key)))
	if err != nil {
		t.Fatalf("list configs of %q: %v", key, err)
	}
	return list
}

// plant creates a cache entry config for key with data, bypassing Put.
func (e env) plant(t *testing.T, key string, data []byte) {
	t.Helper()
	spec := swarm.ConfigSpec{
		Annotations: swarm.Annotations{
			Name:   entryPrefix + keyHash(key)[:shortHash] + "-" + randomHex(6),
			Labels: labelsFor(map[string]string{LabelEntry: "1", LabelKeyHash: keyHash(key)}, e.ns, e.labels),
		},
		Data: data,
	}
	if _, err := e.api.ConfigCreate(context.Background(), spec); err != nil {
		t.Fatalf("plant config for %q: %v", key, err)
	}
}

func (e env) store(t *testing.T, keyFile string) *Store {
	t.Helper()
	s, err := New(context.Background(), e.config(t, keyFile))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func (e env) config(t *testing.T, keyFile string) Config {
	return Config{Client: e.api, KeyFile: keyFile, Namespace: e.ns, Labels: e.labels, Logger: testLogger(t)}
}

func (e env) locker(t *testing.T, api API, holder string, ttl time.Duration) *Locker {
	return NewLocker(LockerConfig{
		Client: api, Namespace: e.ns, Labels: e.labels, Holder: holder, TTL: ttl,
		PollMin: 20 * time.Millisecond, PollMax: 200 * time.Millisecond, Logger: testLogger(t),
	})
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// newKeyFile writes a fresh random 32-byte key and returns its path.
func newKeyFile(t *testing.T) string {
	t.Helper()
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	return writeFile(t, key)
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ingress-cache-key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cutAPI passes calls to the real client until cut, then fails them all, as
// if the instance had died or lost its manager. Only our own narrow
// interface is wrapped; every call that passes goes to the real engine.
type cutAPI struct {
	API
	cut atomic.Bool
}

var errCut = errors.New("test: instance cut off from the Docker API")

func (c *cutAPI) ConfigCreate(ctx context.Context, spec swarm.ConfigSpec) (swarm.ConfigCreateResponse, error) {
	if c.cut.Load() {
		return swarm.ConfigCreateResponse{}, errCut
	}
	return c.API.ConfigCreate(ctx, spec)
}

func (c *cutAPI) ConfigList(ctx context.Context, o swarm.ConfigListOptions) ([]swarm.Config, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.API.ConfigList(ctx, o)
}

func (c *cutAPI) ConfigInspectWithRaw(ctx context.Context, id string) (swarm.Config, []byte, error) {
	if c.cut.Load() {
		return swarm.Config{}, nil, errCut
	}
	return c.API.ConfigInspectWithRaw(ctx, id)
}

func (c *cutAPI) ConfigUpdate(ctx context.Context, id string, v swarm.Version, spec swarm.ConfigSpec) error {
	if c.cut.Load() {
		return errCut
	}
	return c.API.ConfigUpdate(ctx, id, v, spec)
}

func (c *cutAPI) ConfigRemove(ctx context.Context, id string) error {
	if c.cut.Load() {
		return errCut
	}
	return c.API.ConfigRemove(ctx, id)
}
