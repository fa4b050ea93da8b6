package proxy

import "net/http"

// outbound finishes the outbound request once the forwarding headers are
// set, on both the direct and the ReverseProxy path: the upstream path (the
// internal rewrite's, or the route's strip_prefix; rewrite.go), the request
// id (requestid.go), then the route's request header edits
// (docs/labels.md, "Request headers"): request_headers_remove, then
// request_headers (set; a value that expands to nothing removes the
// header, as in Nginx), then request_headers_add. They come last, so that a
// route may also replace a forwarding header or the request id.
func (rs *routeState) outbound(ex *exchange, in, out *http.Request) {
	switch {
	case ex.rewritten:
		setPath(out.URL, ex.upstreamPath)
		out.URL.RawQuery = ex.upstreamQuery
	case rs.route.StripPrefix:
		stripPrefix(out, rs.route.Path)
	}
	setRequestID(ex, out)
	e := rs.edits
	if e == nil || e.broken != nil {
		return
	}
	for _, name := range e.remove {
		delete(out.Header, name)
	}
	if len(e.set) == 0 && len(e.add) == 0 {
		return
	}
	v := &vars{h: rs.h, ex: ex, r: in, uri: in.URL.EscapedPath()}
	if ex.rewritten {
		v.uri, v.args = ex.upstreamPath, &ex.upstreamQuery
	}
	for _, he := range e.set {
		val := he.lit
		if val == nil {
			val = []string{string(he.value.Expand(nil, v.value))}
		}
		switch {
		case he.name == "Host":
			out.Host = val[0]
		case val[0] == "":
			delete(out.Header, he.name)
		default:
			out.Header[he.name] = val
		}
	}
	for _, he := range e.add {
		s := ""
		if he.lit != nil {
			s = he.lit[0]
		} else {
			s = string(he.value.Expand(nil, v.value))
		}
		if s != "" {
			// A new slice: the header's values may be shared with the
			// inbound request.
			out.Header[he.name] = append(out.Header[he.name][:len(out.Header[he.name]):len(out.Header[he.name])], s)
		}
	}
}

// hideResponseHeaders removes the route's response_headers_remove from the
// upstream's response, and the upstream's own X-Request-ID (the response
// carries the request's, set when it arrived).
func (rs *routeState) hideResponseHeaders(h http.Header) {
	delete(h, requestIDHeader)
	if e := rs.edits; e != nil {
		for _, name := range e.hide {
			delete(h, name)
		}
	}
}
