package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// TestOutlierEjectionE2E: through the ingress image, a service of two tasks
// (upstream=tasks, eject.after=3, eject.for=5s) one of whose tasks starts
// failing. Answering 500, it is ejected at its third 500 and gets no
// request while ejected; refusing connections, it is ejected at the first
// refusal and no request fails (each is retried on the other task, POSTs
// included: nothing was sent). Each time, once it answers again it is back
// in the rotation after its ejection. /api/routes and the metrics say so.
func TestOutlierEjectionE2E(t *testing.T) {
	rig := swarmtest.New(t)
	net := rig.Network(t, "eject-e2e")
	base, admin, ingressID := startIngressAdmin(t, rig, net)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ingressID)
		}
	})

	host := rig.Name("eject") + ".test"
	backend := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Labels: map[string]string{
			"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
			"ingress.eject.after": "3", "ingress.eject.for": "5s",
		}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(2))}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
	})
	tasks := rig.WaitTasks(t, backend, 2)
	waitBothReplicas(t, base, host)
	victim := tasks[0].Status.ContainerStatus.ContainerID
	victimName := victim[:12] // the container's hostname, in the echo
	victimAddr := swarmtest.TaskIP(tasks[0], net.Name)
	c := &ejectClient{t: t, base: base, host: host, http: &http.Client{Timeout: 30 * time.Second}}

	t.Run("500s", func(t *testing.T) {
		c.t = t
		execFail(t, rig, victim, "500")
		// Sequential requests: the proxy sees each outcome before the next.
		fails := 0
		for i := 0; fails < 3; i++ {
			if i == 300 {
				t.Fatalf("%d requests, %d answered 500: the failing task gets no traffic", i, fails)
			}
			if code, _ := c.get(); code == http.StatusInternalServerError {
				fails++
			}
		}
		ejectedAt := time.Now()
		st := upstreamHealth(t, admin, victimAddr)
		if st.State != "ejected" || st.Reason != "status" || st.ConsecutiveFailures != 3 {
			t.Fatalf("after 3 answers of 500: %+v, want ejected (status, 3 failures)", st)
		}
		// While ejected (5s; only requests sent well within it count, so
		// that a slow machine cannot let the trial in), no 500.
		sent, bad := 0, 0
		for time.Since(ejectedAt) < 3*time.Second && sent < 200 {
			sent++
			if code, _ := c.get(); code != http.StatusOK {
				bad++
			}
		}
		t.Logf("500s: ejected at the 3rd 500 (eject.after=3); then %d requests in %s while ejected, %d not 200",
			sent, time.Since(ejectedAt).Round(time.Millisecond), bad)
		if bad > 0 || sent < 10 {
			t.Fatalf("%d of %d requests failed while the task was ejected", bad, sent)
		}
		if v := metric(t, admin, `ingress_upstream_ejections_total{reason="status",route="`+serviceName(t, rig, backend)+`/default"}`); v != 1 {
			t.Fatalf("ingress_upstream_ejections_total{reason=status} = %v, want 1", v)
		}

		execFail(t, rig, victim, "off")
		back := c.waitTask(victimName)
		t.Logf("500s: the task answered again %s after it recovered (%s after its ejection; eject.for=5s, one trial)",
			back.Round(time.Millisecond), time.Since(ejectedAt).Round(time.Millisecond))
		if st := upstreamHealth(t, admin, victimAddr); st.State != "up" || st.ConsecutiveFailures != 0 {
			t.Fatalf("after recovery: %+v, want up", st)
		}
	})

	t.Run("refused", func(t *testing.T) {
		c.t = t
		execFail(t, rig, victim, "refuse")
		start := time.Now()
		sent, bad := 0, []string{}
		for ; sent < 200; sent++ {
			post := sent%2 == 1
			if err := one(c.http, base, host, post); err != nil {
				bad = append(bad, err.Error())
			}
		}
		st := upstreamHealth(t, admin, victimAddr)
		t.Logf("refused: %d requests (GET and POST) in %s, %d failed; the task: %+v", sent, time.Since(start).Round(time.Millisecond), len(bad), st)
		if len(bad) > 0 {
			t.Fatalf("%d of %d requests failed while a task refused connections: %q", len(bad), sent, bad[:min(len(bad), 10)])
		}
		if st.State != "ejected" && st.State != "trial" || st.Reason != "connect" {
			t.Fatalf("the refusing task: %+v, want ejected for connect", st)
		}
		if v := metric(t, admin, `ingress_upstream_ejections_total{reason="connect",route="`+serviceName(t, rig, backend)+`/default"}`); v < 1 {
			t.Fatalf("ingress_upstream_ejections_total{reason=connect} = %v, want at least 1", v)
		}

		execFail(t, rig, victim, "off")
		back := c.waitTask(victimName)
		t.Logf("refused: the task answered again %s after it listened again", back.Round(time.Millisecond))
		if st := upstreamHealth(t, admin, victimAddr); st.State != "up" {
			t.Fatalf("after recovery: %+v, want up", st)
		}
	})
}

