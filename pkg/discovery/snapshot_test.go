package discovery

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func TestConvertServices(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := func(id string, mutate func(*swarm.Service)) swarm.Service {
		s := swarm.Service{ID: id, Meta: swarm.Meta{CreatedAt: created}}
		s.Spec.Name = "name-" + id
		mutate(&s)
		return s
	}
	att := func(netID string, addrs ...string) swarm.NetworkAttachment {
		a := swarm.NetworkAttachment{Addresses: addrs}
		a.Network.ID = netID
		return a
	}
	task := func(id, service string, desired, state swarm.TaskState, atts ...swarm.NetworkAttachment) swarm.Task {
		return swarm.Task{ID: id, ServiceID: service, NodeID: "node1", DesiredState: desired,
			Status: swarm.TaskStatus{State: state}, NetworksAttachments: atts}
	}
	run, start, shut := swarm.TaskStateRunning, swarm.TaskStateStarting, swarm.TaskStateShutdown
	a4 := netip.MustParseAddr

	tests := []struct {
		name  string
		svc   swarm.Service
		tasks []swarm.Task
		marks map[string]taskMark
		want  Service
	}{
		{
			name: "vip service: labels, IPv4 VIPs without prefix, networks from spec and VIPs",
			svc: svc("s1", func(s *swarm.Service) {
				s.Spec.Labels = map[string]string{"ingress.host": "a.test"}
				s.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "net1"}, {Target: "net3"}}
				s.Endpoint.VirtualIPs = []swarm.EndpointVirtualIP{
					{NetworkID: "net1", Addr: "10.0.1.5/24"},
					{NetworkID: "net2", Addr: "fd00::5/64"},
					{NetworkID: "ingressnet", Addr: "10.255.0.9/16"},
				}
			}),
			want: Service{ID: "s1", Name: "name-s1", Created: created, Labels: map[string]string{"ingress.host": "a.test"},
				EndpointMode: "vip", VIPs: map[string]netip.Addr{"net1": a4("10.0.1.5"), "ingressnet": a4("10.255.0.9")},
				Networks: []string{"net1", "net3", "ingressnet"}},
		},
		{
			name: "dnsrr from the endpoint; running tasks only, with IPv4 addresses",
			svc: svc("s2", func(s *swarm.Service) {
				s.Endpoint.Spec.Mode = swarm.ResolutionModeDNSRR
				s.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "net1"}}
			}),
			tasks: []swarm.Task{
				task("t1", "s2", run, run, att("net1", "fd00::7/64", "10.0.1.7/24"), att("net2", "fd00::8/64")),
				task("t2", "s2", run, start, att("net1", "10.0.1.8/24")),
				task("t3", "s2", shut, run, att("net1", "10.0.1.9/24")),
				task("t4", "other", run, run, att("net1", "10.0.1.10/24")),
			},
			want: Service{ID: "s2", Name: "name-s2", Created: created, EndpointMode: "dnsrr", VIPs: map[string]netip.Addr{},
				Networks: []string{"net1"},
				Tasks:    []Task{{ID: "t1", Node: "node1", Addrs: map[string]netip.Addr{"net1": a4("10.0.1.7")}}}},
		},
		{
			name: "container events on this node beat the manager's lag",
			svc: svc("s3", func(s *swarm.Service) {
				s.Spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
				s.Endpoint.Spec.Mode = swarm.ResolutionModeDNSRR // the spec wins
			}),
			tasks: []swarm.Task{
				task("started", "s3", run, start, att("n", "10.0.2.1/24")),
				task("died", "s3", run, run, att("n", "10.0.2.2/24")),
				task("startedButShutdown", "s3", shut, start, att("n", "10.0.2.3/24")),
			},
			marks: map[string]taskMark{"started": markStarted, "died": markDied, "startedButShutdown": markStarted},
			want: Service{ID: "s3", Name: "name-s3", Created: created, EndpointMode: "vip", VIPs: map[string]netip.Addr{},
				Tasks: []Task{{ID: "started", Node: "node1", Addrs: map[string]netip.Addr{"n": a4("10.0.2.1")}}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := convertServices([]swarm.Service{tc.svc}, tc.tasks, tc.marks)
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestIPv4(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when rejected
	}{
		{in: "10.0.1.5/24", want: "10.0.1.5"},
		{in: "10.0.1.5", want: "10.0.1.5"},
		{in: "::ffff:10.0.1.5", want: "10.0.1.5"},
		{in: "fd00::1/64"},
		{in: "::1"},
		{in: ""},
		{in: "localhost"},
	}
	for _, tc := range tests {
		got, ok := ipv4(tc.in)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("ipv4(%q) = %v, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}
