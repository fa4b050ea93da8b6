package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// deployRate is the request rate of the deploy test: GETs and POSTs mixed.
const deployRate = 120

// TestDeployWithWarmupE2E rolls a two-replica backend that listens at once
// but answers 503 for its first 3 s (its HEALTHCHECK says so), and drains on
// SIGTERM, with `docker service update --force` in start-first and
// stop-first order, under a steady mix of GETs and POSTs through the ingress
// image: no request may fail. Before the ingress waited for health, each
// roll lost requests to the warming tasks.
func TestDeployWithWarmupE2E(t *testing.T) {
	rig := swarmtest.New(t)
	net := rig.Network(t, "deploy-e2e")
	base, ingressID := startIngress(t, rig, net)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ingressID)
		}
	})

	host := rig.Name("warm") + ".test"
	backend := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Labels: map[string]string{
			"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
		}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(2))}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: rig.BackendImage(t),
				Env:   []string{"WARMUP=3s", "DRAIN=5s"},
				Healthcheck: &container.HealthConfig{
					Test: []string{"CMD", "/app", "healthcheck"}, Interval: 300 * time.Millisecond,
					Timeout: 2 * time.Second, Retries: 3, StartPeriod: time.Minute,
				},
			},
			Networks: []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
	})
	rig.WaitTasks(t, backend, 2)
	waitBothReplicas(t, base, host)

	for _, order := range []string{swarm.UpdateOrderStartFirst, swarm.UpdateOrderStopFirst} {
		t.Run(order, func(t *testing.T) {
			setUpdateOrder(t, rig, backend, order)
			l := startMixedLoad(t, base, host)
			forceUpdate(t, rig, backend)
			rig.WaitTasks(t, backend, 2)
			waitBothReplicas(t, base, host)
			total, failures, rate := l.finish()
			t.Logf("%s: %d requests (GET and POST, %.0f req/s), %d failed", order, total, rate, len(failures))
			if len(failures) > 0 {
				t.Fatalf("%d of %d requests failed: %q", len(failures), total, failures[:min(len(failures), 10)])
			}
			if rate < deployRate*0.8 {
				t.Logf("the load ran at %.0f req/s, below the %d asked (busy machine): the result still counts every request sent", rate, deployRate)
			}
		})
	}
}

func setUpdateOrder(t *testing.T, rig *swarmtest.Rig, id, order string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service: %v", err)
	}
	spec := svc.Spec
	if spec.UpdateConfig == nil {
		spec.UpdateConfig = &swarm.UpdateConfig{}
	}
	spec.UpdateConfig.Order = order
	spec.UpdateConfig.Parallelism = 1
	if _, err := rig.Client.ServiceUpdate(ctx, id, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("set update order %s: %v", order, err)
	}
}

// mixedLoad sends deployRate requests a second, alternately GET and POST
// (a POST is never replayed by the ingress once it may have reached a
// task), each on its own goroutine so that a slow answer does not slow the
// rate. Every answer other than 200 and every transport error is a failure.
type mixedLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	started  time.Time
	mu       sync.Mutex
	sent     int
	failures []string
}

func startMixedLoad(t *testing.T, base, host string) *mixedLoad {
	t.Helper()
	return startMixedLoadAt(t, base, host, "/")
}

// startMixedLoadAt sends deployRate requests a second to base+path, GET and
// POST in turn, until finish.
func startMixedLoadAt(t *testing.T, base, host, path string) *mixedLoad {
	t.Helper()
	l := &mixedLoad{stop: make(chan struct{}), started: time.Now()}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / deployRate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.mu.Lock()
			l.sent++
			l.mu.Unlock()
			post := i%2 == 1
			l.wg.Go(func() { l.record(oneAt(client, base+path, host, post)) })
		}
	})
	t.Cleanup(func() { l.finish() })
	return l
}

func one(client *http.Client, base, host string, post bool) error {
	return oneAt(client, base+"/", host, post)
}

// oneAt sends one GET, or a POST with a small JSON body, to url and
// reports any error or a status other than 200.
func oneAt(client *http.Client, url, host string, post bool) error {
	method, body := http.MethodGet, io.Reader(nil)
	if post {
		method, body = http.MethodPost, strings.NewReader(`{"order":1}`)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Host = host
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return fmt.Errorf("%s: body: %w", method, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %s", method, res.Status)
	}
	return nil
}

func (l *mixedLoad) record(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, err.Error())
}

// finish stops sending, waits for the answers in flight and returns the
// count, the failures and the rate achieved.
func (l *mixedLoad) finish() (int, []string, float64) {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failures, float64(l.sent) / time.Since(l.started).Seconds()
}
