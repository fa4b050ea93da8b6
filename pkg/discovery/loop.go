package discovery

import (
	"context"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// Swarm labels on the containers of tasks (container events carry them).
const (
	labelServiceID = "com.docker.swarm.service.id"
	labelTaskID    = "com.docker.swarm.task.id"
)

// stream is one open Docker events subscription.
type stream struct {
	msgs   <-chan events.Message
	errs   <-chan error
	cancel context.CancelFunc
}

// run is the watcher's single goroutine: it merges Docker events (debounced),
// the resync timer, the task and routes-file poll, and reconnects with
// exponential backoff. Every Docker error leads to a reconnect, and every
// (re)connect to a full resync; until then the last table stays published.
func (l *loop) run(ctx context.Context) {
	var (
		st        stream // zero while disconnected
		opened    = make(chan stream, 1)
		connected bool
		everUp    bool
		upSince   time.Time
		backoff   = minBackoff
		pending   level
		armed     bool
	)
	reconnect := time.NewTimer(0)
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	resync := time.NewTicker(l.cfg.Resync)
	poll := time.NewTicker(pollPeriod)
	taskPoll := time.NewTicker(taskPollPeriod)
	defer func() {
		taskPoll.Stop()
		reconnect.Stop()
		debounce.Stop()
		resync.Stop()
		poll.Stop()
		if st.cancel != nil {
			st.cancel()
		}
	}()

	drop := func(err error) {
		if connected && time.Since(upSince) > maxBackoff {
			backoff = minBackoff // that connection was good for a while: start over
		}
		if st.cancel != nil {
			st.cancel()
		}
		st, connected = stream{}, false
		l.log.Warn().Err(err).Dur(fieldBackoff, backoff).Msg("docker unreachable; keeping the last table and reconnecting")
		reconnect.Reset(backoff)
		backoff = min(2*backoff, maxBackoff)
	}
	refresh := func(lvl level) {
		if err := l.refresh(ctx, lvl); err != nil && ctx.Err() == nil {
			drop(err)
		}
	}

	if l.static.check(ctx) {
		refresh(levelStatic) // a partial table: the routes file serves before Docker answers
	}
	for {
		select {
		case <-ctx.Done():
			return

		case <-reconnect.C:
			go l.open(ctx, opened)

		case s := <-opened:
			st = s
			if ctx.Err() != nil {
				return
			}
			select {
			case err := <-s.errs: // the stream did not open
				drop(err)
				continue
			default:
			}
			// The stream is open before the resync, so no change falls between.
			if err := l.refresh(ctx, levelFull); err != nil {
				if ctx.Err() == nil {
					drop(err)
				}
				continue
			}
			if everUp {
				l.log.Info().Msg("docker reachable again; resynced")
			}
			connected, everUp, upSince = true, true, time.Now()

		case m := <-st.msgs:
			if lvl := l.classify(m); lvl > pending {
				pending = lvl
			}
			if pending > 0 && !armed {
				debounce.Reset(l.cfg.Debounce)
				armed = true
			}

		case err := <-st.errs:
			drop(err)

		case <-debounce.C:
			lvl := pending
			pending, armed = 0, false
			if connected && lvl > 0 {
				refresh(lvl)
			}

		case <-resync.C:
			staticChanged := l.static.resolve(ctx) // its names may point elsewhere now
			switch {
			case connected:
				refresh(levelFull)
			case staticChanged:
				refresh(levelStatic)
			}

		case <-poll.C:
			if l.static.check(ctx) {
				refresh(levelStatic) // no Docker call: works while Docker is away
			}

		case <-taskPoll.C:
			if !connected {
				continue
			}
			if err := l.pollTasks(ctx); err != nil && ctx.Err() == nil {
				drop(err)
			}
		}
	}
}

// open subscribes to the events that can change the table and hands the
// stream to out. A stream that does not open within connectTimeout fails.
func (l *loop) open(ctx context.Context, out chan<- stream) {
	sctx, cancel := context.WithCancel(ctx)
	t := time.AfterFunc(connectTimeout, cancel)
	msgs, errs := l.api.Events(sctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("event", string(events.ActionCreate)),
		filters.Arg("event", string(events.ActionUpdate)),
		filters.Arg("event", string(events.ActionRemove)),
		filters.Arg("event", string(events.ActionDestroy)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionKill)),
		filters.Arg("event", string(events.ActionHealthStatus)), // matches every "health_status: …"
		filters.Arg("event", string(events.ActionConnect)),
		filters.Arg("event", string(events.ActionDisconnect)),
	)})
	t.Stop()
	out <- stream{msgs: msgs, errs: errs, cancel: cancel}
}

// classify says how much to refresh for one event (0: nothing). What a task
// container on this node does is also remembered (see marks.go), because
// the Swarm manager reports the task's new state only later.
func (l *loop) classify(m events.Message) level {
	attrs := m.Actor.Attributes
	switch m.Type {
	case events.ServiceEventType:
		return levelServices
	case events.ContainerEventType:
		task := attrs[labelTaskID]
		if attrs[labelServiceID] == "" || task == "" {
			return 0
		}
		switch {
		case m.Action == events.ActionStart:
			// A container with a HEALTHCHECK is routable once healthy,
			// not when its process starts (Swarm keeps such a task in
			// "starting" until then).
			if !l.hasHealthcheck(m.Actor.ID) {
				l.mark(task, markStarted)
			}
		case m.Action == events.ActionHealthStatusHealthy:
			l.mark(task, markStarted)
		case m.Action == events.ActionHealthStatusUnhealthy, m.Action == events.ActionDie:
			l.mark(task, markDied)
		case m.Action == events.ActionKill && stopSignals[attrs["signal"]]:
			l.mark(task, markDied) // being stopped: drain it now, before it stops answering
		default:
			return 0
		}
		return levelTasks
	case events.NetworkEventType:
		switch m.Action {
		case events.ActionCreate, events.ActionDestroy, events.ActionRemove:
			return levelFull
		case events.ActionConnect, events.ActionDisconnect:
			if len(l.cfg.Networks) > 0 {
				return 0
			}
			if id, err := l.w.selfID(); err == nil && strings.HasPrefix(attrs["container"], id) {
				return levelFull
			}
		}
	}
	return 0
}

// stopSignals are the "signal" attributes of kill events that stop a
// container: SIGTERM (docker stop, Swarm), SIGKILL, SIGINT and SIGQUIT (common
// stop signals). Other signals (SIGHUP to reload, say) leave the task routed.
var stopSignals = map[string]bool{"15": true, "9": true, "2": true, "3": true}

// inspectTimeout bounds the inspection of a container that just started.
const inspectTimeout = 5 * time.Second

// hasHealthcheck reports whether a container has a health check (from its
// image or its service), so that it must be healthy before it is routed.
// When Docker cannot tell (a slow or failing inspect), it answers false:
// the task is routed at its start, as before health was known, rather than
// left out until the manager reports it, which during a rolling update can
// leave a route with no task at all.
func (l *loop) hasHealthcheck(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), inspectTimeout)
	defer cancel()
	c, err := l.api.ContainerInspect(ctx, id)
	if err != nil || c.Config == nil {
		l.log.Debug().Err(err).Str(fieldContainer, id).Msg("cannot tell whether a started container has a health check; routing it now")
		return false
	}
	hc := c.Config.Healthcheck
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}
