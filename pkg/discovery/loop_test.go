package discovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// fakeDocker is a hand-written DockerAPI for the loop's own logic (merging
// events, publishing only changes, Docker errors). Everything Docker itself
// does is tested against the real engine in *_integration_test.go.
type fakeDocker struct {
	mu           sync.Mutex
	services     []swarm.Service
	listErr      error
	serviceLists int
	events       chan events.Message
	tasks        []swarm.Task
	taskFilters  []filters.Args
}

var _ DockerAPI = (*fakeDocker)(nil)

func (f *fakeDocker) Ping(context.Context) (types.Ping, error) { return types.Ping{}, nil }

func (f *fakeDocker) ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serviceLists++
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]swarm.Service(nil), f.services...), nil
}

func (f *fakeDocker) TaskList(_ context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.taskFilters = append(f.taskFilters, opts.Filters)
	var out []swarm.Task
	for _, t := range f.tasks {
		if svc := opts.Filters.Get("service"); len(svc) == 0 || slices.Contains(svc, t.ServiceID) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeDocker) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	return []network.Summary{{ID: "n1", Name: "front", Driver: "overlay", Scope: "swarm"}}, nil
}

// ContainerInspect knows containers whose ID starts with "plain" (no health
// check) or "checked" (a HEALTHCHECK); any other is an error.
func (f *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	switch {
	case strings.HasPrefix(id, "plain"):
		return container.InspectResponse{Config: &container.Config{}}, nil
	case strings.HasPrefix(id, "checked"):
		return container.InspectResponse{Config: &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/check"}}}}, nil
	}
	return container.InspectResponse{}, errors.New("no such container")
}

func (f *fakeDocker) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	return f.events, make(chan error)
}

func (f *fakeDocker) set(services []swarm.Service, listErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services, f.listErr = services, listErr
}

func (f *fakeDocker) lists() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serviceLists
}

func fakeService(id, host string) swarm.Service {
	s := swarm.Service{ID: id}
	s.Spec.Name = id
	s.Spec.Labels = map[string]string{"ingress.host": host}
	s.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "n1"}}
	s.Endpoint.VirtualIPs = []swarm.EndpointVirtualIP{{NetworkID: "n1", Addr: "10.0.0.2/24"}}
	return s
}

