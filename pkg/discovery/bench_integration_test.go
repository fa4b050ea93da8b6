package discovery

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Benchmarks against the real Swarm. Run them with a fixed count, e.g.
//
//	go test -run '^$' -bench 'Propagation' -benchtime 20x ./pkg/discovery/
//	go test -run '^$' -bench 'TaskAddress|FirstAnswer' -benchtime 10x ./pkg/discovery/
//
// (BenchmarkFirstAnswer, in firstanswer_integration_test.go, goes through the
// ingress image; the others measure the Watcher in this process.)
// Each iteration creates one service; the figures are measured at the
// watcher's Publish callback, which is where cmd/ingress stores the table
// that /api/routes and the proxy read (an atomic pointer swap later).

// BenchmarkPropagation: from ServiceCreate returning to the service's route,
// with its VIP upstream, being published. Services have no replicas, so
// this measures discovery, not scheduling.
func BenchmarkPropagation(b *testing.B) {
	rig := swarmtest.New(b)
	shared := rig.Network(b, "bench")
	img := rig.BackendImage(b)
	h := startWatcher(b, Config{Docker: rig.Client, Networks: []string{shared.Name}})
	h.wait(b, 0, waitTimeout, "a first table", func(*route.Table) bool { return true })

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		name := rig.Name("prop")
		from := h.count()
		rig.CreateService(b, backendSpec(name, img, map[string]string{"ingress.host": name + ".test"}, 0, shared))
		returned := time.Now()
		p := h.wait(b, from, waitTimeout, "route of "+name, func(tbl *route.Table) bool {
			r := routeOf(tbl, name, "default")
			return r != nil && len(r.Upstreams) == 1
		})
		lat = append(lat, max(0, p.at.Sub(returned))) // 0: published before the API call returned
	}
	b.StopTimer()
	report(b, lat, "create", "ServiceCreate returned -> route with its VIP published",
		"target p99 < 50ms; Traefik's Swarm provider polls every 15s by default (up to 15s)")
}

// BenchmarkTaskAddress: from ServiceCreate returning (a tasks-mode service,
// one replica, image present) to the route being published with the task's
// address. It stands in for "first 200 through the ingress", which needs the
// ingress inside the overlay network (the ingress image); the proxy's own
// share on top of this is one dial to the task.
func BenchmarkTaskAddress(b *testing.B) {
	rig := swarmtest.New(b)
	shared := rig.Network(b, "bench")
	img := rig.BackendImage(b)
	h := startWatcher(b, Config{Docker: rig.Client, Networks: []string{shared.Name}})
	h.wait(b, 0, waitTimeout, "a first table", func(*route.Table) bool { return true })

	starts := containerStarts(b, rig)

	lat := make([]time.Duration, 0, b.N)
	ours := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		name := rig.Name("task")
		from := h.count()
		id := rig.CreateService(b, backendSpec(name, img, map[string]string{
			"ingress.host": name + ".test", "ingress.port": backendPort, "ingress.upstream": "tasks",
		}, 1, shared))
		returned := time.Now()
		p := h.wait(b, from, waitTimeout, "task address of "+name, func(tbl *route.Table) bool {
			r := routeOf(tbl, name, "default")
			return r != nil && len(r.Upstreams) == 1
		})
		lat = append(lat, p.at.Sub(returned))
		if started, ok := starts.get(id); ok {
			ours = append(ours, p.at.Sub(started))
		}
	}
	b.StopTimer()
	report(b, lat, "create", "ServiceCreate returned -> route with the running task's address published",
		"includes Swarm scheduling and container start; caddy-docker-proxy answers in ~30ms on this kind of machine; target p50 < 50ms")
	report(b, ours, "start", "task container start event -> route with its address published (the watcher's share)",
		"issue target: a task starting on this node reflected within 50ms")
}

// startTimes records when the first container of each service started.
type startTimes struct {
	mu sync.Mutex
	at map[string]time.Time // service ID -> container start
}

func (s *startTimes) get(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[id]
	return t, ok
}

// containerStarts follows the start events of this process's task containers
// until the benchmark ends.
func containerStarts(b *testing.B, rig *swarmtest.Rig) *startTimes {
	ctx, cancel := context.WithCancel(context.Background())
	evs, errs := rig.Client.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("label", swarmtest.LabelPID+"="+strconv.Itoa(os.Getpid())),
	)})
	s := &startTimes{at: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-evs:
				s.mu.Lock()
				if id := m.Actor.Attributes[labelServiceID]; id != "" && s.at[id].IsZero() {
					s.at[id] = time.Unix(0, m.TimeNano)
				}
				s.mu.Unlock()
			case <-errs:
				return
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	return s
}

// report prints p50 and p99 and records them as <metric>-p50-ms and
// <metric>-p99-ms.
func report(b *testing.B, lat []time.Duration, metric, what, peers string) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	p50, p99 := percentile(s, 50), percentile(s, 99)
	b.ReportMetric(ms(p50), metric+"-p50-ms")
	b.ReportMetric(ms(p99), metric+"-p99-ms")
	b.Log(fmt.Sprintf("%s over %d: p50 %v, p99 %v, max %v (%s)", what, len(s),
		p50.Round(time.Millisecond/10), p99.Round(time.Millisecond/10), s[len(s)-1].Round(time.Millisecond/10), peers))
}

// percentile of sorted s by the nearest-rank method.
func percentile(s []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
