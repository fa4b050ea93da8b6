package swarmtest

import (
	"os"
	"sync"
	"testing"
	"time"
)

type imageOnce struct {
	once sync.Once
	ref  string
	err  error
}

var backendImage, ingressImage imageOnce

func (o *imageOnce) get(t testing.TB, timeout time.Duration, script string, args ...string) string {
	t.Helper()
	o.once.Do(func() { o.ref, o.err = runScript(timeout, script, args...) })
	if o.err != nil {
		t.Fatalf("swarmtest: build image: %v", o.err)
	}
	return o.ref
}

// BackendImage returns the image of internal/testbackend: a static binary
// imported with `docker import`, tagged by the binary's hash so repeated runs
// reuse it (scripts/go-image.sh).
func (r *Rig) BackendImage(t testing.TB) string {
	t.Helper()
	return backendImage.get(t, 5*time.Minute, "go-image.sh", "./internal/testbackend", "swarm-ingress-testbackend")
}

// IngressImage returns the image built from ./Dockerfile, tagged by the hash of
// the build context so unchanged sources are not rebuilt (scripts/ingress-image.sh,
// which also makes the local stand-in for the golang builder image).
//
// SWARM_INGRESS_TEST_IMAGE, when set, names an existing image to use instead,
// e.g. one built from an older commit to measure what a change fixes.
func (r *Rig) IngressImage(t testing.TB) string {
	t.Helper()
	if ref := os.Getenv("SWARM_INGRESS_TEST_IMAGE"); ref != "" {
		return ref
	}
	return ingressImage.get(t, 15*time.Minute, "ingress-image.sh")
}
