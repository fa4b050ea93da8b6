package discovery

import (
	"cmp"
	"slices"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Bad labels never half-apply, and a broken protection fails closed
// (docs/labels.md): a route that cannot be built is dropped, unless it sets
// a security-relevant key, or a key the parser does not know (it may be a
// misspelt security key, e.g. auth.basci). Such a route is kept, blocked:
// its hosts and path stay claimed and answer 503 without contacting an
// upstream, so its requests never fall through to a shorter path of the
// same host that lacks the protection.

// securityKeys are the keys that protect a route. Keys added later that
// protect a route (forward auth, rate limits) belong here.
var securityKeys = []string{"auth.basic", "allow", "max_body", "allow_encoded_slashes",
	"limit.rate", "limit.burst", "limit.conn", "auth.basic_file", "auth.forward", "auth.forward.headers", "maintenance"}

// isSecurityKey reports a key that protects a route. error_page.<code> is
// one too: a route whose page cannot be read stays closed rather than
// handing its path to another route (docs/labels.md, "Bad labels").
func isSecurityKey(key string) bool {
	return slices.Contains(securityKeys, key) || strings.HasPrefix(key, errorPagePart)
}

// guarded reports whether the spec sets a security key.
func (s *Spec) guarded() bool {
	for key := range s.Labels {
		if isSecurityKey(key) {
			return true
		}
	}
	return false
}

// blocked turns the spec of a route that cannot be built into a blocked
// one: the hosts it names, its path ("/" when the path cannot be read, so
// that every path of the hosts is blocked), no upstream, and reason (the
// label and its problem). It reports false when no host can be read:
// nothing can be blocked, the problem is only reported.
func blocked(s Spec, reason string) (Spec, bool) {
	r := s.Route
	if len(r.Hosts) == 0 {
		return Spec{}, false
	}
	s.Route = route.Route{
		Name:     r.Name,
		Hosts:    r.Hosts,
		Path:     cmp.Or(r.Path, "/"),
		TLS:      cmp.Or(r.TLS, route.TLSAuto),
		Scheme:   route.SchemeHTTP,
		Timeout:  route.DefaultTimeout,
		Priority: r.Priority,
		Blocked:  reason,
	}
	s.Network = ""
	return s, true
}

// blockGuarded is blocked for a valid spec whose route cannot be placed
// (no network, no upstream, a key a static service may not set): the route
// is blocked if it sets a security key, else dropped (false).
func blockGuarded(s Spec, reason string) (Spec, bool) {
	if !s.guarded() {
		return Spec{}, false
	}
	return blocked(s, reason)
}
