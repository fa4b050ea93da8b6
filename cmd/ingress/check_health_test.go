package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestCheckPrintsHealth: `ingress check` shows active checks and ejection
// settings other than the defaults.
func TestCheckPrintsHealth(t *testing.T) {
	checked := &route.Route{Service: "api", Name: "default", Hosts: []string{"api.example.com"}, Path: "/", Mode: route.ModeTasks,
		HealthCheck: &route.HealthCheck{Path: "/healthz", Port: 8081}, EjectAfter: 5, EjectFor: 10 * time.Second}
	off := &route.Route{Service: "web", Name: "default", Hosts: []string{"web.example.com"}, Path: "/", Mode: route.ModeTasks, EjectAfter: -1}
	plain := &route.Route{Service: "www", Name: "default", Hosts: []string{"www.example.com"}, Path: "/", Mode: route.ModeTasks}
	var out bytes.Buffer
	printTable(&out, route.New(route.Snapshot{Routes: []*route.Route{checked, off, plain}}))
	for _, want := range []string{
		"HEALTH CHECK api/default: GET /healthz on port 8081 every 10s (timeout 2s, passes with status 200-399)\n",
		"EJECT api/default: after 5 consecutive failures or a connect error, for 10s (doubling up to 1m)\n",
		"EJECT web/default: only on connect errors, for 5s (doubling up to 1m)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "www/default:") {
		t.Errorf("a route with the defaults gets a health line:\n%s", out.String())
	}
}
