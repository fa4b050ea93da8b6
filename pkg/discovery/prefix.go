package discovery

import (
	"cmp"
	"errors"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// CheckLabelPrefix reports whether prefix can start label keys: not empty,
// ending in a dot, without blanks or '='.
func CheckLabelPrefix(prefix string) error {
	if prefix == "" || !strings.HasSuffix(prefix, ".") || strings.ContainsAny(prefix, " \t=") {
		return errors.New(`must be a label prefix ending in a dot, e.g. "` + DefaultLabelPrefix + `"`)
	}
	return nil
}

// HostLabel returns the function that names the label setting a route's
// hosts (route.Snapshot.HostLabel), under prefix ("" for the default).
func HostLabel(prefix string) func(*route.Route) string {
	prefix = cmp.Or(prefix, DefaultLabelPrefix)
	return func(r *route.Route) string { return routeLabel(prefix, r.Name, "host") }
}