// TestLoopMergesEvents: a burst of events already queued when the first one
// arrives is one rebuild (the debounce window starts at the first event),
// and a rebuild that changes nothing publishes nothing.
func TestLoopMergesEvents(t *testing.T) {
	const burst = 30
	f := &fakeDocker{events: make(chan events.Message, burst)}
	f.set([]swarm.Service{fakeService("a", "a.test")}, nil)
	tables := make(chan *route.Table, 10)
	w, err := NewWatcher(Config{
		Docker: f, Networks: []string{"front"}, Resync: time.Hour,
		Debounce: 300 * time.Millisecond, // far longer than reading a queued burst
		Publish:  func(t *route.Table) { tables <- t },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	first := next(t, tables)
	if first.Generation != 1 || first.Match("a.test", "/") == nil {
		t.Fatalf("first table: generation %d, a.test routed: %v", first.Generation, first.Match("a.test", "/") != nil)
	}
	before := f.lists()
	f.set([]swarm.Service{fakeService("a", "a.test"), fakeService("b", "b.test")}, nil)
	for range burst {
		f.events <- events.Message{Type: events.ServiceEventType, Action: events.ActionUpdate}
	}
	second := next(t, tables)
	if second.Generation != 2 || second.Match("b.test", "/") == nil || w.Table() != second {
		t.Fatalf("second table: generation %d, b.test routed %v, Table() current %v",
			second.Generation, second.Match("b.test", "/") != nil, w.Table() == second)
	}
	if got := f.lists() - before; got != 1 {
		t.Fatalf("%d service lists for a burst of %d events, want 1", got, burst)
	}

	// Same content again, then a change: only the change is published.
	f.events <- events.Message{Type: events.ServiceEventType, Action: events.ActionUpdate}
	noPublishUntil(t, tables, "the unchanged rebuild read the services", func() bool { return f.lists()-before >= 2 })
	f.set([]swarm.Service{fakeService("a", "a.test")}, nil)
	f.events <- events.Message{Type: events.ServiceEventType, Action: events.ActionRemove}
	if third := next(t, tables); third.Generation != 3 || third.Match("b.test", "/") != nil {
		t.Fatalf("third table: generation %d, b.test still routed %v", third.Generation, third.Match("b.test", "/") != nil)
	}
}

// next returns the next published table (bounded wait).
func next(t *testing.T, tables <-chan *route.Table) *route.Table {
	t.Helper()
	select {
	case tbl := <-tables:
		return tbl
	case <-time.After(10 * time.Second):
		t.Fatal("no table published within 10s")
		return nil
	}
}

// noPublishUntil waits (bounded) for cond, failing if a table is published.
func noPublishUntil(t *testing.T, tables <-chan *route.Table, desc string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case tbl := <-tables:
			t.Fatalf("table published (generation %d) while waiting until %s", tbl.Generation, desc)
		case <-deadline:
			t.Fatalf("not within 10s: %s", desc)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLoopKeepsTableOnError: a failing Docker call publishes nothing and
// Table keeps the last good table; once Docker answers again the table follows.
func TestLoopKeepsTableOnError(t *testing.T) {
	f := &fakeDocker{events: make(chan events.Message, 1)}
	f.set([]swarm.Service{fakeService("a", "a.test")}, nil)
	tables := make(chan *route.Table, 10)
	w, err := NewWatcher(Config{Docker: f, Networks: []string{"front"}, Resync: time.Hour,
		Publish: func(t *route.Table) { tables <- t }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	first := next(t, tables)

	before := f.lists()
	f.set(nil, errors.New("connection refused"))
	f.events <- events.Message{Type: events.ServiceEventType, Action: events.ActionUpdate}
	// The failed refresh leads to reconnects, each trying a full resync.
	noPublishUntil(t, tables, "three failed service lists", func() bool { return f.lists()-before >= 3 })
	if w.Table() != first {
		t.Fatalf("Table() changed during a Docker error")
	}
	f.set(nil, nil) // Docker is back, with no services
	if tbl := next(t, tables); len(tbl.Routes) != 0 || tbl.Generation != 2 {
		t.Fatalf("after recovery: %d routes, generation %d; want 0 routes, generation 2", len(tbl.Routes), tbl.Generation)
	}
}

func TestClassify(t *testing.T) {
	const self = "abc123abc123"
	msg := func(typ events.Type, action events.Action, attrs map[string]string) events.Message {
		return events.Message{Type: typ, Action: action, Actor: events.Actor{ID: "plain1", Attributes: attrs}}
	}
	withID := func(m events.Message, id string) events.Message { m.Actor.ID = id; return m }
	task := map[string]string{labelServiceID: "s1", labelTaskID: "t1"}
	signal := func(sig string) map[string]string {
		return map[string]string{labelServiceID: "s1", labelTaskID: "t1", "signal": sig}
	}
	tests := []struct {
		name     string
		networks []string // Config.Networks
		msg      events.Message
		want     level
		wantMark taskMark
	}{
		{name: "service", msg: msg(events.ServiceEventType, events.ActionUpdate, nil), want: levelServices},
		{name: "task container start", msg: msg(events.ContainerEventType, events.ActionStart, task), want: levelTasks, wantMark: markStarted},
		{name: "task container with a health check starts: not routed yet", msg: withID(msg(events.ContainerEventType, events.ActionStart, task), "checked1"), want: levelTasks},
		{name: "task container that cannot be inspected starts: routed", msg: withID(msg(events.ContainerEventType, events.ActionStart, task), "gone1"), want: levelTasks, wantMark: markStarted},
		{name: "task container healthy", msg: msg(events.ContainerEventType, events.ActionHealthStatusHealthy, task), want: levelTasks, wantMark: markStarted},
		{name: "task container unhealthy", msg: msg(events.ContainerEventType, events.ActionHealthStatusUnhealthy, task), want: levelTasks, wantMark: markDied},
		{name: "task container health running (no verdict)", msg: msg(events.ContainerEventType, events.ActionHealthStatusRunning, task)},
		{name: "task container stopped (SIGTERM)", msg: msg(events.ContainerEventType, events.ActionKill, signal("15")), want: levelTasks, wantMark: markDied},
		{name: "task container killed (SIGKILL)", msg: msg(events.ContainerEventType, events.ActionKill, signal("9")), want: levelTasks, wantMark: markDied},
		{name: "task container sent SIGHUP stays", msg: msg(events.ContainerEventType, events.ActionKill, signal("1"))},
		{name: "task container die", msg: msg(events.ContainerEventType, events.ActionDie, task), want: levelTasks, wantMark: markDied},
		{name: "task container create", msg: msg(events.ContainerEventType, events.ActionCreate, task)},
		{name: "plain container", msg: msg(events.ContainerEventType, events.ActionStart, map[string]string{"name": "x"})},
		{name: "network removed", networks: []string{"front"}, msg: msg(events.NetworkEventType, events.ActionRemove, nil), want: levelFull},
		{name: "own container joins a network", msg: msg(events.NetworkEventType, events.ActionConnect, map[string]string{"container": self + "ffff"}), want: levelFull},
		{name: "other container joins", msg: msg(events.NetworkEventType, events.ActionConnect, map[string]string{"container": "0123"})},
		{name: "connect with named networks", networks: []string{"front"}, msg: msg(events.NetworkEventType, events.ActionConnect, map[string]string{"container": self})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWatcher(Config{Docker: &fakeDocker{}, Networks: tc.networks})
			if err != nil {
				t.Fatal(err)
			}
			w.selfID = func() (string, error) { return self, nil }
			l := newLoop(w)
			if got := l.classify(tc.msg); got != tc.want {
				t.Errorf("level = %v, want %v", got, tc.want)
			}
			if got := l.marks["t1"].what; got != tc.wantMark {
				t.Errorf("mark = %v, want %v", got, tc.wantMark)
			}
		})
	}
}

func TestPruneMarks(t *testing.T) {
	now := time.Now()
	w, err := NewWatcher(Config{Docker: &fakeDocker{}})
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(w)
	task := func(id string, state swarm.TaskState) swarm.Task {
		return swarm.Task{ID: id, DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: state}}
	}
	l.tasks = []swarm.Task{
		task("started-lagging", swarm.TaskStateStarting),
		task("started-agreed", swarm.TaskStateRunning),
		task("died-lagging", swarm.TaskStateRunning),
		task("died-agreed", swarm.TaskStateFailed),
		task("old", swarm.TaskStateStarting),
	}
	l.marks = map[string]mark{
		"started-lagging": {markStarted, now},
		"started-agreed":  {markStarted, now},
		"died-lagging":    {markDied, now},
		"died-agreed":     {markDied, now},
		"old":             {markStarted, now.Add(-2 * markTTL)},
		"gone":            {markDied, now},
	}
	l.pruneMarks(now)
	var kept []string
	for id := range l.marks {
		kept = append(kept, id)
	}
	slices.Sort(kept)
	if want := []string{"died-lagging", "started-lagging"}; !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
}

// TestLoopServesRoutesFileWhileDockerIsDown: with Docker failing from the
// start, the routes file's routes are published at once in a partial table
// (the proxy answers 503 rather than 404 for anything else); once Docker
// answers, the complete table follows.
func TestLoopServesRoutesFileWhileDockerIsDown(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routes.yml")
	if err := os.WriteFile(file, []byte("services:\n  - name: legacy\n    upstreams: [\"127.0.0.1:8080\"]\n    labels:\n      ingress.host: legacy.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fakeDocker{events: make(chan events.Message, 1)}
	f.set(nil, errors.New("connection refused"))
	tables := make(chan *route.Table, 10)
	w, err := NewWatcher(Config{Docker: f, Networks: []string{"front"}, Resync: time.Hour, RoutesFile: file,
		Publish: func(t *route.Table) { tables <- t }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	first := next(t, tables)
	if !first.Partial || first.Match("legacy.test", "/") == nil || len(first.Routes) != 1 {
		t.Fatalf("first table: partial %v, %d routes, legacy.test routed %v; want the routes file alone, partial",
			first.Partial, len(first.Routes), first.Match("legacy.test", "/") != nil)
	}
	// Docker keeps failing: reconnects publish nothing new.
	noPublishUntil(t, tables, "three failed service lists", func() bool { return f.lists() >= 3 })

	f.set([]swarm.Service{fakeService("a", "a.test")}, nil)
	full := next(t, tables)
	if full.Partial || full.Match("a.test", "/") == nil || full.Match("legacy.test", "/") == nil {
		t.Fatalf("after Docker answered: partial %v, a.test routed %v, legacy.test routed %v",
			full.Partial, full.Match("a.test", "/") != nil, full.Match("legacy.test", "/") != nil)
	}
}

// TestPollTasks: the task poll asks only for the tasks of tasks-mode
// services, rebuilds when one of them changed and not otherwise.
func TestPollTasks(t *testing.T) {
	vip := fakeService("vip", "vip.test")
	tasks := fakeService("tasks", "tasks.test")
	tasks.Spec.Labels["ingress.upstream"] = "tasks"
	task := func(id string, index uint64, ip string) swarm.Task {
		tk := swarm.Task{ID: id, ServiceID: "tasks", DesiredState: swarm.TaskStateRunning,
			Status:              swarm.TaskStatus{State: swarm.TaskStateRunning},
			NetworksAttachments: []swarm.NetworkAttachment{{Network: swarm.Network{ID: "n1"}, Addresses: []string{ip + "/24"}}}}
		tk.Version.Index = index
		return tk
	}
	f := &fakeDocker{tasks: []swarm.Task{task("t1", 1, "10.0.0.11")}}
	f.set([]swarm.Service{vip, tasks}, nil)
	var published []*route.Table
	w, err := NewWatcher(Config{Docker: f, Networks: []string{"front"}, Publish: func(t *route.Table) { published = append(published, t) }})
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(w)
	if err := l.refresh(t.Context(), levelFull); err != nil {
		t.Fatal(err)
	}
	upstreams := func() string {
		r := l.last.Match("tasks.test", "/")
		if r == nil {
			return "no route"
		}
		return fmt.Sprint(r.Upstreams)
	}
	if got := upstreams(); got != "[10.0.0.11:80]" {
		t.Fatalf("after the full read: upstreams %s", got)
	}

	n := len(published)
	if err := l.pollTasks(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(published) != n {
		t.Fatalf("an unchanged poll published a table")
	}
	if got := f.taskFilters[len(f.taskFilters)-1].Get("service"); !slices.Equal(got, []string{"tasks"}) {
		t.Fatalf("the poll asked for the tasks of services %v, want [tasks] only", got)
	}

	f.mu.Lock()
	f.tasks = append(f.tasks, task("t2", 2, "10.0.0.12"))
	f.mu.Unlock()
	if err := l.pollTasks(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := upstreams(); len(published) != n+1 || got != "[10.0.0.11:80 10.0.0.12:80]" {
		t.Fatalf("after a new task: %d new tables, upstreams %s", len(published)-n, got)
	}
}
