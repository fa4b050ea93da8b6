package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// testApp is an app with real components but no Docker: tables are published by hand.
func testApp(t *testing.T) *app {
	t.Helper()
	cm, err := certs.New(certs.Config{DataDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	return &app{log: zerolog.Nop(), registry: reg, certs: cm, proxy: proxy.New(proxy.Config{Registerer: reg})}
}

func sampleTable() *route.Table {
	return route.New(route.Snapshot{
		Generation: 7,
		UpdatedAt:  time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		HostLabel:  discovery.HostLabel("ingress."),
		Routes: []*route.Route{{
			Service: "web", Name: "default", Hosts: []string{"web.example.com"}, Path: "/",
			Mode: route.ModeVIP, Network: "edge", TLS: route.TLSAuto, Port: 8080,
			Upstreams: []netip.AddrPort{netip.MustParseAddrPort("10.0.1.5:8080")},
		}, {
			Service: "jobs", Name: "api", Hosts: []string{"jobs.example.com"}, Path: "/api",
			Mode: route.ModeTasks, Network: "edge", TLS: route.TLSOff, Stream: true,
		}, {
			Service: "web", Name: "admin", Hosts: []string{"web.example.com"}, Path: "/admin",
			Mode: route.ModeVIP, TLS: route.TLSAuto, Blocked: "ingress.routes.admin.auth.basci: unknown key",
		}},
		Errors: []route.Error{{Service: "broken", Label: "ingress.port", Error: "port \"x\" is not a number"}},
	})
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestAdminReadiness(t *testing.T) {
	a := testApp(t)
	h := a.adminHandler()
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the first table = %d, want 503", code)
	}
	a.publish(route.New(route.Snapshot{Generation: 1, Partial: true}))
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Swarm") {
		t.Fatalf("/readyz with the routes file only = %d %q, want 503 saying Swarm is not read yet", code, body)
	}
	a.publish(sampleTable())
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz after the first table = %d, want 200", code)
	}
}

func TestAdminRoutesShape(t *testing.T) {
	a := testApp(t)
	h := a.adminHandler()
	_, body := get(t, h, "/api/routes")
	var empty map[string]any
	if err := json.Unmarshal([]byte(body), &empty); err != nil {
		t.Fatal(err)
	}
	if _, ok := empty["routes"].([]any); !ok {
		t.Fatalf("routes must be [] before the first table, got %s", body)
	}

	a.publish(sampleTable())
	_, body = get(t, h, "/api/routes")
	var got struct {
		Generation uint64           `json:"generation"`
		UpdatedAt  string           `json:"updated_at"`
		Routes     []map[string]any `json:"routes"`
		Errors     []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Generation != 7 || got.UpdatedAt != "2026-11-25T09:00:00Z" {
		t.Fatalf("generation/updated_at = %d %q", got.Generation, got.UpdatedAt)
	}
	if len(got.Routes) != 3 || len(got.Errors) != 1 {
		t.Fatalf("routes/errors: %s", body)
	}
	web := got.Routes[2] // sorted by service, then route: jobs/api, web/admin, web/default
	wantKeys := []string{"service", "route", "hosts", "path", "upstream_mode", "network", "upstreams", "tls", "stream", "blocked", "health", "upstream_health"}
	for _, k := range wantKeys {
		if _, ok := web[k]; !ok {
			t.Errorf("route lacks key %q: %v", k, web)
		}
	}
	if len(web) != len(wantKeys) {
		t.Errorf("route has extra keys: %v", web)
	}
	if web["upstream_mode"] != "vip" || web["upstreams"].([]any)[0] != "10.0.1.5:8080" || web["network"] != "edge" {
		t.Errorf("web route = %v", web)
	}
	if hv, ok := web["health"].(map[string]any); !ok || hv["eject_after"] != 3.0 || hv["eject_for"] != "5s" {
		t.Errorf("web route health = %v", web["health"])
	}
	if uh, ok := web["upstream_health"].([]any); !ok || len(uh) != 1 || uh[0].(map[string]any)["state"] != "up" || uh[0].(map[string]any)["upstream"] != "10.0.1.5:8080" {
		t.Errorf("web route upstream_health = %v", web["upstream_health"])
	}
	if jobs := got.Routes[0]; len(jobs["upstreams"].([]any)) != 0 || jobs["stream"] != true || jobs["blocked"] != "" {
		t.Errorf("a route without running tasks must list empty upstreams: %v", jobs)
	}
	if admin := got.Routes[1]; admin["route"] != "admin" || admin["blocked"] != "ingress.routes.admin.auth.basci: unknown key" || len(admin["upstreams"].([]any)) != 0 {
		t.Errorf("a blocked route must be listed with its reason and no upstream: %v", admin)
	}
	if e := got.Errors[0]; e["service"] != "broken" || e["label"] != "ingress.port" || e["error"] == "" {
		t.Errorf("error = %v", e)
	}
}

func TestAdminStatusPageAndMetrics(t *testing.T) {
	a := testApp(t)
	h := a.adminHandler()
	a.publish(sampleTable())
	code, page := get(t, h, "/")
	if code != 200 {
		t.Fatalf("/ = %d", code)
	}
	for _, want := range []string{"web.example.com", "10.0.1.5:8080", "jobs.example.com", "no running task", "ingress.port", `id="ready">ready`,
		"blocked, answers 503: ingress.routes.admin.auth.basci: unknown key"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if code, _ := get(t, h, "/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
	code, metrics := get(t, h, "/metrics")
	if code != 200 || !strings.Contains(metrics, "go_goroutines") {
		t.Fatalf("/metrics = %d, lacks go_goroutines", code)
	}
	if code, body := get(t, h, "/api/certs"); code != 200 || !strings.HasPrefix(strings.TrimSpace(body), "[") {
		t.Fatalf("/api/certs = %d %q", code, body)
	}
}

func TestHealthcheck(t *testing.T) {
	a := testApp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.adminHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	getenv := env(t, "INGRESS_ADMIN_ADDR", ln.Addr().String())

	if err := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, new(bytes.Buffer)); err == nil {
		t.Fatal("healthcheck passed before the first table")
	}
	a.publish(sampleTable())
	if err := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, new(bytes.Buffer)); err != nil {
		t.Fatalf("healthcheck failed when ready: %v", err)
	}
	srv.Close()
	if err := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, new(bytes.Buffer)); err == nil {
		t.Fatal("healthcheck passed with the admin listener down")
	}
}
