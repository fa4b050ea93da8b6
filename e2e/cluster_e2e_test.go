//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/swarm-ingress/swarm-ingress/internal/clustertest"
	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// Ports the edges publish in host mode on every node. The admin listener is
// published too (examples/stack.yml keeps it on loopback), so that the test can
// read each edge's /api/routes.
const (
	edgeHTTP  = 80
	edgeHTTPS = 443
	edgeAdmin = 8080
	// serveAdmin is where the `ingress serve` placed on the worker publishes
	// its admin listener (the worker's edge holds 8080).
	serveAdmin = 18080
)

// Generous bounds on propagation: the goals are 100 ms (a label change) and
// 1 s (a new task), but a busy two-core machine must not fail the test; the
// figures are logged.
const (
	labelBound = 10 * time.Second
	taskBound  = 10 * time.Second
)

// split is the production shape of examples/stack.yml on a three-node
// cluster, with a global tasks-mode backend.
type split struct {
	c          *clustertest.Cluster
	image      string
	backendImg string
	control    swarmtest.Network
	edgeNet    swarmtest.Network
	secretID   string
	secretName string
	ctl        string // controller service ID
	ctlName    string
	edge       string // edge service ID
	app        string // backend service ID (global)
	appHost    string
	keyHost    string // host of the user-supplied certificate the controller sends the edges
	keyPEM     []byte // its private key
	keyDER     []byte
	keyScalar  []byte
	secret     []byte // the control secret's content
	pebble     *pebbletest.Pebble
}

// TestClusterSplitRoles deploys `ingress controller` (2 replicas on the
// managers, Docker socket mounted) and `ingress edge` (global, host-mode
// ports, no socket) on a real three-node Swarm and proves what issue 11 asks
// of the split, one subtest per claim.
func TestClusterSplitRoles(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	s := deploySplit(t, c)
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpServiceLogs(t, s.ctl, "controller")
			s.dumpServiceLogs(t, s.edge, "edge")
		}
	})

	t.Run("every edge serves every task", s.testEveryEdge)
	t.Run("edges survive the controllers", s.testNoController)
	t.Run("propagation", s.testPropagation)
	t.Run("serve on a worker says so", s.testServeOnWorker)
	t.Run("channel is authenticated and encrypted", s.testChannel)
	t.Run("acme through the worker's edge", s.testACME)
	t.Run("node cut off under load", s.testCut)
}

func deploySplit(t *testing.T, c *clustertest.Cluster) *split {
	t.Helper()
	s := &split{c: c, image: c.IngressImage(t), backendImg: c.BackendImage(t)}
	s.control = c.Network(t, "control")
	s.edgeNet = c.Network(t, "edge")
	s.secret = []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 32)))
	s.secretName = c.Name("ingress-control")
	s.secretID = s.createSecret(t, s.secretName, s.secret)

	// A user-supplied certificate: the controller sends it, private key
	// included, to the edges, which is what the capture must not show.
	s.keyHost = c.Name("keyhost") + ".test"
	crt, key := s.selfSigned(t)
	crtName, keyName := c.Name("keyhost-crt"), c.Name("keyhost-key")
	crtID := s.createSecret(t, crtName, crt)
	keyID := s.createSecret(t, keyName, key)

	// The ACME CA, on the host's bridge address; its DNS sends every
	// validation to the worker's edge.
	s.pebble = pebbletest.New(t, pebbletest.Config{Listen: c.HostAddr, Target: c.Workers()[0].Addr, HTTPPort: edgeHTTP, TLSPort: edgeHTTPS})
	roots, err := os.ReadFile(s.pebble.RootsFile)
	if err != nil {
		t.Fatal(err)
	}
	rootsName, cacheKeyName := c.Name("acme-roots"), c.Name("ingress-cache-key")
	rootsID := s.createSecret(t, rootsName, roots)
	cacheKeyID := s.createSecret(t, cacheKeyName, randomBytes(t, 32))

	s.ctlName = c.Name("controller")
	s.ctl = c.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: s.ctlName},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(2))}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  s.image,
				Args:   []string{"controller"},
				User:   "0", // the nodes' sockets are root's; examples/stack.yml uses the socket's group
				Env:    s.controllerEnv(),
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true}},
				Secrets: []*swarm.SecretReference{s.secretRef(s.secretID, s.secretName, "/run/secrets/ingress-control", "0"), s.secretRef(crtID, crtName, "/certs/keyhost.crt", "0"), s.secretRef(keyID, keyName, "/certs/keyhost.key", "0"),
					s.secretRef(rootsID, rootsName, "/run/secrets/acme-roots", "0"), s.secretRef(cacheKeyID, cacheKeyName, "/run/secrets/ingress-cache-key", "0"),
				},
			},
			Networks:  []swarm.NetworkAttachmentConfig{{Target: s.control.ID}},
			Placement: &swarm.Placement{Constraints: []string{"node.role == manager"}, MaxReplicas: 1},
		},
	})
	s.edge = c.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: c.Name("edge")},
		Mode:        swarm.ServiceMode{Global: &swarm.GlobalService{}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: s.image,
				Args:  []string{"edge"},
				User:  "65532:65532",
				Env:   s.edgeEnv(),
				// As examples/stack.yml: a named volume per node, so a new task
				// on the same node finds the last state.
				Mounts:  []mount.Mount{{Type: mount.TypeVolume, Source: c.Name("edge-data"), Target: "/data"}},
				Secrets: []*swarm.SecretReference{s.secretRef(s.secretID, s.secretName, "ingress-control", "65532")},
			},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: s.control.ID}, {Target: s.edgeNet.ID}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(time.Second)},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{
			hostPort(edgeHTTP, edgeHTTP), hostPort(edgeHTTPS, edgeHTTPS), hostPort(edgeAdmin, edgeAdmin),
		}},
	})
	s.appHost = c.Name("app") + ".test"
	s.app = c.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: c.Name("app"), Labels: map[string]string{
			"ingress.host": s.appHost, "ingress.tls": "off", "ingress.upstream": "tasks",
		}},
		Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: s.backendImg},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: s.edgeNet.ID}},
		},
	})
	// The certificate's route: tls=auto, served from the file.
	c.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: c.Name("keyhost"), Labels: map[string]string{
			"ingress.host": s.keyHost, "ingress.upstream": "tasks", "ingress.redirect": "false",
		}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: s.backendImg},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: s.edgeNet.ID}},
			Placement:     &swarm.Placement{Constraints: []string{"node.role == manager"}},
		},
	})
	c.WaitTasks(t, s.ctl, 2)
	c.WaitTasks(t, s.edge, len(c.Nodes))
	c.WaitTasks(t, s.app, len(c.Nodes))
	return s
}

