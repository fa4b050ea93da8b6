package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
)

// fakeWorker answers the Docker API the way a Swarm worker's engine does:
// `docker info` says no control plane, and every Swarm call is refused.
func fakeWorker(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			fmt.Fprint(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/info"):
			fmt.Fprint(w, `{"Swarm":{"NodeID":"w1","LocalNodeState":"active","ControlAvailable":false}}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"message":"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// `ingress serve` on a worker says at once, in the log and in /api/routes,
// that a worker cannot read the cluster and that `ingress edge` is its role.
func TestServeOnWorker(t *testing.T) {
	docker := fakeWorker(t)
	t.Setenv("DOCKER_HOST", "tcp://"+strings.TrimPrefix(docker.URL, "http://"))
	admin := fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t))
	getenv := env(t,
		"INGRESS_HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		"INGRESS_HTTPS_ADDR", fmt.Sprintf("127.0.0.1:%d", swarmtest.FreePort(t)),
		"INGRESS_ADMIN_ADDR", admin)
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenv, logs, logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	body := swarmtest.WaitHTTP(t, "http://"+admin+"/api/routes", 200)
	var view struct {
		Errors []struct{ Error string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &view); err != nil {
		t.Fatal(err)
	}
	if len(view.Errors) != 1 || !strings.Contains(view.Errors[0].Error, "Swarm worker") || !strings.Contains(view.Errors[0].Error, "ingress edge") {
		t.Errorf("/api/routes errors %+v: want the worker explanation", view.Errors)
	}
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d on a worker, want 503", resp.StatusCode)
	}
	// The log line was written before the admin listener served anything;
	// the log buffer flushes on its own schedule, so wait for it.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "cannot read the cluster from this node") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "cannot read the cluster from this node") || !strings.Contains(l, "ingress edge") {
		t.Errorf("log lacks the worker explanation:\n%s", l)
	}
	if strings.Contains(logs.String(), "docker unreachable") {
		t.Error("serve on a worker retries discovery")
	}
}
