package e2e

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// TestAccessE2E: through the ingress image on Swarm, an htpasswd mounted as
// a Swarm secret into the ingress (auth.basic_file), a rate limit with a
// burst counted per client address before authentication, and a route in
// maintenance.
func TestAccessE2E(t *testing.T) {
	rig := swarmtest.New(t)
	net := rig.Network(t, "access-e2e")

	hash, err := bcrypt.GenerateFromPassword([]byte("one"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	secretName := rig.Name("htpasswd")
	sec, err := rig.Client.SecretCreate(ctx, swarm.SecretSpec{
		Annotations: swarm.Annotations{Name: secretName, Labels: map[string]string{
			swarmtest.LabelTest: "1", swarmtest.LabelPID: strconv.Itoa(os.Getpid())}},
		Data: []byte("# e2e\nalice:" + string(hash) + "\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the ingress service (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rig.Client.SecretRemove(ctx, sec.ID); err != nil {
			t.Logf("remove secret %s: %v", secretName, err)
		}
	})
	ing := rig.Ingress(t, swarmtest.IngressOptions{Networks: []swarmtest.Network{net}, Secrets: []*swarm.SecretReference{{
		SecretID: sec.ID, SecretName: secretName,
		File: &swarm.SecretReferenceFileTarget{Name: "htpasswd", UID: "0", GID: "0", Mode: 0o444},
	}}})
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ing.ServiceID)
		}
	})

	host, downHost := rig.Name("access")+".test", rig.Name("down")+".test"
	spec := func(labels map[string]string) swarm.ServiceSpec {
		return swarm.ServiceSpec{
			Annotations: swarm.Annotations{Labels: labels},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
			},
		}
	}
	svc := rig.CreateService(t, spec(map[string]string{
		"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
		"ingress.auth.basic_file": "/run/secrets/htpasswd",
		"ingress.limit.rate":      "1r/m", "ingress.limit.burst": "4",
	}))
	down := rig.CreateService(t, spec(map[string]string{
		"ingress.host": downHost, "ingress.tls": "off", "ingress.upstream": "tasks", "ingress.maintenance": "true",
	}))
	rig.WaitTasks(t, svc, 1)
	rig.WaitTasks(t, down, 1)
	// The route is ready once it asks for credentials (this counts as the
	// first request of the burst: 1 + 4 in all).
	swarmtest.WaitHTTPHost(t, ing.HTTP+"/", host, http.StatusUnauthorized)

	c := &http.Client{Timeout: 30 * time.Second}
	get := func(h, user, pass string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", ing.HTTP+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = h
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	// WaitHTTPHost may have sent more than one request while the route was
	// not there yet; only the requests that reached the route count. Send
	// until the limit answers, then check what came before in this run.
	var codes []int
	for len(codes) < 10 {
		res := get(host, "alice", "one")
		codes = append(codes, res.StatusCode)
		if res.StatusCode == http.StatusTooManyRequests {
			ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			if ra < 1 || ra > 60 {
				t.Fatalf("Retry-After %q, want 1-60 seconds", res.Header.Get("Retry-After"))
			}
			break
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("alice:one got %d", res.StatusCode)
		}
	}
	if n := len(codes); n < 2 || n > 5 || codes[n-1] != http.StatusTooManyRequests {
		t.Fatalf("answers %v: want some 200s from the secret's user, then 429 within the burst of 1+4", codes)
	}
	if res := get(host, "alice", "wrong"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the limit, a wrong password got %d, want 429 (limits come first)", res.StatusCode)
	}

	res := get(downHost, "", "")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "120" {
		t.Fatalf("maintenance: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}
