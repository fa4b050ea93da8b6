package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestCheckPrintsSplit: `ingress check` shows the split of a host and path
// and each route's sticky cookie and slow start.
func TestCheckPrintsSplit(t *testing.T) {
	blue := &route.Route{Service: "blue", Name: "default", Hosts: []string{"shop.example.com"}, Path: "/", Mode: route.ModeTasks,
		Weight: 90, Weighted: true, Sticky: "ingress_sticky", Created: time.Unix(1, 0)}
	green := &route.Route{Service: "green", Name: "default", Hosts: []string{"shop.example.com"}, Path: "/", Mode: route.ModeTasks,
		Weight: 10, Weighted: true, SlowStart: 30 * time.Second, Created: time.Unix(2, 0)}
	var out bytes.Buffer
	printTable(&out, route.New(route.Snapshot{Routes: []*route.Route{blue, green}}))
	for _, want := range []string{
		"SPLIT shop.example.com/: blue/default=90 green/default=10\n",
		"STICKY blue/default: cookie ingress_sticky\n",
		"SLOW START green/default: new upstreams ramp up over 30s\n",
		"2 route(s), 0 error(s)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}
