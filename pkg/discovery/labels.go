package discovery

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Spec is one route as a service's labels describe it, defaults applied.
// Every label-derived field of Route is set; Service, ServiceID, Created,
// Mode, Network and Upstreams are left for Build, which reads Upstream and
// Network to place the route.
type Spec struct {
	Route    route.Route
	Upstream route.Mode        // the `upstream` label: route.ModeVIP or route.ModeTasks; "" when not set
	Network  string            // the `network` label; "" when not set
	Labels   map[string]string // each key in effect ("port", "headers.X-Frame-Options") -> the full label it came from

	rewriteOrder []int // the <N> of each of Route.Rewrites while they are parsed (labels_rewrite.go)
}

// Label returns the full label that set key for this route, or the label
// that would set it (prefix + key for the default route, prefix +
// "routes.<name>." + key for a named one).
func (s *Spec) Label(prefix, key string) string {
	if full, ok := s.Labels[key]; ok {
		return full
	}
	return routeLabel(prefix, s.Route.Name, key)
}

// DefaultRoute is the name of the route made by the top-level `host` label.
const DefaultRoute = "default"

const routesPart = "routes." // named routes: <prefix>routes.<name>.<key>

var routeName = regexp.MustCompile(`^[a-z0-9-]+$`)

// labelValue is one label under the prefix: its full key and value, and the
// full key of an earlier label it duplicates (e.g. headers.x-a vs headers.X-A).
type labelValue struct {
	full, value, dupOf string
}

// ParseLabels turns a service's labels into route specs, sorted by route
// name, and the problems found, sorted by label. It is pure.
//
// Labels not under prefix are ignored. The top-level keys (<prefix><key>) are
// defaults for every named route (<prefix>routes.<name>.<key>, the name
// matching [a-z0-9-]+); a top-level host also makes the route "default".
//
// Bad labels never half-apply: a route is produced only when every key in
// effect for it (its own and the defaults it inherits) is known and valid.
// A bad named-route key drops that route only; a bad top-level key drops
// every route that inherits it (a named route that sets the same key itself
// does not inherit it); an unknown top-level key drops every route. A
// dropped route that sets a security key or an unknown key is produced
// blocked instead (failclosed.go). Each problem is reported once, naming
// the full label; Service is left empty for the caller (Build) to fill in.
//
// Values are trimmed of surrounding spaces. Hosts are lower-cased, sorted
// and de-duplicated; a path loses one trailing slash; max_body takes SI
// units as powers of 1000 (10MB = 10,000,000 bytes) and IEC units as powers
// of 1024 (512KiB = 524,288 bytes); allow takes CIDRs or bare addresses
// (/32, /128); tls=off turns redirect off. labels_values.go has each key's
// rules.
func ParseLabels(prefix string, labels map[string]string) ([]Spec, []route.Error) {
	var errs map[route.Error]struct{}
	fail := func(label, format string, args ...any) {
		if errs == nil {
			errs = map[route.Error]struct{}{}
		}
		errs[route.Error{Label: label, Error: fmt.Sprintf(format, args...)}] = struct{}{}
	}

	top, named, anyRoute := splitLabels(prefix, labels, fail)
	_, hasDefault := slices.BinarySearchFunc(top, "host", compareKey)

	if !hasDefault {
		// No route may use them all: report bad top-level keys anyway.
		var scratch Spec
		for _, kv := range top {
			if err := applyLabel(&scratch, kv.key, kv.labelValue); err != nil {
				fail(kv.full, "%s", err)
			}
		}
	}

	var specs []Spec
	if hasDefault {
		if s, ok := buildSpec(prefix, DefaultRoute, top, fail); ok {
			specs = append(specs, s)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(named)) {
		if s, ok := buildSpec(prefix, name, mergeKeys(top, named[name]), fail); ok {
			specs = append(specs, s)
		}
	}

	if !hasDefault && len(named) == 0 && len(top) > 0 && !anyRoute {
		fail(prefix+"host", "the service has %s labels but no host, so it is not routed: set %shost (or %sroutes.<name>.host)",
			prefix, prefix, prefix)
	}
	return specs, sortedErrors(errs)
}

// keyValue is one label under the prefix, with its key normalised.
type keyValue struct {
	key string // "port", "headers.X-Frame-Options"
	labelValue
}

func compareKey(kv keyValue, key string) int { return strings.Compare(kv.key, key) }

// splitLabels sorts the labels under prefix into top-level keys and named
// routes, each sorted by key, header names normalised. A key set twice (by
// labels whose header names differ in case) is kept twice, the second marked
// as a duplicate. Malformed route labels are reported. anyRoute reports
// whether there was any route label, even a malformed one.
func splitLabels(prefix string, labels map[string]string, fail func(label, format string, args ...any)) (top []keyValue, named map[string][]keyValue, anyRoute bool) {
	for full, value := range labels {
		key, ok := strings.CutPrefix(full, prefix)
		if !ok {
			continue
		}
		lv := labelValue{full: full, value: value}
		rest, isRoute := strings.CutPrefix(key, routesPart)
		if !isRoute {
			top = append(top, keyValue{normalizeKey(key), lv})
			continue
		}
		anyRoute = true
		name, sub, ok := strings.Cut(rest, ".")
		switch {
		case !ok || sub == "":
			fail(full, "a route label reads %sroutes.<name>.<key> (e.g. %sroutes.api.host); this one has no key", prefix, prefix)
		case name == DefaultRoute:
			fail(full, "route name %q is reserved for the top-level keys (%shost and the rest); pick another name", name, prefix)
		case !routeName.MatchString(name):
			fail(full, "route name %q may only hold lower-case letters, digits and '-' (e.g. api-v2)", name)
		default:
			if named == nil {
				named = map[string][]keyValue{}
			}
			named[name] = append(named[name], keyValue{normalizeKey(sub), lv})
		}
	}
	sortKeys(top)
	for _, kvs := range named {
		sortKeys(kvs)
	}
	return top, named, anyRoute
}

// sortKeys sorts by key, then full label, and marks repeated keys.
func sortKeys(kvs []keyValue) {
	slices.SortFunc(kvs, func(a, b keyValue) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.full, b.full)
	})
	for i := 1; i < len(kvs); i++ {
		if kvs[i].key == kvs[i-1].key {
			kvs[i].dupOf = kvs[i-1].full
		}
	}
}

