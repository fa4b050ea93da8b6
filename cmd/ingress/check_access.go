package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// printAccess prints the routes' limits, auth files, forward auth, error
// pages and maintenance (docs/labels.md, "Limits" to "Error pages and
// maintenance"). Files are read where traffic is served; a file missing on
// the host running the check is pointed out, not counted as an error.
func printAccess(w io.Writer, v route.View) {
	for _, r := range v.Routes {
		id := r.Service + "/" + r.Route
		if l := r.Limit; l != nil {
			var parts []string
			if l.Rate != "" {
				parts = append(parts, fmt.Sprintf("%s with burst %d (429 beyond)", l.Rate, l.Burst))
			}
			if l.Conn > 0 {
				parts = append(parts, fmt.Sprintf("%d requests in progress", l.Conn))
			}
			fmt.Fprintf(w, "LIMIT %s: per client address, %s\n", id, strings.Join(parts, "; "))
		}
		if r.BasicAuthFile != "" {
			fmt.Fprintf(w, "AUTH FILE %s: htpasswd %s%s\n", id, r.BasicAuthFile, fileNote(r.BasicAuthFile))
		}
		if fa := r.ForwardAuth; fa != nil {
			fmt.Fprintf(w, "FORWARD AUTH %s: %s", id, fa.URL)
			if len(fa.Headers) > 0 {
				fmt.Fprintf(w, ", copies %s", strings.Join(fa.Headers, ","))
			}
			fmt.Fprintln(w)
		}
		for _, code := range slices.Sorted(maps.Keys(r.ErrorPages)) {
			src := r.ErrorPages[code]
			note := ""
			if strings.HasPrefix(src, "/") {
				note = fileNote(src)
			}
			fmt.Fprintf(w, "ERROR PAGE %s: %s from %s%s\n", id, code, src, note)
		}
		if r.Maintenance {
			fmt.Fprintf(w, "MAINTENANCE %s: answers 503 with Retry-After\n", id)
		}
	}
}

// fileNote says when path cannot be read on this host.
func fileNote(path string) string {
	if _, err := os.Stat(path); err != nil {
		return " (not readable here: it must exist on every host serving traffic)"
	}
	return ""
}