type ejectClient struct {
	t          *testing.T
	base, host string
	http       *http.Client
}

// get sends a GET and returns the status and the answering task's hostname
// ("" for an answer that is not the echo).
func (c *ejectClient) get() (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+"/", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Host = c.host
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("GET: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var echo struct{ Hostname string }
	_ = json.Unmarshal(body, &echo)
	return res.StatusCode, echo.Hostname
}

// waitTask sends a GET every 50ms until task answers one, and returns how
// long that took.
func (c *ejectClient) waitTask(task string) time.Duration {
	c.t.Helper()
	start := time.Now()
	for time.Since(start) < 2*time.Minute {
		if code, name := c.get(); code == http.StatusOK && name == task {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("task %s did not answer again within 2m", task)
	return 0
}

// execFail runs `testbackend fail MODE` in the container.
func execFail(t *testing.T, rig *swarmtest.Rig, ctr, mode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := rig.Client.ContainerExecCreate(ctx, ctr, container.ExecOptions{Cmd: []string{"/app", "fail", mode}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec fail %s: %v", mode, err)
	}
	att, err := rig.Client.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec fail %s: attach: %v", mode, err)
	}
	defer att.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, att.Reader)
	insp, err := rig.Client.ContainerExecInspect(ctx, ex.ID)
	if err != nil || insp.ExitCode != 0 {
		t.Fatalf("exec fail %s: exit %d %v: %s", mode, insp.ExitCode, err, out.String())
	}
}

// upstreamState is one upstream_health entry of GET /api/routes.
type upstreamState struct {
	Upstream            string `json:"upstream"`
	State               string `json:"state"`
	Reason              string `json:"reason"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	EjectedUntil        string `json:"ejected_until"`
	Check               string `json:"check"`
	CheckError          string `json:"check_error"`
}

// upstreamHealth reads the state of the upstream at addr (an IPv4 address,
// any port) from the admin API.
func upstreamHealth(t *testing.T, admin, addr string) upstreamState {
	t.Helper()
	body := swarmtest.WaitHTTP(t, admin+"/api/routes", http.StatusOK)
	var v struct {
		Routes []struct {
			UpstreamHealth []upstreamState `json:"upstream_health"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("/api/routes: %v", err)
	}
	for _, r := range v.Routes {
		for _, u := range r.UpstreamHealth {
			if strings.HasPrefix(u.Upstream, addr+":") {
				return u
			}
		}
	}
	t.Fatalf("/api/routes has no upstream_health for %s: %s", addr, body)
	return upstreamState{}
}

// metric reads one series, written as in the text format, from /metrics.
func metric(t *testing.T, admin, series string) float64 {
	t.Helper()
	body := swarmtest.WaitHTTP(t, admin+"/metrics", http.StatusOK)
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

func serviceName(t *testing.T, rig *swarmtest.Rig, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, _, err := rig.Client.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect service: %v", err)
	}
	return svc.Spec.Name
}

// startIngressAdmin is startIngress with the admin listener published too;
// it returns the HTTP and admin base URLs and the service ID.
func startIngressAdmin(t *testing.T, rig *swarmtest.Rig, net swarmtest.Network) (string, string, string) {
	t.Helper()
	sockGroup, err := swarmtest.FileGroup("/var/run/docker.sock")
	if err != nil {
		t.Fatalf("stat docker socket: %v", err)
	}
	port, adminPort := swarmtest.FreePort(t), swarmtest.FreePort(t)
	for adminPort == port {
		adminPort = swarmtest.FreePort(t)
	}
	id := rig.CreateService(t, swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: rig.IngressImage(t),
				User:  fmt.Sprintf("65532:%d", sockGroup),
				Env:   []string{"INGRESS_SHUTDOWN_GRACE=1s", "INGRESS_LOG_LEVEL=debug", "INGRESS_ADMIN_ADDR=0.0.0.0:8080"},
				Mounts: []mount.Mount{{
					Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true,
				}},
			},
			Networks: []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{
			{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost},
			{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8080, PublishedPort: uint32(adminPort), PublishMode: swarm.PortConfigPublishModeHost},
		}},
	})
	rig.WaitTasks(t, id, 1)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	swarmtest.WaitHTTP(t, base+"/", http.StatusNotFound)
	return base, fmt.Sprintf("http://127.0.0.1:%d", adminPort), id
}

