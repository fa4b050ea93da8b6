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
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// TestSplitStickyE2E proves issue 12's weighted and sticky routing on the
// real engine, through the ingress image: two services 90/10 on one host and
// path split 2,000 requests within 3 points; a client of a sticky service
// stays on one task for 200 requests and, when that task is killed, goes on
// without an error; and a task killed outright under a steady mix of GETs
// and POSTs fails no GET (docs/labels.md, "Split, sticky and slow start").
func TestSplitStickyE2E(t *testing.T) {
	rig := swarmtest.New(t)
	net := rig.Network(t, "split-e2e")
	base, ingressID := startIngress(t, rig, net)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, rig, ingressID)
		}
	})
	service := func(name string, replicas uint64, labels ...string) string {
		l := map[string]string{"ingress.tls": "off", "ingress.upstream": "tasks"}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = v
		}
		return rig.CreateService(t, swarm.ServiceSpec{
			Annotations: swarm.Annotations{Labels: l},
			Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(replicas)}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: rig.BackendImage(t), Hostname: name + "-{{.Task.Slot}}"},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: net.ID}},
			},
		})
	}

	t.Run("90/10 split over 2,000 requests", func(t *testing.T) {
		host := rig.Name("shop") + ".test"
		blue := service("blue", 1, "ingress.host="+host, "ingress.weight=90")
		green := service("green", 1, "ingress.host="+host, "ingress.weight=10")
		rig.WaitTasks(t, blue, 1)
		rig.WaitTasks(t, green, 1)
		c := &client{t: t, base: base, host: host, http: &http.Client{Timeout: 30 * time.Second}}
		c.waitSeen("blue-1", "green-1")
		counts := map[string]int{}
		for range 2000 {
			name, _ := c.get()
			counts[name]++
		}
		blueShare := 100 * float64(counts["blue-1"]) / 2000
		t.Logf("2,000 requests: blue %d (%.1f%%), green %d (%.1f%%)", counts["blue-1"], blueShare, counts["green-1"], 100-blueShare)
		if len(counts) != 2 || blueShare < 87 || blueShare > 93 {
			t.Fatalf("split %v, want 90/10 within 3 points", counts)
		}
	})

	t.Run("sticky survives its task's removal", func(t *testing.T) {
		host := rig.Name("cart") + ".test"
		cart := service("cart", 2, "ingress.host="+host, "ingress.sticky=true")
		tasks := rig.WaitTasks(t, cart, 2)
		c := &client{t: t, base: base, host: host, http: &http.Client{Timeout: 30 * time.Second}}
		c.waitSeen("cart-1", "cart-2")
		c.cookie = ""
		first, set := c.get()
		if set == "" {
			t.Fatal("the first response set no sticky cookie")
		}
		for i := range 200 {
			if name, again := c.get(); name != first || again != "" {
				t.Fatalf("request %d reached %s (want %s), Set-Cookie %q", i, name, first, again)
			}
		}
		t.Logf("200 of 200 requests on %s", first)

		var victim swarm.Task
		for _, task := range tasks {
			if fmt.Sprintf("cart-%d", task.Slot) == first {
				victim = task
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rig.Client.ContainerKill(ctx, victim.Status.ContainerStatus.ContainerID, "KILL"); err != nil {
			t.Fatalf("docker kill: %v", err)
		}
		next, set := c.get() // get fails the test on any error
		if next == first || set == "" {
			t.Fatalf("after the kill: reached %s with Set-Cookie %q; want the other task and a new cookie", next, set)
		}
		for i := range 50 {
			if name, again := c.get(); name != next || again != "" {
				t.Fatalf("after the kill, request %d reached %s (want %s), Set-Cookie %q", i, name, next, again)
			}
		}
		t.Logf("after docker kill of %s: 51 of 51 requests succeeded, all on %s", first, next)
	})

	t.Run("killed task under GET and POST load", func(t *testing.T) {
		host := rig.Name("orders") + ".test"
		orders := service("orders", 2, "ingress.host="+host)
		tasks := rig.WaitTasks(t, orders, 2)
		waitBothReplicas(t, base, host)
		// Each request stays 200ms at its task, so that the kill always
		// takes GETs and POSTs in flight with it.
		l := startMixedLoadAt(t, base, host, "/slow?d=200ms")
		time.Sleep(2 * time.Second) // load, not an assertion: traffic on both tasks before the kill
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rig.Client.ContainerKill(ctx, tasks[0].Status.ContainerStatus.ContainerID, "KILL"); err != nil {
			t.Fatalf("docker kill: %v", err)
		}
		waitReplaced(t, rig, orders, tasks[0].ID)
		waitBothReplicas(t, base, host)
		total, failures, rate := l.finish()
		var gets, posts []string
		for _, f := range failures {
			if strings.HasPrefix(f, http.MethodGet) {
				gets = append(gets, f)
			} else {
				posts = append(posts, f)
			}
		}
		t.Logf("docker kill under load: %d requests (%.0f req/s, half GET, half POST), %d GETs failed, %d POSTs failed %q",
			total, rate, len(gets), len(posts), posts)
		if len(gets) > 0 {
			t.Fatalf("%d GETs failed: %q", len(gets), gets[:min(len(gets), 10)])
		}
		// A POST the dead task may have received (it was in flight there
		// when SIGKILL came) is answered 502, never replayed on the other
		// task: the client decides whether to send it again. The access log
		// says where each 502 went.
		victim := taskAddr(t, tasks[0], net.ID)
		bad := badGateways(t, rig, ingressID, host)
		t.Logf("the ingress answered %d 502s, upstreams %v (killed task %s); %d attempts retried on another task",
			len(bad), bad, victim, countLogs(t, rig, ingressID, retryLog))
		if len(bad) != len(posts) {
			t.Fatalf("%d POSTs failed but the access log has %d 502s: %q", len(posts), len(bad), posts)
		}
		for _, b := range bad {
			if b != http.MethodPost+" "+victim {
				t.Errorf("a 502 that was not a POST in flight on the killed task: %s", b)
			}
		}
	})
}

// taskAddr is the task's IPv4 address on the network, as "ip:80".
func taskAddr(t *testing.T, task swarm.Task, netID string) string {
	t.Helper()
	for _, a := range task.NetworksAttachments {
		if a.Network.ID == netID && len(a.Addresses) > 0 {
			ip, _, _ := strings.Cut(a.Addresses[0], "/")
			return ip + ":80"
		}
	}
	t.Fatalf("task %s has no address on network %s", task.ID, netID)
	return ""
}

// badGateways returns "METHOD upstream" for each 502 the ingress's access
// log shows for host.
func badGateways(t *testing.T, rig *swarmtest.Rig, id, host string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := rig.Client.ServiceLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("service logs: %v", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read service logs: %v", err)
	}
	var bad []string
	for line := range strings.SplitSeq(out.String(), "\n") {
		var e struct {
			Method, Host, Upstream string
			Status                 int
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Host == host && e.Status == http.StatusBadGateway {
			bad = append(bad, e.Method+" "+e.Upstream)
		}
	}
	return bad
}

// client sends GETs with the sticky cookie it was given last.
type client struct {
	t          *testing.T
	base, host string
	http       *http.Client
	cookie     string // "name=value" of the last Set-Cookie
}

// get sends one GET and returns the hostname of the task that answered and
// the Set-Cookie it sent, if any. Any error or status but 200 fails the test.
func (c *client) get() (string, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+"/", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Host = c.host
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("GET: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		c.t.Fatalf("GET: %s, %v: %s", res.Status, err, body)
	}
	var echo struct{ Hostname string }
	if err := json.Unmarshal(body, &echo); err != nil {
		c.t.Fatalf("not the backend's echo: %v: %s", err, body)
	}
	set := ""
	if cs := res.Cookies(); len(cs) > 0 {
		set = cs[0].Name + "=" + cs[0].Value
		c.cookie = set
	}
	return echo.Hostname, set
}

// waitSeen polls until every named task answered: the ingress has them all
// in its table.
func (c *client) waitSeen(names ...string) {
	c.t.Helper()
	seen := map[string]bool{}
	for i := 0; ; i++ {
		if i == 600 {
			c.t.Fatalf("after %d requests only %v answered, want %v", i, seen, names)
		}
		body := swarmtest.WaitHTTPHost(c.t, c.base+"/", c.host, http.StatusOK)
		var echo struct{ Hostname string }
		if err := json.Unmarshal(body, &echo); err != nil {
			c.t.Fatalf("not the backend's echo: %v: %s", err, body)
		}
		seen[echo.Hostname] = true
		all := true
		for _, n := range names {
			all = all && seen[n]
		}
		if all {
			return
		}
	}
}
