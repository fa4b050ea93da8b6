package discovery

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Log field names.
const (
	fieldGeneration = "generation"
	fieldRoutes     = "routes"
	fieldErrors     = "errors"
	fieldDuration   = "duration"
	fieldBackoff    = "backoff"
	fieldService    = "service"
	fieldLabel      = "label"
	fieldRead       = "read"
	fieldContainer  = "container"
)

// level says how much of the Docker state a refresh reads again.
type level uint8

const (
	levelStatic   level = iota + 1 // nothing: rebuild from the last state (routes file changed)
	levelTasks                     // tasks
	levelServices                  // services and tasks
	levelFull                      // networks, services and tasks
)

func (l level) String() string {
	switch l {
	case levelStatic:
		return "routes-file"
	case levelTasks:
		return "tasks"
	case levelServices:
		return "services"
	case levelFull:
		return "full"
	}
	return "none"
}

// loop is the state of one Run (or Check): the last good Docker state, the
// static routes file and the last published table. Only its goroutine uses it.
type loop struct {
	w      *Watcher
	cfg    Config
	api    DockerAPI
	log    zerolog.Logger
	static *routesFile

	have     bool // Docker was read successfully at least once
	nets     []Network
	netErrs  []route.Error
	services []swarm.Service
	tasks    []swarm.Task
	marks    map[string]mark // task ID -> container event on this node

	gen  uint64
	last *route.Table
}

func newLoop(w *Watcher) *loop {
	return &loop{
		w:      w,
		cfg:    w.cfg,
		api:    w.cfg.Docker,
		log:    w.cfg.Logger,
		static: newRoutesFile(w.cfg.RoutesFile, nil),
		marks:  map[string]mark{},
	}
}

// refresh reads lvl's part of the Docker state, builds a table and publishes
// it if its content changed. On a Docker error nothing changes: the last good
// state and table stay. Before Docker was ever read, levelStatic builds a
// partial table of the static routes alone, so that they are served while
// Docker cannot be reached.
func (l *loop) refresh(ctx context.Context, lvl level) error {
	start := time.Now()
	if !l.have && lvl > levelStatic {
		lvl = levelFull
	}
	if lvl > levelStatic {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		nets, netErrs, services := l.nets, l.netErrs, l.services
		if lvl >= levelFull {
			var err error
			setting := cmp.Or(l.cfg.NetworkSetting, defaultNetworkSetting)
			nets, err = resolveNetworks(ctx, l.api, l.cfg.Networks, setting, l.w.selfID)
			if netErrs, err = networkErrors(err, setting); err != nil {
				return err
			}
		}
		if lvl >= levelServices {
			var err error
			if services, err = listServices(ctx, l.api); err != nil {
				return err
			}
		}
		tasks, err := listTasks(ctx, l.api)
		if err != nil {
			return err
		}
		l.nets, l.netErrs, l.services, l.tasks, l.have = nets, netErrs, services, tasks, true
		l.pruneMarks(start)
	}
	l.build(start, lvl)
	return nil
}

// build makes a table from the current state and publishes it if its content
// differs from the last one.
func (l *loop) build(start time.Time, lvl level) {
	routes, errs := Build(Input{
		LabelPrefix: l.cfg.LabelPrefix,
		Networks:    l.nets,
		Services:    convertServices(l.services, l.tasks, l.markKinds()),
		Static:      l.static.services,
	})
	errs = append(errs, l.netErrs...)
	errs = append(errs, l.static.errors()...)
	t := route.New(route.Snapshot{
		Generation: l.gen + 1,
		UpdatedAt:  start, // when the read began: the version controllers send (pkg/control)
		Routes:     routes,
		Errors:     errs,
		HostLabel:  HostLabel(l.cfg.LabelPrefix),
		Partial:    !l.have, // the routes file only: Docker was never read
	})
	if l.last != nil && t.SameContent(l.last) {
		l.log.Debug().Stringer(fieldRead, lvl).Dur(fieldDuration, time.Since(start)).Msg("route table unchanged")
		return
	}
	prev := l.last
	l.gen, l.last = t.Generation, t
	l.w.table.Store(t)
	l.cfg.Publish(t)
	l.logPublish(t, prev, lvl, time.Since(start))
}

// logPublish writes one line per table and each error the first time it
// appears (not again at every rebuild while it lasts).
func (l *loop) logPublish(t, prev *route.Table, lvl level, d time.Duration) {
	l.log.Info().Uint64(fieldGeneration, t.Generation).Int(fieldRoutes, len(t.Routes)).
		Int(fieldErrors, len(t.Errors)).Stringer(fieldRead, lvl).Dur(fieldDuration, d).Msg("route table published")
	seen := map[route.Error]bool{}
	if prev != nil {
		for _, e := range prev.Errors {
			seen[e] = true
		}
	}
	for _, e := range t.Errors {
		if !seen[e] {
			l.log.Warn().Str(fieldService, e.Service).Str(fieldLabel, e.Label).Str(fieldErrors, e.Error).Msg("route error")
		}
	}
}

// taskServices returns the services that tasks-mode routes follow: their
// tasks' changes on other nodes come with no event and must be polled.
func (l *loop) taskServices() map[string]bool {
	if l.last == nil {
		return nil
	}
	var ids map[string]bool
	for _, r := range l.last.Routes {
		if r.Mode == route.ModeTasks && r.ServiceID != "" {
			if ids == nil {
				ids = map[string]bool{}
			}
			ids[r.ServiceID] = true
		}
	}
	return ids
}

// pollTasks reads again the tasks of the services tasks-mode routes follow,
// and only theirs, so that a poll stays cheap on a large cluster. It
// rebuilds only when one of those tasks changed (its version in the Swarm
// store). On a Docker error nothing changes.
func (l *loop) pollTasks(ctx context.Context) error {
	ids := l.taskServices()
	if len(ids) == 0 || !l.have {
		return nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	args := filters.NewArgs(filters.Arg("desired-state", string(swarm.TaskStateRunning)))
	for id := range ids {
		args.Add("service", id)
	}
	polled, err := l.api.TaskList(ctx, swarm.TaskListOptions{Filters: args})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	kept := make([]swarm.Task, 0, len(l.tasks))
	before := map[string]uint64{}
	for _, t := range l.tasks {
		if ids[t.ServiceID] {
			before[t.ID] = t.Version.Index
		} else {
			kept = append(kept, t)
		}
	}
	same := len(before) == len(polled)
	for _, t := range polled {
		if v, ok := before[t.ID]; !ok || v != t.Version.Index {
			same = false
		}
	}
	l.tasks = append(kept, polled...)
	if same {
		return nil
	}
	l.pruneMarks(start)
	l.build(start, levelTasks)
	return nil
}
