package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestCheckPrintsAccess: `ingress check` shows the access keys, points out
// a file missing on this host, and a bad access label blocks its route.
func TestCheckPrintsAccess(t *testing.T) {
	r := &route.Route{Service: "api", Name: "default", Hosts: []string{"api.example.com"}, Path: "/", Mode: route.ModeTasks,
		Limit:         route.Limit{Rate: route.Rate{N: 10, Per: time.Second}, Burst: 5, Conn: 20},
		BasicAuthFile: "/no/such/htpasswd",
		ForwardAuth:   route.ForwardAuth{URL: "http://auth:4180/auth", Headers: []string{"X-User"}},
		ErrorPages:    []route.ErrorPage{{Code: 502, Source: "http://pages/502.html"}},
		Maintenance:   true,
	}
	routes, errs := discovery.Build(discovery.Input{Static: []discovery.StaticService{{Name: "bad",
		Labels: map[string]string{"ingress.host": "bad.example.com", "ingress.limit.rate": "10 per second"}}}})
	var out bytes.Buffer
	printTable(&out, route.New(route.Snapshot{Routes: append(routes, r), Errors: errs}))
	for _, want := range []string{
		"LIMIT api/default: per client address, 10r/s with burst 5 (429 beyond); 20 requests in progress\n",
		"AUTH FILE api/default: htpasswd /no/such/htpasswd (not readable here: it must exist on every host serving traffic)\n",
		"FORWARD AUTH api/default: http://auth:4180/auth, copies X-User\n",
		"ERROR PAGE api/default: 502 from http://pages/502.html\n",
		"MAINTENANCE api/default: answers 503 with Retry-After\n",
		"BLOCKED bad/default (hosts bad.example.com, path / answer 503): ingress.limit.rate: \"10 per second\" is not a rate",
		"ERROR service bad, label ingress.limit.rate:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}
