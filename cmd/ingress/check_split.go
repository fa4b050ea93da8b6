package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// printBalance lists, for `ingress check`, the hosts and paths that several
// routes share by weight, and the routes with sticky sessions or slow start
// (docs/labels.md, "Split, sticky and slow start").
func printBalance(w io.Writer, v route.View) {
	for _, s := range v.Splits {
		parts := make([]string, len(s.Members))
		for i, m := range s.Members {
			parts[i] = fmt.Sprintf("%s/%s=%d", m.Service, m.Route, m.Weight)
		}
		fmt.Fprintf(w, "SPLIT %s%s: %s\n", s.Host, s.Path, strings.Join(parts, " "))
	}
	for _, r := range v.Routes {
		if r.Sticky != "" {
			fmt.Fprintf(w, "STICKY %s/%s: cookie %s\n", r.Service, r.Route, r.Sticky)
		}
		if r.SlowStart != "" {
			fmt.Fprintf(w, "SLOW START %s/%s: new upstreams ramp up over %s\n", r.Service, r.Route, r.SlowStart)
		}
	}
}
