package main

import (
	"fmt"
	"io"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// printHealth shows, for `ingress check`, each route's active check and
// its outlier ejection when not the default (docs/labels.md "Upstream
// health").
func printHealth(w io.Writer, v route.View) {
	for _, r := range v.Routes {
		h := r.Health
		if c := h.Check; c != nil {
			port := ""
			if c.Port != 0 {
				port = fmt.Sprintf(" on port %d", c.Port)
			}
			fmt.Fprintf(w, "HEALTH CHECK %s/%s: GET %s%s every %s (timeout %s, passes with status %s)\n",
				r.Service, r.Route, c.Path, port, c.Interval, c.Timeout, c.Status)
		}
		switch {
		case h.EjectAfter == 0:
			fmt.Fprintf(w, "EJECT %s/%s: only on connect errors, for %s (doubling up to 1m)\n", r.Service, r.Route, h.EjectFor)
		case h.EjectAfter != route.DefaultEjectAfter || h.EjectFor != route.DefaultEjectFor.String():
			fmt.Fprintf(w, "EJECT %s/%s: after %d consecutive failures or a connect error, for %s (doubling up to 1m)\n",
				r.Service, r.Route, h.EjectAfter, h.EjectFor)
		}
	}
}
