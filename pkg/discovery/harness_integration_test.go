package discovery

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Shared pieces of the Docker-backed tests: a running Watcher whose
// publications a test can wait for, and backend service specs.

// backendPort is the port the test backend listens on in these tests.
const backendPort = "8080"

// waitTimeout bounds every wait for a table; Swarm on a busy 2-core machine
// can take several seconds to start a task.
const waitTimeout = 60 * time.Second

// published is one table handed to Publish, with the time it was handed over.
type published struct {
	at    time.Time
	table *route.Table
}

// watch runs a Watcher until the test ends and records every publication.
type watch struct {
	w      *Watcher
	logs   *logTap
	mu     sync.Mutex
	tables []published
	notify chan struct{} // signalled (without blocking) at every publication
}

// startWatcher runs a Watcher on cfg (Publish is set here) until cleanup.
func startWatcher(t testing.TB, cfg Config) *watch {
	t.Helper()
	h := &watch{notify: make(chan struct{}, 1), logs: &logTap{t: t, notify: make(chan struct{}, 1)}}
	cfg.Publish = func(tbl *route.Table) {
		h.mu.Lock()
		h.tables = append(h.tables, published{at: time.Now(), table: tbl})
		h.mu.Unlock()
		select {
		case h.notify <- struct{}{}:
		default:
		}
	}
	cfg.Logger = zerolog.New(h.logs).Level(zerolog.DebugLevel)
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
	return h
}

// last returns the last published table and how many there were.
func (h *watch) last() (*route.Table, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.tables) == 0 {
		return nil, 0
	}
	return h.tables[len(h.tables)-1].table, len(h.tables)
}

// wait returns the first publication from index from on whose table
// satisfies cond, waiting up to timeout; it fails the test with desc and the
// last table otherwise.
func (h *watch) wait(t testing.TB, from int, timeout time.Duration, desc string, cond func(*route.Table) bool) published {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		for i := from; i < len(h.tables); i++ {
			if cond(h.tables[i].table) {
				p := h.tables[i]
				h.mu.Unlock()
				return p
			}
		}
		from = len(h.tables)
		h.mu.Unlock()
		select {
		case <-h.notify:
		case <-deadline.C:
			last, _ := h.last()
			t.Fatalf("within %v: %s; last table: %s", timeout, desc, describeTable(last))
		}
	}
}

// count is the number of publications so far (a starting point for wait).
func (h *watch) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.tables)
}

// logTap passes the watcher's log to t and lets a test wait for a line.
type logTap struct {
	t      testing.TB
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
}

func (l *logTap) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if _, bench := l.t.(*testing.B); !bench { // a benchmark's log is always printed
		l.t.Log(line)
	}
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

// count returns how many lines so far contain every one of subs.
func (l *logTap) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(line, s) }) {
			n++
		}
	}
	return n
}

// wait waits until n lines contain s.
func (l *logTap) wait(t testing.TB, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for l.count(s) < n {
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("within %v: %d log lines containing %q, want %d", timeout, l.count(s), s, n)
		}
	}
}

func describeTable(t *route.Table) string {
	if t == nil {
		return "<none>"
	}
	v := t.View()
	s := ""
	for _, r := range v.Routes {
		s += "\n  route " + r.Service + "/" + r.Route + " hosts=" + joinStr(r.Hosts) + " path=" + r.Path +
			" mode=" + string(r.UpstreamMode) + " net=" + r.Network + " up=" + joinStr(r.Upstreams)
	}
	for _, e := range v.Errors {
		s += "\n  error " + e.Service + " " + e.Label + ": " + e.Error
	}
	return s
}

func joinStr(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return "[" + out + "]"
}

// routeOf returns the route of service svc named name, or nil.
func routeOf(t *route.Table, svc, name string) *route.Route {
	if t == nil {
		return nil
	}
	for _, r := range t.Routes {
		if r.Service == svc && r.Name == name {
			return r
		}
	}
	return nil
}

// errorOf returns the first error about service svc, or nil.
func errorOf(t *route.Table, svc string) *route.Error {
	if t == nil {
		return nil
	}
	for i := range t.Errors {
		if t.Errors[i].Service == svc {
			return &t.Errors[i]
		}
	}
	return nil
}

// backendSpec is a service of the test backend on the given networks.
func backendSpec(name, img string, labels map[string]string, replicas uint64, nets ...swarmtest.Network) swarm.ServiceSpec {
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: img, Env: []string{"PORT=" + backendPort}},
			// Quick retries: a dying task is replaced fast and tests stay short.
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: durationPtr(100 * time.Millisecond)},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	for _, n := range nets {
		spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: n.ID})
	}
	return spec
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// updateService applies change to the current spec of service id.
func updateService(t testing.TB, rig *swarmtest.Rig, id string, change func(*swarm.ServiceSpec)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service %s: %v", id, err)
	}
	spec := svc.Spec
	change(&spec)
	if _, err := rig.Client.ServiceUpdate(ctx, id, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("update service %s: %v", id, err)
	}
}

// vipOn returns the service's VIP on network netID as Docker reports it,
// prefix stripped, waiting (bounded) until it is allocated.
func vipOn(t testing.TB, rig *swarmtest.Rig, id, netID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		svc, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatalf("inspect service %s: %v", id, err)
		}
		for _, v := range svc.Endpoint.VirtualIPs {
			if v.NetworkID == netID {
				addr, _, _ := strings.Cut(v.Addr, "/")
				return addr
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("service %s has no VIP on network %s: %+v", id, netID, svc.Endpoint.VirtualIPs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
