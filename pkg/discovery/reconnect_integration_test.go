package discovery

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// dockerSocket is the engine's socket the proxy forwards to.
const dockerSocket = "/var/run/docker.sock"

// sockProxy forwards a unix socket to the Docker socket; cut closes the
// listener and every connection (the engine goes away), restore listens
// again on the same path.
type sockProxy struct {
	path string
	mu   sync.Mutex
	ln   net.Listener
	open map[net.Conn]struct{}
	wg   sync.WaitGroup
}

func newSockProxy(t *testing.T) *sockProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "sockproxy") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &sockProxy{path: filepath.Join(dir, "docker.sock"), open: map[net.Conn]struct{}{}}
	p.restore(t)
	t.Cleanup(p.cut)
	return p
}

func (p *sockProxy) restore(t *testing.T) {
	t.Helper()
	os.Remove(p.path)
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.forward(c) }()
		}
	}()
}

func (p *sockProxy) forward(c net.Conn) {
	up, err := net.Dial("unix", dockerSocket)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.open, c)
	delete(p.open, up)
	p.mu.Unlock()
}

// track registers a connection pair, or closes it if the proxy is cut.
func (p *sockProxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		up.Close()
		return false
	}
	p.open[c], p.open[up] = struct{}{}, struct{}{}
	return true
}

func (p *sockProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestWatcherSurvivesDockerOutage cuts the watcher's Docker endpoint: the
// last table stays published and served, nothing is published while Docker
// is away, and changes made meanwhile appear once it is back.
func TestWatcherSurvivesDockerOutage(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "outage")
	img := rig.BackendImage(t)
	proxy := newSockProxy(t)
	api, err := client.NewClientWithOpts(client.WithHost("unix://"+proxy.path), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })

	before, during := rig.Name("before"), rig.Name("during")
	beforeID := rig.CreateService(t, backendSpec(before, img, map[string]string{"ingress.host": "before.test"}, 0, shared))
	h := startWatcher(t, Config{Docker: api, Networks: []string{shared.Name}})
	first := h.wait(t, 0, waitTimeout, "the first service's route", func(tbl *route.Table) bool {
		return routeOf(tbl, before, "default") != nil
	})

	proxy.cut()
	const lost = "docker unreachable"
	h.logs.wait(t, lost, 1, waitTimeout)
	n := h.count()
	rig.CreateService(t, backendSpec(during, img, map[string]string{"ingress.host": "during.test"}, 0, shared))
	updateService(t, rig, beforeID, func(s *swarm.ServiceSpec) { s.Labels["ingress.host"] = "after.test" })
	// Two more failed reconnects: the watcher tried while the changes were there.
	h.logs.wait(t, lost, h.logs.count(lost)+2, waitTimeout)
	if got := h.count(); got != n {
		last, _ := h.last()
		t.Fatalf("%d tables published while Docker was away; last:%s", got-n, describeTable(last))
	}
	tbl := h.w.Table()
	if tbl == nil || tbl.Generation < first.table.Generation || tbl.Match("before.test", "/") == nil {
		t.Fatalf("during the outage Table() = %s, want the last good table still routing before.test", describeTable(tbl))
	}

	proxy.restore(t)
	h.wait(t, n, waitTimeout, "changes made during the outage", func(tbl *route.Table) bool {
		r := routeOf(tbl, before, "default")
		return r != nil && slices.Equal(r.Hosts, []string{"after.test"}) && routeOf(tbl, during, "default") != nil
	})
	h.logs.wait(t, "docker reachable again", 1, waitTimeout)
}