func (s *split) controllerEnv() []string {
	return []string{
		"INGRESS_CONTROL_ADDR=:8443",
		"INGRESS_CONTROL_SECRET_FILE=/run/secrets/ingress-control",
		"INGRESS_NETWORK=" + s.edgeNet.Name,
		"INGRESS_DATA_DIR=/data",
		"INGRESS_CERTS_DIR=/certs",
		"INGRESS_ACME_CA=" + s.pebble.DirectoryURL,
		"INGRESS_ACME_CA_ROOTS=/run/secrets/acme-roots",
		"INGRESS_ACME_EMAIL=ops@example.com",
		// As examples/stack.yml: one ACME cache for the controllers, in Swarm
		// configs, so that the cluster orders each certificate once.
		"INGRESS_CACHE=swarm",
		"INGRESS_CACHE_KEY_FILE=/run/secrets/ingress-cache-key",
		"INGRESS_LOG_LEVEL=debug",
	}
}

func (s *split) edgeEnv() []string {
	return []string{
		"INGRESS_HTTP_ADDR=:80",
		"INGRESS_HTTPS_ADDR=:443",
		"INGRESS_ADMIN_ADDR=0.0.0.0:8080",
		"INGRESS_CONTROLLER=" + s.ctlName,
		"INGRESS_CONTROL_ADDR=:8443",
		"INGRESS_CONTROL_SECRET_FILE=/run/secrets/ingress-control",
		"INGRESS_DATA_DIR=/data",
		"INGRESS_SHUTDOWN_GRACE=1s",
		"INGRESS_LOG_LEVEL=debug",
	}
}

// noHealthcheck disables the image's HEALTHCHECK for a task that is
// expected never to become ready.
var noHealthcheck = &container.HealthConfig{Test: []string{"NONE"}}

func hostPort(target, published int) swarm.PortConfig {
	return swarm.PortConfig{
		Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(target), PublishedPort: uint32(published),
		PublishMode: swarm.PortConfigPublishModeHost,
	}
}

func (s *split) secretRef(id, name, target, uid string) *swarm.SecretReference {
	return &swarm.SecretReference{
		SecretID: id, SecretName: name,
		File: &swarm.SecretReferenceFileTarget{Name: target, UID: uid, GID: "0", Mode: 0o400},
	}
}

func (s *split) createSecret(t *testing.T, name string, data []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.c.Manager().Client.SecretCreate(ctx, swarm.SecretSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{swarmtest.LabelTest: "1"}},
		Data:        data,
	})
	if err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
	return resp.ID
}

// selfSigned makes a certificate for keyHost and remembers its private key.
func (s *split) selfSigned(t *testing.T) (crtPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: s.keyHost}, DNSNames: []string{s.keyHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s.keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s.keyScalar = key.D.FillBytes(make([]byte, 32))
	s.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: s.keyDER})
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), s.keyPEM
}

// testEveryEdge: each node's edge answers for the backend, the answers come
// from its three tasks, and the worker's edge container has no Docker socket.
func (s *split) testEveryEdge(t *testing.T) {
	tasks := s.c.TasksByNode(t, s.c.WaitTasks(t, s.app, len(s.c.Nodes)))
	var want []string
	for _, n := range s.c.Nodes {
		want = append(want, shortID(tasks[n][0]))
	}
	slices.Sort(want)
	for _, n := range s.c.Nodes {
		swarmtest.WaitHTTPHost(t, n.URL(edgeHTTP)+"/", s.appHost, http.StatusOK)
		seen := s.answersFrom(t, n, s.appHost, len(want))
		t.Logf("edge on %s: answers from tasks %v", n, seen)
		if !slices.Equal(seen, want) {
			t.Errorf("edge on %s answered from %v, want the three tasks %v", n.Name, seen, want)
		}
	}

	w := s.c.Workers()[0]
	ctr := s.edgeContainer(t, w)
	info, err := w.Client.ContainerInspect(t.Context(), ctr)
	if err != nil {
		t.Fatalf("inspect the worker's edge container: %v", err)
	}
	var mounts []string
	for _, m := range info.Mounts {
		mounts = append(mounts, m.Source+"->"+m.Destination)
		if strings.Contains(m.Source, "docker.sock") || strings.Contains(m.Destination, "docker.sock") {
			t.Errorf("the worker's edge mounts the Docker socket: %s -> %s", m.Source, m.Destination)
		}
	}
	t.Logf("the worker's edge container %.12s mounts %v", ctr, mounts)
	if !slices.ContainsFunc(info.Mounts, func(m container.MountPoint) bool { return m.Destination == "/data" && m.Type == mount.TypeVolume }) {
		t.Errorf("the worker's edge has no volume at /data: %v", mounts)
	}
}