// mergeKeys returns the keys in effect for a named route: its own, and the
// top-level ones it does not set. Both inputs and the result are sorted.
func mergeKeys(top, own []keyValue) []keyValue {
	out := make([]keyValue, 0, len(top)+len(own))
	i, j := 0, 0
	for i < len(top) || j < len(own) {
		switch {
		case j == len(own) || i < len(top) && top[i].key < own[j].key:
			out = append(out, top[i])
			i++
		case i == len(top) || own[j].key < top[i].key:
			out = append(out, own[j])
			j++
		default: // the route sets the key: every top-level label of that key is overridden
			key := own[j].key
			for i < len(top) && top[i].key == key {
				i++
			}
		}
	}
	return out
}

// normalizeKey canonicalises the header name of a headers.<Name> key so that
// a route's header overrides a default of the same name whatever its case.
func normalizeKey(key string) string {
	if k, ok := normalizeRewriteKey(key); ok {
		return k
	}
	if name, ok := strings.CutPrefix(key, headersPart); ok && name != "" {
		return headersPart + textproto.CanonicalMIMEHeaderKey(name)
	}
	return key
}

// buildSpec applies every key in effect for one route. It reports false if
// any key is bad (every problem is reported) or the route has no host,
// unless the route is guarded (sets a security or an unknown key): then it
// returns the route blocked, the first bad label as the reason.
func buildSpec(prefix, name string, eff []keyValue, fail func(label, format string, args ...any)) (Spec, bool) {
	s := Spec{Labels: make(map[string]string, len(eff))}
	s.Route = route.Route{
		Name:     name,
		Path:     "/",
		Port:     80,
		TLS:      route.TLSAuto,
		Redirect: true,
		Scheme:   route.SchemeHTTP,
		Timeout:  route.DefaultTimeout,
	}
	ok, guarded, reason := true, false, ""
	for _, kv := range eff {
		s.Labels[kv.key] = kv.full
		err := applyLabel(&s, kv.key, kv.labelValue)
		guarded = guarded || isSecurityKey(kv.key) || errors.Is(err, errUnknownKey)
		if err != nil {
			fail(kv.full, "%s", err)
			if ok {
				reason = kv.full + ": " + err.Error()
			}
			ok = false
		}
	}
	if ok {
		if key, err := checkAccess(&s.Route); err != nil {
			fail(s.Label(prefix, key), "%s", err)
			ok, guarded, reason = false, true, s.Label(prefix, key)+": "+err.Error()
		}
	}
	normalizeHealth(&s.Route)
	if ok && len(s.Route.Hosts) == 0 {
		fail(routeLabel(prefix, name, "host"), "route %q has no host: set %s, or %shost as a default for every route",
			name, routeLabel(prefix, name, "host"), prefix)
		ok = false
	}
	if !ok {
		if guarded {
			return blocked(s, reason)
		}
		return Spec{}, false
	}
	if s.Route.TLS == route.TLSOff {
		s.Route.Redirect = false // nothing to redirect to
	}
	slices.SortFunc(s.Route.Headers, func(a, b route.Header) int { return strings.Compare(a.Name, b.Name) })
	finishRewriteSpec(&s)
	return s, true
}

// routeLabel is the full label of key for the named route.
func routeLabel(prefix, name, key string) string {
	if name == DefaultRoute {
		return prefix + key
	}
	return prefix + routesPart + name + "." + key
}

func sortedErrors(set map[route.Error]struct{}) []route.Error {
	if len(set) == 0 {
		return nil
	}
	errs := slices.Collect(maps.Keys(set))
	slices.SortFunc(errs, func(a, b route.Error) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		return strings.Compare(a.Error, b.Error)
	})
	return errs
}
