package proxy

import (
	"net/http"
)

// The access steps of a route, after the checks of match.go and policy.go,
// in this order (docs/labels.md, "Order of checks"):
//
//	blocked → encoded slashes                           (match.go)
//	→ HTTPS redirect → allow                            (policy.go)
//	→ limit.conn → limit.rate                           (limit.go)
//	→ auth.basic → auth.basic_file                      (auth.go, authfile.go)
//	→ auth.forward                                      (forwardauth.go)
//	→ maintenance                                       (errorpage.go)
//	→ max_body                                          (policy.go)
//	→ the upstream                                      (outbound.go)
//
// Limits come first so that a flood of guesses costs no bcrypt comparison
// and no sub-request to the auth service; maintenance comes after the auth
// steps so that a client that may not see the route learns nothing of its
// state.

// access runs the route's access steps. When it returns false it has
// answered the request. release must be called once the request is done
// (it frees the request's limit.conn slot).
func (rs *routeState) access(ex *exchange, r *http.Request) (release func(), ok bool) {
	rt := rs.route
	if rt.Limit.Enabled() || rt.BasicAuthFile != "" || rt.ForwardAuth.URL != "" || rt.Maintenance || len(rt.ErrorPages) > 0 {
		// Not enforced by this build yet: closed rather than open.
		rs.writeError(ex, http.StatusServiceUnavailable)
		return nil, false
	}
	if len(rt.BasicAuth) > 0 && !rs.h.auth.check(rt.BasicAuth, r) {
		ex.Header().Set("WWW-Authenticate", rs.challenge)
		rs.writeError(ex, http.StatusUnauthorized)
		return nil, false
	}
	return noRelease, true
}

func noRelease() {}