// answersFrom GETs / through n's edge until n distinct tasks answered (at most
// 300 requests) and returns their hostnames, sorted.
func (s *split) answersFrom(t *testing.T, n *clustertest.Node, host string, want int) []string {
	t.Helper()
	seen := map[string]bool{}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 300 && len(seen) < want; i++ {
		e, _, err := getEchoVia(client, n.URL(edgeHTTP), host)
		if err == nil {
			seen[e.Hostname] = true
		}
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

type echo struct {
	Hostname string `json:"hostname"`
}

func getEchoVia(client *http.Client, base, host string) (echo, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/", nil)
	if err != nil {
		return echo{}, nil, err
	}
	req.Host = host
	res, err := client.Do(req)
	if err != nil {
		return echo{}, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return echo{}, nil, err
	}
	if res.StatusCode != http.StatusOK {
		return echo{}, res.Header, fmt.Errorf("status %s: %.200s", res.Status, body)
	}
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		return echo{}, res.Header, fmt.Errorf("not the backend's echo: %w", err)
	}
	return e, res.Header, nil
}

// testNoController scales the controllers to 0: every edge keeps serving
// under 30 s of load; the worker's edge, killed, comes back as a new task
// that serves its saved state; the controllers come back and the edges follow
// a new change.
func (s *split) testNoController(t *testing.T) {
	s.scale(t, s.ctl, 0)
	l := startEdgeLoad(t, edgeURLs(s.c.Nodes), s.appHost)
	time.Sleep(30 * time.Second) // the length of the load, not a synchronisation
	r := l.finish()
	t.Logf("no controller: %d requests over %v through the 3 edges, %d failed, slowest %v",
		r.total, r.elapsed.Round(time.Millisecond), len(r.failures), r.slowest.Round(time.Millisecond))
	if r.total == 0 || len(r.failures) > 0 {
		t.Errorf("no controller: %d of %d requests failed: %q", len(r.failures), r.total, r.failures[:min(len(r.failures), 10)])
	}

	w := s.c.Workers()[0]
	old := s.edgeContainer(t, w)
	if err := w.Client.ContainerKill(t.Context(), old, "KILL"); err != nil {
		t.Fatalf("kill the worker's edge: %v", err)
	}
	fresh := s.waitNewEdge(t, w, old)
	swarmtest.WaitHTTPHost(t, w.URL(edgeHTTP)+"/", s.appHost, http.StatusOK)
	logs := s.containerLogs(t, w, fresh)
	if !strings.Contains(logs, "serving the saved edge state") {
		t.Errorf("the worker's new edge task does not say it serves its saved state:\n%s", logs)
	}
	if strings.Contains(logs, "connected to a controller") {
		t.Errorf("the worker's new edge connected to a controller while none runs:\n%s", logs)
	}
	t.Logf("the worker's edge, killed and replaced (container %.12s -> %.12s) with no controller running, serves %s", old, fresh, s.appHost)

	s.scale(t, s.ctl, 2)
	began := time.Now()
	s.setLabels(t, s.app, map[string]string{"ingress.headers.X-After": "controllers-back"})
	for _, n := range s.c.Nodes {
		s.waitHeader(t, n, s.appHost, "X-After", "controllers-back", time.Minute)
	}
	t.Logf("controllers back: every edge serves the next change %v after it was made (includes the edges' reconnection)", time.Since(began).Round(time.Millisecond))
}

// testPropagation measures a label change and a new task on the worker until
// every edge serves them.
func (s *split) testPropagation(t *testing.T) {
	t.Run("label change", func(t *testing.T) {
		var took, api []time.Duration
		for i := range 20 {
			val := strconv.Itoa(i)
			began := time.Now()
			s.setLabels(t, s.app, map[string]string{"ingress.headers.X-Gen": val})
			api = append(api, time.Since(began))
			var wg sync.WaitGroup
			for _, n := range s.c.Nodes {
				wg.Go(func() { s.waitHeader(t, n, s.appHost, "X-Gen", val, labelBound) })
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			took = append(took, time.Since(began))
		}
		p50, p99 := percentile(took, 50), percentile(took, 99)
		t.Logf("label change on a manager to served by all 3 edges: %d changes, p50 %v, p99 %v (goal p99 <= 100ms); each: %v",
			len(took), p50.Round(time.Millisecond), p99.Round(time.Millisecond), roundAll(took))
		// The figure starts before the test's inspect and update calls to the
		// manager's API; their share, for reading the figure above:
		t.Logf("of which the test's own inspect+update API calls: p50 %v, p99 %v; each: %v",
			percentile(api, 50).Round(time.Millisecond), percentile(api, 99).Round(time.Millisecond), roundAll(api))
	})
	t.Run("new task on the worker", func(t *testing.T) {
		w := s.c.Workers()[0]
		host := s.c.Name("scale") + ".test"
		svc := s.c.CreateService(t, swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: s.c.Name("scale"), Labels: map[string]string{
				"ingress.host": host, "ingress.tls": "off", "ingress.upstream": "tasks",
			}},
			Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(1))}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: s.backendImg},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: s.edgeNet.ID}},
				Placement:     &swarm.Placement{Constraints: []string{"node.hostname == " + w.Name}},
			},
		})
		s.c.WaitTasks(t, svc, 1)
		for _, n := range s.c.Nodes {
			swarmtest.WaitHTTPHost(t, n.URL(edgeHTTP)+"/", host, http.StatusOK)
		}
		seen := watchHostnames(t, s.c.Nodes, host)
		var took []time.Duration
		for range 10 {
			before := runningIDs(s.c.WaitTasks(t, svc, 1))
			s.scale(t, svc, 2)
			task := s.newTask(t, svc, before)
			running := task.Status.Timestamp
			name := shortID(task)
			last := seen.waitAll(t, name, taskBound)
			if t.Failed() {
				return
			}
			took = append(took, max(last.Sub(running), 0))
			s.scale(t, svc, 1)
		}
		p50, p99 := percentile(took, 50), percentile(took, 99)
		t.Logf("new task on the worker (from its running state) to answering through all 3 edges: %d tasks, p50 %v, p99 %v (goal p99 <= 1s); each: %v",
			len(took), p50.Round(time.Millisecond), p99.Round(time.Millisecond), roundAll(took))
	})
}

