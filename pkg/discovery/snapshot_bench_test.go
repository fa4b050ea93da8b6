package discovery

import (
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// swarmInput makes n Swarm services as the API lists them, on two networks,
// every third one in tasks mode with three running tasks.
func swarmInput(n int) ([]swarm.Service, []swarm.Task) {
	var svcs []swarm.Service
	var tasks []swarm.Task
	for i := range n {
		s := swarm.Service{ID: fmt.Sprintf("svc%05d", i), Meta: swarm.Meta{CreatedAt: time.Unix(int64(i), 0)}}
		s.Spec.Name = fmt.Sprintf("svc-%05d", i)
		s.Spec.Labels = map[string]string{"ingress.host": s.Spec.Name + ".example.com", "ingress.port": "8080"}
		s.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "front"}, {Target: "apps"}}
		s.Endpoint.VirtualIPs = []swarm.EndpointVirtualIP{
			{NetworkID: "front", Addr: fmt.Sprintf("10.%d.%d.1/16", i>>8, i&255)},
			{NetworkID: "apps", Addr: fmt.Sprintf("10.%d.%d.2/16", 100+i>>8, i&255)},
		}
		if i%3 == 0 {
			s.Spec.Labels["ingress.upstream"] = "tasks"
			for k := range 3 {
				task := swarm.Task{ID: fmt.Sprintf("%s.%d", s.ID, k), ServiceID: s.ID, NodeID: "node1",
					DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}
				att := swarm.NetworkAttachment{Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", i>>8, i&255, 10+k)}}
				att.Network.ID = "front"
				task.NetworksAttachments = []swarm.NetworkAttachment{att}
				tasks = append(tasks, task)
			}
		}
		svcs = append(svcs, s)
	}
	return svcs, tasks
}

// BenchmarkRebuild5000 is the watcher's work per rebuild once Docker has
// answered: convert 5,000 services (and their tasks), Build, index the table
// and compare it with the last one.
func BenchmarkRebuild5000(b *testing.B) {
	svcs, tasks := swarmInput(5000)
	nets := []Network{{ID: "front", Name: "front"}}
	rebuild := func() *route.Table {
		routes, errs := Build(Input{LabelPrefix: DefaultLabelPrefix, Networks: nets, Services: convertServices(svcs, tasks, nil)})
		return route.New(route.Snapshot{Routes: routes, Errors: errs, HostLabel: HostLabel(DefaultLabelPrefix)})
	}
	last := rebuild()
	if len(last.Routes) != 5000 || len(last.Errors) != 0 {
		b.Fatalf("%d routes, %d errors; want 5000, 0", len(last.Routes), len(last.Errors))
	}
	b.ReportAllocs()
	for b.Loop() {
		t := rebuild()
		if !t.SameContent(last) {
			b.Fatal("same input, different table")
		}
	}
}
