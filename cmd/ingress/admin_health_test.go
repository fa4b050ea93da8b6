package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestAdminShowsEjectedUpstream: an upstream the proxy ejected is shown as
// such in /api/routes and on the status page.
func TestAdminShowsEjectedUpstream(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer live.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close() // connection refused from now on
	a := testApp(t)
	a.publish(route.New(route.Snapshot{Generation: 1, Routes: []*route.Route{{
		Service: "app", Name: "default", Hosts: []string{"app.test"}, Path: "/", TLS: route.TLSOff, Mode: route.ModeTasks,
		Scheme: route.SchemeHTTP, Upstreams: []netip.AddrPort{dead, netip.MustParseAddrPort(strings.TrimPrefix(live.URL, "http://"))},
	}}}))
	for range 20 { // the dead one is picked (and ejected) by one of them
		rec := httptest.NewRecorder()
		a.proxy.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://app.test/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	h := a.adminHandler()
	_, body := get(t, h, "/api/routes")
	var v route.View
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Routes) != 1 {
		t.Fatalf("/api/routes: %v: %s", err, body)
	}
	var st route.UpstreamHealth
	for _, u := range v.Routes[0].UpstreamHealth {
		if u.Upstream == dead.String() {
			st = u
		}
	}
	if st.State != "ejected" || st.Reason != "connect" || st.EjectedUntil == nil {
		t.Fatalf("/api/routes does not show %s ejected for connect:\n%s", dead, body)
	}
	_, page := get(t, h, "/")
	if !strings.Contains(page, "<code>"+dead.String()+"</code> ejected (connect)") {
		t.Fatalf("status page does not show %s ejected", dead)
	}
}