// testServeOnWorker runs `ingress serve` on the worker: its log and its
// /api/routes say that a worker cannot read the cluster and that
// `ingress edge` is the role for workers.
func (s *split) testServeOnWorker(t *testing.T) {
	w := s.c.Workers()[0]
	svc := s.c.CreateService(t, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: s.c.Name("serve-on-worker")},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  s.image,
				Args:   []string{"serve"},
				User:   "0",
				Env:    []string{"INGRESS_ADMIN_ADDR=0.0.0.0:8080", "INGRESS_ACME_CA=https://127.0.0.1:1/directory"},
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true}},
				// It never becomes ready: the image's health check would have
				// Swarm replace it again and again (and the task never counts
				// as running).
				Healthcheck: noHealthcheck,
			},
			Networks:  []swarm.NetworkAttachmentConfig{{Target: s.edgeNet.ID}},
			Placement: &swarm.Placement{Constraints: []string{"node.role == worker"}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{hostPort(8080, serveAdmin)}},
	})
	task := s.c.WaitTasks(t, svc, 1)[0]
	if task.NodeID != w.ID {
		t.Fatalf("serve runs on %s, want the worker", task.NodeID)
	}
	body := swarmtest.WaitHTTP(t, w.URL(serveAdmin)+"/api/routes", http.StatusOK)
	var v struct {
		Routes []json.RawMessage `json:"routes"`
		Errors []struct {
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("/api/routes: %v: %s", err, body)
	}
	if len(v.Errors) == 0 || !strings.Contains(v.Errors[0].Error, "Swarm worker") || !strings.Contains(v.Errors[0].Error, "`ingress edge`") {
		t.Errorf("/api/routes of serve on the worker does not say it is a worker and to run ingress edge: %s", body)
	} else {
		t.Logf("/api/routes error: %s", v.Errors[0].Error)
	}
	// The engine may write the log a moment after the admin API answers.
	line := s.waitLog(t, w, task.Status.ContainerStatus.ContainerID, "cannot read the cluster from this node")
	t.Logf("log: %s", line)
	if !strings.Contains(line, `"level":"error"`) || !strings.Contains(line, "Swarm worker") || !strings.Contains(line, "`ingress edge`") {
		t.Errorf("the log of serve on the worker has no error naming the worker and ingress edge: %s", line)
	}
}

// testChannel: an edge with another secret is refused, and a capture of the
// nodes' links while an edge syncs shows a TLS handshake but no route name,
// no route host, no private key and no secret.
func (s *split) testChannel(t *testing.T) {
	t.Run("wrong secret refused", func(t *testing.T) {
		wrongName := s.c.Name("wrong-control")
		wrongID := s.createSecret(t, wrongName, []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 32))))
		w := s.c.Workers()[0]
		svc := s.c.CreateService(t, swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: s.c.Name("wrong-edge")},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{
					Image: s.image, Args: []string{"edge"}, User: "65532:65532", Env: s.edgeEnv(),
					Secrets:     []*swarm.SecretReference{s.secretRef(wrongID, wrongName, "ingress-control", "65532")},
					Healthcheck: noHealthcheck, // never ready either
				},
				Networks:  []swarm.NetworkAttachmentConfig{{Target: s.control.ID}},
				Placement: &swarm.Placement{Constraints: []string{"node.hostname == " + w.Name}},
			},
		})
		task := s.c.WaitTasks(t, svc, 1)[0]
		edgeLine := s.waitLog(t, w, task.Status.ContainerStatus.ContainerID, "refused by the controller or refused it")
		t.Logf("wrong-secret edge: %s", edgeLine)
		if !strings.Contains(edgeLine, "INGRESS_CONTROL_SECRET_FILE") || !strings.Contains(edgeLine, "control secret") {
			t.Errorf("the edge's error does not name the secret setting: %s", edgeLine)
		}
		for _, ct := range s.c.WaitTasks(t, s.ctl, 2) {
			n := s.c.Node(ct.NodeID)
			line := s.waitLog(t, n, ct.Status.ContainerStatus.ContainerID, "refused a control connection")
			t.Logf("controller on %s: %s", n.Name, line)
			if !strings.Contains(line, "INGRESS_CONTROL_SECRET_FILE") {
				t.Errorf("the controller's error does not name the secret setting: %s", line)
			}
		}
	})
	t.Run("capture", func(t *testing.T) {
		w := s.c.Workers()[0]
		routeName := s.c.Name("confidential-route")
		hidden := s.c.Name("hidden") + ".test"
		witness := s.c.Name("witness") + ".test"
		old := s.edgeContainer(t, w)
		capture := s.c.Capture(t)
		// The worker's edge connects anew (a handshake, then the full
		// state with the certificate and its key) and a route appears whose
		// name and first host are never sent in a request: the test asks
		// for its second host only.
		if err := w.Client.ContainerKill(t.Context(), old, "KILL"); err != nil {
			t.Fatalf("kill the worker's edge: %v", err)
		}
		s.c.CreateService(t, swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: routeName, Labels: map[string]string{
				"ingress.host": hidden + "," + witness, "ingress.tls": "off", "ingress.upstream": "tasks",
			}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: s.backendImg},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: s.edgeNet.ID}},
				Placement:     &swarm.Placement{Constraints: []string{"node.role == manager"}},
			},
		})
		fresh := s.waitNewEdge(t, w, old)
		for _, n := range s.c.Nodes {
			swarmtest.WaitHTTPHost(t, n.URL(edgeHTTP)+"/", witness, http.StatusOK)
		}
		s.waitLog(t, w, fresh, "connected to a controller")
		frames := capture.Stop()
		t.Logf("captured %d bytes on the 3 links while the worker's edge reconnected and a route was added", len(frames))

		secrets := map[string][]byte{
			"route name":           []byte(routeName),
			"route host":           []byte(hidden),
			"control secret":       s.secret,
			"private key (PEM)":    s.keyPEM,
			"private key (DER)":    s.keyDER,
			"private key (scalar)": s.keyScalar,
		}
		for what, b := range secrets {
			if bytes.Contains(frames, b) {
				t.Errorf("the capture contains the %s", what)
			}
		}
		for off := range 3 { // the PEM as JSON carries it, at any alignment
			enc := base64.StdEncoding.EncodeToString(s.keyPEM[off:])
			if chunk := enc[8:48]; bytes.Contains(frames, []byte(chunk)) {
				t.Errorf("the capture contains the private key PEM in base64 (offset %d)", off)
			}
		}
		// A control check: the witness host, sent in clear by this test, is
		// there, so the capture did see the traffic.
		if !bytes.Contains(frames, []byte(witness)) {
			t.Errorf("the capture does not even hold the witness host %s sent in clear: it saw nothing", witness)
		}
		hellos := clientHellos(frames, "swarm-ingress-control")
		t.Logf("TLS ClientHellos naming the control channel's server name in the capture: %d", hellos)
		if hellos == 0 {
			t.Errorf("no TLS ClientHello for the control channel in the capture")
		}

		// The edge did receive the certificate and its key: it serves it.
		var certs []struct {
			Host string `json:"host"`
		}
		if err := json.Unmarshal(swarmtest.WaitHTTP(t, w.URL(edgeAdmin)+"/api/certs", http.StatusOK), &certs); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(certs, func(c struct {
			Host string `json:"host"`
		}) bool {
			return c.Host == s.keyHost
		}) {
			t.Errorf("the worker's new edge holds no certificate of %s: %+v", s.keyHost, certs)
		}
	})
}

