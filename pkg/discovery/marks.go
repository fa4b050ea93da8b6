package discovery

import (
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// Container events on this node tell what happens to a task before the Swarm
// manager reports it; the loop remembers them as marks that convertServices
// honours until the manager agrees. A task is marked started when its
// container starts (one without a health check) or turns healthy, and died
// when it turns unhealthy, is being stopped (kill with a stop signal: the
// task leaves the rotation before its process stops answering) or dies.

// taskMark is what this node's container events said about a task before the
// Swarm manager caught up: routable, or not any more.
type taskMark uint8

const (
	markStarted taskMark = iota + 1
	markDied
)

// mark is a task's container event on this node, kept until the manager agrees.
type mark struct {
	what taskMark
	at   time.Time
}

// markTTL bounds how long a container event overrides the manager's view.
const markTTL = time.Minute

func (l *loop) mark(task string, what taskMark) {
	l.marks[task] = mark{what: what, at: time.Now()}
}

func (l *loop) markKinds() map[string]taskMark {
	out := make(map[string]taskMark, len(l.marks))
	for id, m := range l.marks {
		out[id] = m.what
	}
	return out
}

// pruneMarks forgets container events once the manager agrees with them,
// once their task is gone from the list, or after markTTL.
func (l *loop) pruneMarks(now time.Time) {
	if len(l.marks) == 0 {
		return
	}
	state := make(map[string]swarm.TaskState, len(l.tasks))
	for _, t := range l.tasks {
		state[t.ID] = t.Status.State
	}
	for id, m := range l.marks {
		s, listed := state[id]
		agreed := (m.what == markStarted && s == swarm.TaskStateRunning) ||
			(m.what == markDied && listed && s != swarm.TaskStateRunning)
		if !listed || agreed || now.Sub(m.at) > markTTL {
			delete(l.marks, id)
		}
	}
}
