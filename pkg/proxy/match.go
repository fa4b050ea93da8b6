package proxy

import "net/http"

// match brings the request's path to its canonical form (path.go), finds
// its route in the current table and returns the route's state, with the
// exchange bound to the route. It answers the request itself, and returns
// nil, when there is no route to serve it: 400 for a path that cannot be
// made canonical or an encoded slash the route does not allow, 404 for no
// route (503 with Retry-After while the table is missing or partial), 503
// for a blocked route.
func (h *Handler) match(ex *exchange, r *http.Request) *routeState {
	st := h.state.Load()
	raw := requestPath(r.URL)
	p, slash, ok := canonicalPath(raw)
	if !ok || r.URL.Opaque != "" { // "GET http:admin/x": no path, and forwarded as written
		writeError(ex, http.StatusBadRequest)
		return nil
	}
	if p != raw {
		setPath(r.URL, p)
	}
	rt, split := st.table.Lookup(r.Host, p)
	rs := st.routes[rt]
	if split != nil {
		if rs = st.pickMember(split, r, ex); rs == nil { // weighted.go
			rs = st.routes[rt]
			ex.route, ex.stats, ex.wbound = rs, rs.stats, rs.bounds.ClientWrite
			writeError(ex, http.StatusServiceUnavailable) // no member has an upstream and a weight
			return nil
		}
	}
	if rs == nil {
		if st.table == nil || st.table.Partial {
			// No table yet, or only the static routes: the route may
			// exist once discovery has read Swarm. Never a 404 for it.
			ex.Header().Set("Retry-After", retryAfterStarting)
			writeError(ex, http.StatusServiceUnavailable)
			return nil
		}
		h.writeNotFound(ex) // errorpage.go
		return nil
	}
	ex.route, ex.stats, ex.wbound = rs, rs.stats, rs.bounds.ClientWrite

	if rs.route.Blocked != "" {
		writeError(ex, http.StatusServiceUnavailable)
		return nil
	}
	if slash && !st.encodedSlashAllowed(rs, r, p) {
		writeError(ex, http.StatusBadRequest)
		return nil
	}
	return rs
}
