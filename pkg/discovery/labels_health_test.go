package discovery

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// renderHealth writes the eject.* and health.* settings of a route that
// sets any, with the defaults applied (as the proxy reads them).
func renderHealth(b *bytes.Buffer, r route.Route) {
	if r.EjectAfter != 0 || r.EjectFor != 0 {
		e := r.Ejection()
		fmt.Fprintf(b, "  eject.after: %d  eject.for: %s\n", e.After, e.For)
	}
	if c := r.HealthCheck; c != nil {
		d := c.WithDefaults()
		fmt.Fprintf(b, "  health: path=%s interval=%s timeout=%s status=%s port=%d\n", d.Path, d.Interval, d.Timeout, d.Status(), d.Port)
	}
}

// TestHealthLabelsRoundTripDefaults checks that a route without health keys
// gets the documented defaults, and that eject.after=0 turns the failure
// count off (only connect errors eject).
func TestHealthLabelsDefaults(t *testing.T) {
	specs, errs := ParseLabels("ingress.", map[string]string{"ingress.host": "a.example.com"})
	if len(errs) != 0 || len(specs) != 1 {
		t.Fatalf("specs %v errs %v", specs, errs)
	}
	r := specs[0].Route
	if e := r.Ejection(); e.After != route.DefaultEjectAfter || e.For != route.DefaultEjectFor || r.HealthCheck != nil {
		t.Fatalf("defaults: %+v check %v", e, r.HealthCheck)
	}
	specs, errs = ParseLabels("ingress.", map[string]string{"ingress.host": "a.example.com", "ingress.eject.after": "0"})
	if len(errs) != 0 || len(specs) != 1 || specs[0].Route.Ejection().After != 0 {
		t.Fatalf("eject.after=0: specs %v errs %v", specs, errs)
	}
}

// TestHealthLabelsRejects covers values a golden file cannot hold.
func TestHealthLabelsRejects(t *testing.T) {
	for _, v := range []string{"/a b", "/a\nb", "/a\tb", "/a\x7f", "/é"} {
		_, errs := ParseLabels("ingress.", map[string]string{"ingress.host": "a.example.com", "ingress.health.path": v})
		if len(errs) != 1 || errs[0].Label != "ingress.health.path" || !strings.Contains(errs[0].Error, "not allowed") {
			t.Errorf("health.path %q: errors %v", v, errs)
		}
	}
}

// checkHealthSpec fails unless the health settings of a produced route are
// valid (FuzzParseLabels).
func checkHealthSpec(t *testing.T, r route.Route) {
	t.Helper()
	if r.EjectAfter > maxEjectAfter || r.EjectAfter < -1 || r.EjectFor < 0 || r.EjectFor > maxEjectFor {
		t.Fatalf("eject.after %d eject.for %s", r.EjectAfter, r.EjectFor)
	}
	c := r.HealthCheck
	if c == nil {
		return
	}
	if got, err := parseHealthPath(c.Path); err != nil || got != c.Path {
		t.Fatalf("health path %q: %v", c.Path, err)
	}
	d := c.WithDefaults()
	if d.Interval < minHealthInterval || d.Timeout <= 0 || d.Timeout > d.Interval || d.StatusMin < 100 || d.StatusMax > 599 || d.StatusMin > d.StatusMax {
		t.Fatalf("health check %+v", d)
	}
}

// TestHealthKeysInRoutesFile: the routes file takes the same keys.
func TestHealthKeysInRoutesFile(t *testing.T) {
	entries, err := ParseRoutesFile(strings.NewReader(`services:
  - name: legacy
    upstreams: ["192.0.2.10:8080", "192.0.2.11:8080"]
    labels:
      ingress.host: legacy.example.com
      ingress.eject.after: 2
      ingress.eject.for: 1s
      ingress.health.path: /healthz
      ingress.health.status: 204
`))
	if err != nil {
		t.Fatal(err)
	}
	static, errs := ResolveStatic(t.Context(), entries, nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	routes, errs := Build(Input{Static: static})
	if len(errs) != 0 || len(routes) != 1 {
		t.Fatalf("routes %v errs %v", routes, errs)
	}
	r := routes[0]
	want := route.HealthCheck{Path: "/healthz", StatusMin: 204, StatusMax: 204}
	if e := r.Ejection(); e.After != 2 || e.For != time.Second || r.HealthCheck == nil || *r.HealthCheck != want {
		t.Fatalf("ejection %+v check %+v", e, r.HealthCheck)
	}
}
