package discovery

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestWatcherRoutesFile: the static routes file is served next to Swarm
// services, followed on change, and a broken version keeps the last good one.
func TestWatcherRoutesFile(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "static")
	path := filepath.Join(t.TempDir(), "routes.yml")
	write := func(content string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	name := rig.Name("legacy")
	write("services:\n  - name: " + name + "\n    upstreams: [\"localhost:9001\"]\n    labels:\n      ingress.host: legacy.test\n")
	h := startWatcher(t, Config{Docker: rig.Client, Networks: []string{shared.Name}, RoutesFile: path})

	h.wait(t, 0, waitTimeout, "the static route, pinned to 127.0.0.1", func(tbl *route.Table) bool {
		r := routeOf(tbl, name, "default")
		return r != nil && r.Mode == route.ModeStatic && len(r.Upstreams) == 1 && r.Upstreams[0].String() == "127.0.0.1:9001"
	})

	from := h.count()
	write("services:\n  - name: " + name + "\n    upstreams: [\"127.0.0.1:9002\"]\n    labels:\n      ingress.host: legacy2.test\n")
	h.wait(t, from, waitTimeout, "the edited static route", func(tbl *route.Table) bool {
		r := routeOf(tbl, name, "default")
		return r != nil && slices.Equal(r.Hosts, []string{"legacy2.test"}) && r.Upstreams[0].String() == "127.0.0.1:9002"
	})

	// One broken service: reported under its name with the file and line,
	// and its last good version keeps serving.
	from = h.count()
	write("services:\n  - name: " + name + "\n    upstreams: 9003\n")
	p := h.wait(t, from, waitTimeout, "the service's error", func(tbl *route.Table) bool {
		return errorOf(tbl, name) != nil
	})
	if e := errorOf(p.table, name); e.Label != path+":2" || !strings.Contains(e.Error, "last good version keeps serving") {
		t.Errorf("error %+v, want label %s:2 and the last good version kept", e, path)
	}
	if r := routeOf(p.table, name, "default"); r == nil || !slices.Equal(r.Hosts, []string{"legacy2.test"}) {
		t.Errorf("a broken service dropped its last good route:%s", describeTable(p.table))
	}

	// A file that is not YAML at all: reported under the routes file, and
	// the last good services keep serving.
	from = h.count()
	write("services: [\n")
	p = h.wait(t, from, waitTimeout, "the routes-file error", func(tbl *route.Table) bool {
		return errorOf(tbl, routesFileService) != nil
	})
	if e := errorOf(p.table, routesFileService); e.Label != path {
		t.Errorf("error %+v, want its label to be the file path %s", e, path)
	}
	if r := routeOf(p.table, name, "default"); r == nil || !slices.Equal(r.Hosts, []string{"legacy2.test"}) {
		t.Errorf("a broken file dropped the last good route:%s", describeTable(p.table))
	}
}
