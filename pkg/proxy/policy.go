package proxy

import (
	"net"
	"net/http"
	"strings"
)

// admit applies the route's policy to a matched request, in this order (see
// access.go): the redirects and rewrites (rewrite.go), the HTTPS redirect, the allow list, the access steps
// (access.go: limits, auth, maintenance) and max_body.
// When it returns false it has answered the request.
func (rs *routeState) admit(ex *exchange, r *http.Request) bool {
	rt := rs.route
	if rs.redirects(ex, r) { // canonical_host, rewrite, return (rewrite.go)
		return false
	}
	if rt.TLSAuto() && rt.Redirect && !rs.h.secure(r, ex.trusted) {
		redirectHTTPS(ex, r)
		return false
	}
	if len(rt.Allow) > 0 && !allowed(rt.Allow, rs.h.clientIP(r, ex)) {
		rs.writeError(ex, http.StatusForbidden)
		return false
	}
	if !rs.access(ex, r) { // limits, auth, maintenance (access.go)
		return false
	}
	if rt.MaxBody > 0 {
		if r.ContentLength > rt.MaxBody {
			rs.writeError(ex, http.StatusRequestEntityTooLarge)
			return false
		}
		r.Body = http.MaxBytesReader(ex.ResponseWriter, r.Body, rt.MaxBody) // not ex: it tells the server to close the connection
	}
	return true
}

// secure reports whether the client reached us over TLS, directly or through
// a trusted proxy that says so.
func (h *Handler) secure(r *http.Request, trusted bool) bool {
	return r.TLS != nil || trusted && r.Header.Get("X-Forwarded-Proto") == "https"
}

// redirectHTTPS answers 308 with the same host (without port), path and query.
func redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
}
