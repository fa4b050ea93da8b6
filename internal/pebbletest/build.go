package pebbletest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const pebbleModule = "github.com/letsencrypt/pebble/v2"

var build struct {
	once sync.Once
	path string
	err  error
}

// binary returns the path of a Pebble binary built from the version in
// go.mod, cached under os.UserCacheDir so that later test runs skip the build.
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildPebble() })
	if build.err != nil {
		t.Fatalf("pebbletest: %v", build.err)
	}
	return build.path
}

func buildPebble() (string, error) {
	version, err := goOutput("list", "-m", "-f", "{{.Version}}", pebbleModule)
	if err != nil {
		return "", fmt.Errorf("find the Pebble version in go.mod: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "swarm-ingress", "pebble")
	bin := filepath.Join(dir, "pebble-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create the Pebble cache dir: %w", err)
	}
	// Build to a private name and rename, so that test processes building
	// at the same time never run a half-written binary.
	tmp, err := os.CreateTemp(dir, "pebble-build-*")
	if err != nil {
		return "", fmt.Errorf("create a temp file for Pebble: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if _, err := goOutput("build", "-o", tmp.Name(), pebbleModule+"/cmd/pebble"); err != nil {
		return "", fmt.Errorf("build Pebble: %w", err)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("install the Pebble binary: %w", err)
	}
	return bin, nil
}

// goOutput runs the go command in the current directory (inside the module).
func goOutput(args ...string) (string, error) {
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, args...)
	// The test binary's own flags (e.g. -race through GOFLAGS) must not leak into the build.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
