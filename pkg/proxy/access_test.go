package proxy

import (
	"net/http"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestAccessKeysFailClosed: a route that sets an access key this build does
// not enforce answers 503 and never reaches its upstream.
func TestAccessKeysFailClosed(t *testing.T) {
	reached := 0
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { reached++ })
	for name, set := range map[string]func(r *route.Route){
		"maintenance": func(r *route.Route) { r.Maintenance = true },
	} {
		t.Run(name, func(t *testing.T) {
			rt := testRoute("a.test", addrOf(t, up))
			set(rt)
			f := newFixture(t, Config{}, table(rt))
			res := f.do(t, f.newRequest(t, "GET", "a.test", "/", nil))
			if res.StatusCode != http.StatusServiceUnavailable || reached != 0 {
				t.Fatalf("status %d, upstream reached %d times", res.StatusCode, reached)
			}
		})
	}
}