// clientHellos counts the TLS 1.x ClientHello records in b that carry the
// server name sni.
func clientHellos(b []byte, sni string) int {
	n := 0
	for i := 0; i+6 < len(b); i++ {
		if b[i] != 0x16 || b[i+1] != 0x03 || b[i+5] != 0x01 {
			continue
		}
		length := int(b[i+3])<<8 | int(b[i+4])
		end := min(len(b), i+5+length)
		if bytes.Contains(b[i+5:end], []byte(sni)) {
			n++
		}
	}
	return n
}

// testACME proves each ACME challenge type on its own: the controllers are
// updated to INGRESS_ACME_CHALLENGE=<type>, then a tls=auto route is added.
// Pebble, whose DNS sends every validation to the worker's edge, issues its
// certificate in one order, validated with that type (Pebble logs its
// HTTP-01 requests: some for http-01, none for tls-alpn-01), and every edge
// serves that same certificate.
func (s *split) testACME(t *testing.T) {
	roots := s.pebble.IssuerRoots(t)
	for _, typ := range []string{"http-01", "tls-alpn-01"} {
		t.Run(typ, func(t *testing.T) {
			began := time.Now()
			ctls := s.setEnv(t, s.ctl, "INGRESS_ACME_CHALLENGE", typ, 2)
			restarted := time.Since(began)
			// A controller lets the CA validate once every edge connected
			// to it confirmed the challenge; an edge finds a restarted
			// controller at its next DNS rescan. Until then the controller
			// has no edge to wait for, so the route is added once every
			// edge follows both.
			s.waitEdgesFollow(t, ctls)
			t.Logf("controllers restarted with INGRESS_ACME_CHALLENGE=%s in %v; every edge connected to both %v later", typ,
				restarted.Round(time.Millisecond), (time.Since(began) - restarted).Round(time.Millisecond))

			orders, valid := s.pebble.Orders(), s.pebble.Validations()
			name := s.c.Name("acme-" + strings.ReplaceAll(typ, "-", ""))
			host := name + ".test"
			svc := s.c.CreateService(t, swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: name, Labels: map[string]string{
					"ingress.host": host, "ingress.upstream": "tasks",
				}},
				TaskTemplate: swarm.TaskSpec{
					ContainerSpec: &swarm.ContainerSpec{Image: s.backendImg},
					Networks:      []swarm.NetworkAttachmentConfig{{Target: s.edgeNet.ID}},
				},
			})
			began = time.Now()
			var leaves []*x509.Certificate
			for _, n := range s.c.Nodes {
				leaf := waitCert(t, n.HostPort(edgeHTTPS), host, roots)
				leaves = append(leaves, leaf)
				t.Logf("edge on %s serves %s: serial %x, issuer %q, %v after the route was added", n.Name, host, leaf.SerialNumber, leaf.Issuer.CommonName, time.Since(began).Round(time.Millisecond))
			}
			for i, l := range leaves[1:] {
				if !bytes.Equal(l.Raw, leaves[0].Raw) {
					t.Errorf("the edge on %s serves serial %x, the edge on %s serial %x", s.c.Nodes[i+1].Name, l.SerialNumber, s.c.Nodes[0].Name, leaves[0].SerialNumber)
				}
			}
			gotOrders, v := s.pebble.Orders()-orders, s.pebble.Validations()
			v = pebbletest.Validations{Valid: v.Valid - valid.Valid, Invalid: v.Invalid - valid.Invalid, HTTP01Requests: v.HTTP01Requests - valid.HTTP01Requests}
			t.Logf("%s: Pebble accepted %d order(s) for %s; authorizations %d valid, %d invalid; %d HTTP-01 validation requests; every validation was sent to the worker's edge (%s)",
				typ, gotOrders, host, v.Valid, v.Invalid, v.HTTP01Requests, s.c.Workers()[0].Addr)
			if gotOrders != 1 {
				t.Errorf("Pebble accepted %d orders for %s, want 1", gotOrders, host)
			}
			if v.Valid != 1 || v.Invalid != 0 {
				t.Errorf("Pebble made %d authorizations valid and %d invalid, want 1 and 0", v.Valid, v.Invalid)
			}
			if (v.HTTP01Requests > 0) != (typ == "http-01") {
				t.Errorf("Pebble made %d HTTP-01 validation requests: the challenge was not %s", v.HTTP01Requests, typ)
			}
			// The backend's task may start after the certificate is served.
			s.c.WaitTasks(t, svc, 1)
			for _, n := range s.c.Nodes {
				var code int
				var err error
				for range 100 {
					if code, err = httpsGet(n.HostPort(edgeHTTPS), host, roots); err == nil && code == http.StatusOK {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil || code != http.StatusOK {
					t.Errorf("GET https://%s/ through the edge on %s: %d, %v", host, n.Name, code, err)
				}
			}
		})
	}
}

// waitCert dials addr with TLS for host until the handshake succeeds with a
// certificate roots verify (at most 2 minutes), and returns the leaf.
func waitCert(t *testing.T, addr, host string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		d := &tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: roots}, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
		conn, err := d.Dial("tcp", addr)
		if err == nil {
			leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
			conn.Close()
			return leaf
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no certificate for %s signed by Pebble at %s within 2m; last: %v", host, addr, last)
	return nil
}

