package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// The direct path forwards a plain request to a scheme=http upstream
// without httputil.ReverseProxy: the same steps (hop-by-hop headers removed
// per RFC 9110, X-Forwarded-* set, 1xx and trailers passed on, streams
// flushed on every write, failures through proxyError), with fewer copies
// and no context values. ReverseProxy, measured on small keep-alive GETs,
// spent about a third of the handler's time outside the upstream exchange.
// Anything unusual (upgrades, TE, queries ReverseProxy would re-encode)
// still goes through ReverseProxy, so the two agree on every request the
// direct path takes.

// direct reports whether r may take the direct path on rs.
func (rs *routeState) direct(r *http.Request) bool {
	return rs.h1 != nil && r.Header["Upgrade"] == nil && r.Header["Te"] == nil && plainQuery(r.URL.RawQuery)
}

// plainQuery reports whether ReverseProxy would forward q unchanged: no
// semicolons, valid percent escapes, not too many parameters.
func plainQuery(q string) bool {
	if strings.Count(q, "&") >= 1000 { // ReverseProxy re-encodes from 1,000 parameters on
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hopHeaders are removed in both directions, with the headers the
// Connection header names (RFC 9110 section 7.6.1).
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

var emptyUserAgent = []string{""} // read only: keeps Request.Write from adding Go's

// serveDirect forwards r to the route's upstreams and copies the answer
// to ex.
func (rs *routeState) serveDirect(ex *exchange, r *http.Request) {
	out := &ex.out
	*out = *r // shares the context and the body; header and URL are replaced
	ex.outURL = *r.URL
	out.URL = &ex.outURL
	out.URL.Scheme = rs.scheme
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out.Header = outHeader(r.Header, ex.trusted)
	setForwarded(r, out, ex.trusted)
	rs.outbound(ex, r, out)

	res, err := rs.roundTrip(out, ex, ex)
	if err != nil {
		rs.proxyError(ex, out, err)
		return
	}
	defer func() {
		if !ex.hijacked {
			res.Body.Close()
		}
	}()
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Never asked for: the request had no Upgrade header.
		rs.proxyError(ex, out, errUnrequestedUpgrade)
		return
	}
	removeHopHeaders(res.Header)
	_ = rs.modifyResponse(res)

	dst := ex.Header()
	for k, vv := range res.Header {
		if len(dst[k]) == 0 {
			dst[k] = vv // res.Header is not used after this: share the values
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	if rs.hijackStream(ex, r, res) {
		return
	}
	ex.WriteHeader(res.StatusCode)

	flush := rs.route.Stream || res.ContentLength == -1 || isEventStream(res.Header.Get("Content-Type"))
	if flush {
		ex.Flush() // the head goes out before the first byte of a stream
	}
	if err := rs.copyBody(ex, res.Body, flush); err != nil {
		// The response is cut: abort it so the client cannot take it
		// for complete (as ReverseProxy does).
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, to read the trailers
	if len(res.Trailer) > 0 {
		ex.Flush() // chunked, so that the trailers can follow
	}
	for k, vv := range res.Trailer {
		if len(res.Trailer) != announced {
			k = http.TrailerPrefix + k
		}
		dst[k] = append(dst[k], vv...)
	}
}

type unrequestedUpgrade struct{}

func (unrequestedUpgrade) Error() string { return "upstream switched protocols unasked" }

var errUnrequestedUpgrade error = unrequestedUpgrade{}

// outHeader copies the request headers to forward: everything but the
// hop-by-hop headers, the forwarding headers setForwarded replaces, and,
// from a client that is not a trusted proxy, every other forwarding header
// (see isForwardingHeader). The value slices are shared with in, which
// nothing changes while the request is forwarded.
func outHeader(in http.Header, trusted bool) http.Header {
	out := make(http.Header, len(in)+3)
	for k, vv := range in {
		if isHopHeader(k) || isOwnForwardedHeader(k) || !trusted && isForwardingHeader(k) {
			continue
		}
		out[k] = vv
	}
	for _, v := range in["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				out.Del(f)
			}
		}
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = emptyUserAgent
	}
	return out
}
