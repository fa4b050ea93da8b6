// Package e2e holds end-to-end tests of the ingress running as a Swarm
// service, built from the Dockerfile, in front of real backend services.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// TestProxyE2E runs the ingress image as a Swarm service with a host-mode
// port and a two-replica backend in tasks mode on a shared overlay network,
// and checks through the published port that an event stream flows event
// by event, and that neither a rolling update of the backend nor killing
// one of its tasks loses a request.
func TestProxyE2E(t *testing.T) {
	rig := swarmtest.New(t)
	net := rig.Network(t, "proxy-e2e")
	base, ingressID := startIngress(t, rig, net)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ingressID)
		}
	})

	host := rig.Name("app") + ".test"
	backend := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Labels: map[string]string{
			"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
		}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(2))}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
	})
	rig.WaitTasks(t, backend, 2)
	waitBothReplicas(t, base, host)

	t.Run("event stream flows", func(t *testing.T) { eventsFlow(t, base, host) })

	t.Run("rolling update loses no request", func(t *testing.T) {
		before := countLogs(t, rig, ingressID, retryLog)
		l := startLoad(t, base, host)
		forceUpdate(t, rig, backend)
		rig.WaitTasks(t, backend, 2)
		l.stopAfter(t, 40) // keep going a little on the new tasks
		t.Logf("%d attempts retried on another task", countLogs(t, rig, ingressID, retryLog)-before)
	})

	t.Run("killed task loses no request", func(t *testing.T) {
		tasks := rig.WaitTasks(t, backend, 2)
		victim := tasks[0]
		l := startLoad(t, base, host)
		l.waitFor(t, 20) // requests are in flight on both tasks
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rig.Client.ContainerKill(ctx, victim.Status.ContainerStatus.ContainerID, "KILL"); err != nil {
			t.Fatalf("docker kill: %v", err)
		}
		waitReplaced(t, rig, backend, victim.ID)
		l.stopAfter(t, 40)
		retried := countLogs(t, rig, ingressID, retryLog)
		t.Logf("%d attempts retried on another task (both phases)", retried)
		if retried == 0 {
			t.Fatal("no attempt was retried: the kill did not hit requests in flight, the test proved nothing")
		}
	})
}

// startIngress runs the ingress image the way examples/serve-stack.yml does and
// returns its published base URL and service ID.
func startIngress(t *testing.T, rig *swarmtest.Rig, net swarmtest.Network) (string, string) {
	t.Helper()
	sockGroup, err := swarmtest.FileGroup("/var/run/docker.sock")
	if err != nil {
		t.Fatalf("stat docker socket: %v", err)
	}
	port := swarmtest.FreePort(t)
	id := rig.CreateService(t, swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: rig.IngressImage(t),
				User:  fmt.Sprintf("65532:%d", sockGroup),
				Env:   []string{"INGRESS_SHUTDOWN_GRACE=1s", "INGRESS_LOG_LEVEL=debug"}, // debug: retries are logged
				Mounts: []mount.Mount{{
					Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true,
				}},
			},
			Networks: []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80,
			PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	})
	rig.WaitTasks(t, id, 1)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	swarmtest.WaitHTTP(t, base+"/", http.StatusNotFound) // listening; no route has that host
	return base, id
}

// waitBothReplicas polls until responses came from two different tasks, so
// that both are in the route table before the load starts.
func waitBothReplicas(t *testing.T, base, host string) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; len(seen) < 2; i++ {
		if i == 300 {
			t.Fatalf("responses came from %d task(s) after %d requests, want 2", len(seen), i)
		}
		body := swarmtest.WaitHTTPHost(t, base+"/", host, http.StatusOK)
		var echo struct{ Hostname string }
		if err := json.Unmarshal(body, &echo); err != nil {
			t.Fatalf("not the backend's echo: %v: %s", err, body)
		}
		seen[echo.Hostname] = true
	}
}

