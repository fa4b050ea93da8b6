package proxy

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// gathered returns the value of the series of family name whose labels
// include want, and whether it exists.
func gathered(t *testing.T, f *fixture, name string, want map[string]string) (float64, bool) {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	series:
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func TestMetrics(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	app := testRoute("app.test", addrOf(t, ok))
	dead := testRoute("dead.test", deadAddr(t))
	dead.Service = "dead"
	f := newFixture(t, Config{}, table(app, dead))

	for range 3 {
		f.do(t, f.newRequest(t, "GET", "app.test", "/", nil))
	}
	f.do(t, f.newRequest(t, "GET", "dead.test", "/", nil))
	f.do(t, f.newRequest(t, "GET", "nowhere.test", "/", nil))

	tests := []struct {
		name   string
		family string
		labels map[string]string
		want   float64
	}{
		{name: "ok requests", family: "ingress_requests_total", labels: map[string]string{"route": "svc/default", "code": "200"}, want: 3},
		{name: "bad gateway", family: "ingress_requests_total", labels: map[string]string{"route": "dead/default", "code": "502"}, want: 1},
		{name: "unmatched", family: "ingress_requests_total", labels: map[string]string{"route": "none", "code": "404"}, want: 1},
		{name: "durations", family: "ingress_request_duration_seconds", labels: map[string]string{"route": "svc/default"}, want: 3},
		{name: "dial errors", family: "ingress_upstream_errors_total", labels: map[string]string{"route": "dead/default", "kind": "dial"}, want: 1},
		{name: "route count", family: "ingress_routes", want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := gathered(t, f, tt.family, tt.labels)
			if !found || got != tt.want {
				t.Fatalf("%s%v = %v (found %v), want %v", tt.family, tt.labels, got, found, tt.want)
			}
		})
	}

	f.h.SetTable(table(app))
	if _, found := gathered(t, f, "ingress_requests_total", map[string]string{"route": "dead/default"}); found {
		t.Error("series of a removed route still exported")
	}
	if got, _ := gathered(t, f, "ingress_routes", nil); got != 1 {
		t.Errorf("ingress_routes = %v after the swap, want 1", got)
	}
	if got, _ := gathered(t, f, "ingress_requests_total", map[string]string{"route": "svc/default", "code": "200"}); got != 3 {
		t.Errorf("a kept route's counter = %v after the swap, want 3", got)
	}
}