func httpsGet(addr, host string, roots *x509.CertPool) (int, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	res, err := client.Get("https://" + host + "/")
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// testCut cuts the worker's link under load through the managers' edges,
// with the default connect_timeout (5 s): a dial to the cut task that is not
// up within 250 ms is hedged by a dial to another task, which serves the
// request, and when the hung dial fails (at connect_timeout) the cut task is
// ejected; a request already written on a pooled connection to it fails when
// TCP_USER_TIMEOUT (1 s) ends that connection and is retried on another task
// (docs/labels.md, Upstream health). The goals of issue 11 (no
// failed idempotent request, none slower than 2 s, ejected within 3 s of the
// first failed dial) are timing figures and are logged; what is asserted is
// what must hold however busy the machine: no request fails, and every
// manager's edge ejects the worker's task passively, before Swarm's node-down
// removes it from the table.
func (s *split) testCut(t *testing.T) {
	w := s.c.Workers()[0]
	tasks := s.c.TasksByNode(t, s.c.WaitTasks(t, s.app, len(s.c.Nodes)))
	workerIP := swarmtest.TaskIP(tasks[w][0], s.edgeNet.ID)
	managers := s.c.Managers()
	s.setLabels(t, s.app, map[string]string{"ingress.headers.X-Cut": "ready"})
	for _, m := range managers {
		s.waitHeader(t, m, s.appHost, "X-Cut", "ready", time.Minute)
	}
	l := startEdgeLoad(t, edgeURLs(managers), s.appHost)
	l.waitOK(t, 50)
	w.Cut(t)
	cut := time.Now()
	var wg sync.WaitGroup
	ejected := make([]time.Duration, len(managers))
	reasons := make([]string, len(managers))
	left := make([]time.Duration, len(managers))
	for i, m := range managers {
		wg.Go(func() {
			ejected[i], reasons[i] = s.waitEjected(t, m, workerIP, cut)
			left[i] = s.waitUpstreamGone(t, m, workerIP, cut)
		})
	}
	wg.Wait()
	l.waitOK(t, 50) // still answering after the worker left
	r := l.finish()
	t.Logf("worker cut off: %d GETs through the 2 managers' edges, %d failed, slowest %v (goal: 0 failed, none over 2s); the worker's task ejected by each manager's edge %v after the cut, reason %q (goal: within 3s of the first failed dial, which comes up to connect_timeout=5s after the cut), out of the table %v after the cut (Swarm marked the node down); hedged connects per edge: %v",
		r.total, len(r.failures), r.slowest.Round(time.Millisecond), roundAll(ejected), reasons, roundAll(left), s.hedges(managers))
	if len(r.failures) > 0 {
		t.Errorf("%d of %d idempotent requests failed with the worker cut off: %q", len(r.failures), r.total, r.failures[:min(len(r.failures), 5)])
	}
	for i, m := range managers {
		if ejected[i] > 0 && left[i] > 0 && ejected[i] >= left[i] {
			t.Errorf("the edge on %s did not eject %s before the table dropped it (ejected %v, dropped %v after the cut): ejection was not passive", m.Name, workerIP, ejected[i], left[i])
		}
	}
	for _, m := range managers {
		if _, _, err := getEchoVia(&http.Client{Timeout: 10 * time.Second}, m.URL(edgeHTTP), s.appHost); err != nil {
			t.Errorf("the edge on %s does not answer with the worker cut off: %v", m.Name, err)
		}
	}

	w.Restore(t)
	s.c.WaitNodeState(t, w, swarm.NodeStateReady)
	restored := time.Now()
	now := s.c.TasksByNode(t, s.c.WaitTasks(t, s.app, len(s.c.Nodes)))
	var want []string
	for _, n := range s.c.Nodes {
		if len(now[n]) != 1 {
			t.Fatalf("%d tasks of the backend on %s after Restore", len(now[n]), n.Name)
		}
		want = append(want, shortID(now[n][0]))
	}
	slices.Sort(want)
	for _, n := range s.c.Nodes {
		deadline := time.Now().Add(90 * time.Second)
		var seen []string
		for time.Now().Before(deadline) {
			if seen = s.answersFrom(t, n, s.appHost, len(want)); slices.Equal(seen, want) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if !slices.Equal(seen, want) {
			t.Errorf("after Restore the edge on %s answers from %v, want %v", n.Name, seen, want)
		}
	}
	t.Logf("after Restore (node Ready): every edge answers from the three tasks %v, %v later", want, time.Since(restored).Round(time.Millisecond))
}

// waitEjected polls the edge's /api/routes until a route's upstream_health
// shows upstream ip ejected (or in its trial after an ejection), and returns
// the time since cut and the ejection's reason; 0 when it never was within
// 90 s (then an error).
func (s *split) waitEjected(t *testing.T, n *clustertest.Node, ip string, cut time.Time) (time.Duration, string) {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var v struct {
			Routes []struct {
				UpstreamHealth []struct {
					Upstream string `json:"upstream"`
					State    string `json:"state"`
					Reason   string `json:"reason"`
				} `json:"upstream_health"`
			} `json:"routes"`
		}
		res, err := client.Get(n.URL(edgeAdmin) + "/api/routes")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&v)
			res.Body.Close()
		}
		if err == nil {
			for _, r := range v.Routes {
				for _, u := range r.UpstreamHealth {
					if strings.HasPrefix(u.Upstream, ip+":") && (u.State == "ejected" || u.State == "trial") {
						return time.Since(cut), u.Reason
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the edge on %s never showed %s ejected within 90s of the cut", n.Name, ip)
	return 0, ""
}

// hedges reads ingress_upstream_hedges_total of each node's edge (summed
// over routes), for the log; -1 where /metrics did not answer.
func (s *split) hedges(nodes []*clustertest.Node) []float64 {
	client := &http.Client{Timeout: 5 * time.Second}
	var out []float64
	for _, n := range nodes {
		sum := -1.0
		if res, err := client.Get(n.URL(edgeAdmin) + "/metrics"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			sum = 0
			for line := range strings.Lines(string(body)) {
				if strings.HasPrefix(line, "ingress_upstream_hedges_total{") {
					var v float64
					if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
						sum += v
					}
				}
			}
		}
		out = append(out, sum)
	}
	return out
}

// waitUpstreamGone polls the edge's /api/routes until no route holds
// upstream ip, and returns the time since cut.
func (s *split) waitUpstreamGone(t *testing.T, n *clustertest.Node, ip string, cut time.Time) time.Duration {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.Get(n.URL(edgeAdmin) + "/api/routes")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK && !bytes.Contains(body, []byte(`"`+ip+`:`)) {
				return time.Since(cut)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the edge on %s still routes to %s 90s after the cut", n.Name, ip)
	return 0
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// edgeURLs are the edges' public HTTP base URLs on the nodes.
func edgeURLs(nodes []*clustertest.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.URL(edgeHTTP))
	}
	return out
}

// --- Swarm helpers

// scale sets the service's replicas and waits until exactly that many of its
// tasks run.
func (s *split) scale(t *testing.T, id string, replicas uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	name := s.update(ctx, t, id, fmt.Sprintf("scale to %d", replicas), func(spec *swarm.ServiceSpec) {
		spec.Mode.Replicated.Replicas = &replicas
	})
	for {
		if tasks, err := s.tasks(ctx, id); err == nil && len(runningIDs(tasks)) == int(replicas) && len(tasks) == int(replicas) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not %d running tasks within 90s", name, replicas)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tasks lists the service's tasks whose desired state is running.
func (s *split) tasks(ctx context.Context, id string) ([]swarm.Task, error) {
	f := filters.NewArgs(filters.Arg("service", id), filters.Arg("desired-state", "running"))
	return s.c.Manager().Client.TaskList(ctx, swarm.TaskListOptions{Filters: f})
}

func runningIDs(tasks []swarm.Task) map[string]bool {
	out := map[string]bool{}
	for _, task := range tasks {
		if task.Status.State == swarm.TaskStateRunning {
			out[task.ID] = true
		}
	}
	return out
}

// newTask waits for a running task of the service that is not in before.
func (s *split) newTask(t *testing.T, id string, before map[string]bool) swarm.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		tasks, err := s.tasks(ctx, id)
		if err == nil {
			for _, task := range tasks {
				if task.Status.State == swarm.TaskStateRunning && !before[task.ID] && task.Status.ContainerStatus != nil {
					return task
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no new running task within 90s (last error %v)", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setLabels merges labels into the service's labels.
func (s *split) setLabels(t *testing.T, id string, labels map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.update(ctx, t, id, "update labels", func(spec *swarm.ServiceSpec) {
		for k, v := range labels {
			spec.Labels[k] = v
		}
	})
}

// update reads the service's spec, lets change edit it and writes it back;
// what names the step in a failure.
func (s *split) update(ctx context.Context, t *testing.T, id, what string, change func(*swarm.ServiceSpec)) (name string) {
	t.Helper()
	api := s.c.Manager().Client
	svc, _, err := api.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("%s: inspect service: %v", what, err)
	}
	spec := svc.Spec
	change(&spec)
	if _, err := api.ServiceUpdate(ctx, id, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("%s on %s: %v", what, spec.Name, err)
	}
	return spec.Name
}

// setEnv sets the service's environment variable key to value (a rolling
// update), waits until exactly replicas tasks run, all with that value, and
// returns them.
func (s *split) setEnv(t *testing.T, id, key, value string, replicas int) []swarm.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kv := key + "=" + value
	name := s.update(ctx, t, id, "set "+kv, func(spec *swarm.ServiceSpec) {
		env := slices.DeleteFunc(slices.Clone(spec.TaskTemplate.ContainerSpec.Env), func(e string) bool { return strings.HasPrefix(e, key+"=") })
		spec.TaskTemplate.ContainerSpec.Env = append(env, kv)
	})
	for {
		tasks, err := s.tasks(ctx, id)
		updated := 0
		for _, task := range tasks {
			if task.Status.State == swarm.TaskStateRunning && slices.Contains(task.Spec.ContainerSpec.Env, kv) {
				updated++
			}
		}
		if err == nil && updated == replicas && len(tasks) == replicas {
			return tasks
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not %d running tasks with %s within 3m (%d, last error %v)", name, replicas, kv, updated, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// edgeLink is one controller in an edge's /readyz (docs/admin-api.md).
type edgeLink struct {
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
}

// waitEdgesFollow waits (at most 2 minutes) until the edge of every node
// reports, on its /readyz, a connection to each of the controller tasks ctls.
func (s *split) waitEdgesFollow(t *testing.T, ctls []swarm.Task) {
	t.Helper()
	var want []string
	for _, task := range ctls {
		want = append(want, swarmtest.TaskIP(task, s.control.ID))
	}
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for _, n := range s.c.Nodes {
		var last string
		for {
			var st struct {
				Controllers []edgeLink `json:"controllers"`
			}
			res, err := client.Get(n.URL(edgeAdmin) + "/readyz")
			if err == nil {
				err = json.NewDecoder(res.Body).Decode(&st)
				res.Body.Close()
			}
			connected := 0
			for _, ip := range want {
				if slices.ContainsFunc(st.Controllers, func(c edgeLink) bool {
					host, _, _ := net.SplitHostPort(c.Addr)
					return c.Connected && host == ip
				}) {
					connected++
				}
			}
			if err == nil && connected == len(want) {
				break
			}
			last = fmt.Sprintf("%+v (%v)", st.Controllers, err)
			if time.Now().After(deadline) {
				t.Fatalf("the edge on %s does not follow the controllers %v within 2m: %s", n.Name, want, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// waitHeader GETs host through n's edge until the response carries header
// name = value, for at most bound.
func (s *split) waitHeader(t *testing.T, n *clustertest.Node, host, name, value string, bound time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(bound)
	var last string
	for time.Now().Before(deadline) {
		_, h, err := getEchoVia(client, n.URL(edgeHTTP), host)
		if err == nil && h.Get(name) == value {
			return
		}
		last = fmt.Sprintf("%s=%q, error %v", name, h.Get(name), err)
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("the edge on %s does not send %s: %s within %v; last: %s", n.Name, name, value, bound, last)
}

// edgeContainer returns the ID of the edge's running container on n.
func (s *split) edgeContainer(t *testing.T, n *clustertest.Node) string {
	t.Helper()
	for _, task := range s.c.WaitTasks(t, s.edge, len(s.c.Nodes)) {
		if task.NodeID == n.ID && task.Status.State == swarm.TaskStateRunning {
			return task.Status.ContainerStatus.ContainerID
		}
	}
	t.Fatalf("no running edge task on %s", n.Name)
	return ""
}

// waitNewEdge waits for an edge container on n other than old, and returns it.
func (s *split) waitNewEdge(t *testing.T, n *clustertest.Node, old string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		tasks, err := s.tasks(t.Context(), s.edge)
		if err == nil {
			for _, task := range tasks {
				if task.NodeID == n.ID && task.Status.State == swarm.TaskStateRunning &&
					task.Status.ContainerStatus != nil && task.Status.ContainerStatus.ContainerID != old {
					return task.Status.ContainerStatus.ContainerID
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no new edge task on %s within 90s", n.Name)
	return ""
}

// containerLogs reads a container's log through its node's engine.
func (s *split) containerLogs(t *testing.T, n *clustertest.Node, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := n.Client.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %.12s on %s: %v", id, n.Name, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read logs of %.12s on %s: %v", id, n.Name, err)
	}
	return out.String()
}

// waitLog waits (at most 60 s) for a log line of the container containing s
// and returns it.
func (s *split) waitLog(t *testing.T, n *clustertest.Node, id, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		logs := s.containerLogs(t, n, id)
		for l := range strings.Lines(logs) {
			if strings.Contains(l, want) {
				return strings.TrimSpace(l)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log of %.12s on %s within 60s:\n%s", want, id, n.Name, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (s *split) dumpServiceLogs(t *testing.T, id, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tasks, err := s.tasks(ctx, id)
	if err != nil {
		t.Logf("%s tasks: %v", what, err)
		return
	}
	for _, task := range tasks {
		n := s.c.Node(task.NodeID)
		if n == nil || task.Status.ContainerStatus == nil {
			continue
		}
		rc, err := n.Client.ContainerLogs(ctx, task.Status.ContainerStatus.ContainerID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "40"})
		if err != nil {
			t.Logf("%s on %s: logs: %v", what, n.Name, err)
			continue
		}
		var out bytes.Buffer
		_, _ = stdcopy.StdCopy(&out, &out, rc)
		rc.Close()
		t.Logf("%s on %s (last 40 lines):\n%s", what, n.Name, out.String())
	}
}

// --- load and measurements

// edgeLoad is steady GET traffic spread over several edges: loadWorkers
// clients, each on one edge, one request after the other.
type edgeLoad struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	started time.Time
	ok      chan struct{} // one tick per success, dropped when nobody listens
	mu      sync.Mutex
	total   int
	failed  []string
	slowest time.Duration
}

// loadTimeout bounds one request of the load: a request that takes longer
// is a failure.
const loadTimeout = 30 * time.Second

type loadResult struct {
	total    int
	failures []string
	slowest  time.Duration
	elapsed  time.Duration
}

func startEdgeLoad(t *testing.T, bases []string, host string) *edgeLoad {
	t.Helper()
	l := &edgeLoad{stop: make(chan struct{}), started: time.Now(), ok: make(chan struct{})}
	for i := range 2 * len(bases) {
		base := bases[i%len(bases)]
		l.wg.Go(func() {
			client := &http.Client{Timeout: loadTimeout}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				began := time.Now()
				_, _, err := getEchoVia(client, base, host)
				took := time.Since(began)
				l.mu.Lock()
				l.total++
				l.slowest = max(l.slowest, took)
				if err != nil {
					l.failed = append(l.failed, fmt.Sprintf("%s: %v", base, err))
				}
				l.mu.Unlock()
				if err == nil {
					select {
					case l.ok <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// waitOK waits (at most 60 s) for n more successful requests.
func (l *edgeLoad) waitOK(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for i := range n {
		select {
		case <-l.ok:
		case <-timeout:
			t.Fatalf("only %d of %d more requests succeeded within 60s", i, n)
		}
	}
}

func (l *edgeLoad) finish() loadResult {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadResult{total: l.total, failures: slices.Clone(l.failed), slowest: l.slowest, elapsed: time.Since(l.started)}
}

// hostnameWatch records, per edge, when each backend hostname first answered.
type hostnameWatch struct {
	mu    sync.Mutex
	first []map[string]time.Time
}

// watchHostnames GETs host through every node's edge in a loop until the
// test ends, recording when each task first answered there.
func watchHostnames(t *testing.T, nodes []*clustertest.Node, host string) *hostnameWatch {
	w := &hostnameWatch{first: make([]map[string]time.Time, len(nodes))}
	for i := range nodes {
		w.first[i] = map[string]time.Time{} // before the goroutines read w.first
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				e, _, err := getEchoVia(client, n.URL(edgeHTTP), host)
				at := time.Now()
				if err == nil {
					w.mu.Lock()
					if _, ok := w.first[i][e.Hostname]; !ok {
						w.first[i][e.Hostname] = at
					}
					w.mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return w
}

// waitAll waits until every edge has answered from hostname and returns the
// latest of their first answers.
func (w *hostnameWatch) waitAll(t *testing.T, hostname string, bound time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		w.mu.Lock()
		var last time.Time
		all := true
		for _, m := range w.first {
			at, ok := m[hostname]
			if !ok {
				all = false
				break
			}
			if at.After(last) {
				last = at
			}
		}
		w.mu.Unlock()
		if all {
			return last
		}
		if time.Now().After(deadline) {
			t.Errorf("task %s does not answer through every edge within %v", hostname, bound)
			return last
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

// shortID is the hostname Docker gives a task's container.
func shortID(task swarm.Task) string {
	id := task.Status.ContainerStatus.ContainerID
	return id[:min(12, len(id))]
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