// eventsFlow reads an endless stream of one event per 300ms: a proxy that
// buffers would never hand over three of them.
func eventsFlow(t *testing.T, base, host string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?interval=300ms", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /events: %s, Content-Type %q", res.Status, ct)
	}
	var got []string
	sc := bufio.NewScanner(res.Body)
	for len(got) < 3 && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			got = append(got, data)
		}
	}
	if !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("events = %q (scan error %v), want 1, 2, 3 as they are written", got, sc.Err())
	}
}

// load is steady traffic of idempotent GETs that each stay in flight for
// 200ms at the backend, so that a task that dies always takes requests with
// it.
type load struct {
	stop     chan struct{}
	done     sync.WaitGroup
	ok       atomic.Int64
	progress chan struct{} // one tick per successful request, dropped when nobody listens
	mu       sync.Mutex
	failures []string
}

const loadWorkers = 6

func startLoad(t *testing.T, base, host string) *load {
	t.Helper()
	l := &load{stop: make(chan struct{}), progress: make(chan struct{})}
	for range loadWorkers {
		l.done.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, base+"/slow?d=200ms", nil)
				req.Host = host
				res, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", res.Status)
					}
				}
				if err != nil {
					l.mu.Lock()
					l.failures = append(l.failures, err.Error())
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
				select {
				case l.progress <- struct{}{}:
				default:
				}
			}
		})
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

// waitFor waits (bounded) for n more successful requests.
func (l *load) waitFor(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-l.progress:
		case <-timeout:
			t.Fatalf("only %d of %d more requests succeeded within 60s; failures: %q", i, n, l.failed())
		}
	}
}

// stopAfter lets n more requests succeed, stops the load and fails on any
// failed request.
func (l *load) stopAfter(t *testing.T, n int) {
	t.Helper()
	l.waitFor(t, n)
	l.halt()
	if f := l.failed(); len(f) > 0 {
		t.Fatalf("%d of %d requests failed: %q", len(f), int64(len(f))+l.ok.Load(), f[:min(len(f), 10)])
	}
	t.Logf("%d requests, none failed", l.ok.Load())
}

func (l *load) failed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failures)
}

// forceUpdate runs `docker service update --force` and waits for it to
// complete.
func forceUpdate(t *testing.T, rig *swarmtest.Rig, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service: %v", err)
	}
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := rig.Client.ServiceUpdate(ctx, id, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("service update --force: %v", err)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		svc, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err == nil && svc.UpdateStatus != nil {
			switch svc.UpdateStatus.State {
			case swarm.UpdateStateCompleted:
				return
			case swarm.UpdateStatePaused, swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackCompleted:
				t.Fatalf("update %s: %s", svc.UpdateStatus.State, svc.UpdateStatus.Message)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("update not completed within 3m (last error %v)", err)
		case <-tick.C:
		}
	}
}

// waitReplaced waits until two tasks run again and the killed one is not
// among them.
func waitReplaced(t *testing.T, rig *swarmtest.Rig, id, killed string) {
	t.Helper()
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		tasks := rig.WaitTasks(t, id, 2)
		if !slices.ContainsFunc(tasks, func(task swarm.Task) bool { return task.ID == killed }) {
			return
		}
		select {
		case <-deadline:
			t.Fatal("the killed task was not replaced within 90s")
		case <-tick.C:
		}
	}
}

// retryLog is the debug message the proxy logs when it retries an attempt.
const retryLog = "retrying on another upstream"

// countLogs counts the service's log lines containing s.
func countLogs(t *testing.T, rig *swarmtest.Rig, id, s string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := rig.Client.ServiceLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("service logs: %v", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read service logs: %v", err)
	}
	return strings.Count(out.String(), s)
}

func dumpLogs(t *testing.T, rig *swarmtest.Rig, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := rig.Client.ServiceLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "400"})
	if err != nil {
		t.Logf("ingress logs: %v", err)
		return
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, rc)
	t.Logf("ingress logs (last 400 lines):\n%s", out.String())
}

func ptr[T any](v T) *T { return &v }