// TestActiveHealthCheckE2E: with health.path (interval 1s) and passive
// ejection off for answers (eject.after=0), a task whose /healthz starts
// failing leaves the rotation at its next check and is back at the first
// check that passes.
func TestActiveHealthCheckE2E(t *testing.T) {
	rig := swarmtest.New(t)
	net := rig.Network(t, "check-e2e")
	base, admin, ingressID := startIngressAdmin(t, rig, net)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ingressID)
		}
	})
	host := rig.Name("check") + ".test"
	backend := rig.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Labels: map[string]string{
			"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
			"ingress.eject.after": "0", "ingress.health.path": "/healthz", "ingress.health.interval": "1s",
			"ingress.health.timeout": "500ms",
		}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(2))}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
		},
	})
	tasks := rig.WaitTasks(t, backend, 2)
	waitBothReplicas(t, base, host)
	victim := tasks[0].Status.ContainerStatus.ContainerID
	victimAddr := swarmtest.TaskIP(tasks[0], net.Name)
	c := &ejectClient{t: t, base: base, host: host, http: &http.Client{Timeout: 30 * time.Second}}

	execFail(t, rig, victim, "500")
	failed := time.Now()
	st := waitState(t, admin, victimAddr, "failing_check")
	out := time.Since(failed)
	if !strings.Contains(st.CheckError, "500") {
		t.Fatalf("failing check: %+v, want the 500 named", st)
	}
	bad := 0
	for range 100 {
		if code, _ := c.get(); code != http.StatusOK {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of 100 requests failed while the task failed its check", bad)
	}
	if v := metric(t, admin, `ingress_upstreams_failing_check{route="`+serviceName(t, rig, backend)+`/default"}`); v != 1 {
		t.Fatalf("ingress_upstreams_failing_check = %v, want 1", v)
	}
	execFail(t, rig, victim, "off")
	back := c.waitTask(victimAddrName(tasks[0]))
	t.Logf("active check (interval 1s): out of rotation %s after it failed, 100 requests then without error, back %s after it recovered",
		out.Round(time.Millisecond), back.Round(time.Millisecond))
	if st := upstreamHealth(t, admin, victimAddr); st.State != "up" || st.Check != "passing" {
		t.Fatalf("after recovery: %+v, want up and passing", st)
	}
}

func victimAddrName(task swarm.Task) string { return task.Status.ContainerStatus.ContainerID[:12] }

// waitState polls /api/routes every 100ms until the upstream at addr is in
// state (hang guard: 30s).
func waitState(t *testing.T, admin, addr, state string) upstreamState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := upstreamHealth(t, admin, addr)
		if st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream %s: %+v, not %s within 30s", addr, st, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
