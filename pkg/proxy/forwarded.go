package proxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// peer returns the address of the TCP peer and whether it is a trusted proxy.
func (h *Handler) peer(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap()
	return a, h.trusted(a)
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address the allow list is checked against: the peer, or,
// when the peer is a trusted proxy, the right-most X-Forwarded-For entry that
// is not itself a trusted proxy. An unparsable entry yields the zero Addr,
// which no allow list contains.
func (h *Handler) clientIP(r *http.Request, ex *exchange) netip.Addr {
	if !ex.trusted {
		return ex.peer
	}
	client := ex.peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return netip.Addr{}
			}
			client = a.Unmap()
			if !h.trusted(client) {
				return client
			}
		}
	}
	return client
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rewrite turns the inbound request into the outbound one. The Host header
// is kept; URL.Host is set per attempt by RoundTrip.
func (rs *routeState) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme = rs.scheme
	if len(rs.ups) > 0 {
		out.URL.Host = rs.ups[0].host
	}
	ex, _ := pr.In.Context().Value(exchangeKey{}).(*exchange)
	trusted := ex != nil && ex.trusted
	// ReverseProxy removed Forwarded and X-Forwarded-For, -Host and -Proto.
	if !trusted {
		for k := range out.Header {
			if isForwardingHeader(k) {
				delete(out.Header, k)
			}
		}
	} else if v := pr.In.Header["Forwarded"]; len(v) > 0 {
		out.Header["Forwarded"] = v
	}
	setForwarded(pr.In, pr.Out, trusted)
	if ex != nil {
		rs.outbound(ex, pr.In, out) // the path (strip_prefix or rewrite), request id and header edits
	}
}

// isOwnForwardedHeader reports the headers setForwarded writes: the client's
// values never pass as they are.
func isOwnForwardedHeader(k string) bool {
	switch k {
	case "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// isForwardingHeader reports a header (canonical key) by which a proxy tells
// the backend who the client is or how it arrived: Forwarded (RFC 7239),
// every X-Forwarded-*, X-Real-Ip and X-Client-Ip, and any of them spelt with
// underscores (X_Forwarded_For): CGI-style backends read both spellings as
// the same variable (HTTP_X_FORWARDED_FOR). They are passed on only from
// trusted proxies (docs/labels.md, "Forwarding headers").
func isForwardingHeader(k string) bool {
	if len(k) < len("Forwarded") {
		return false
	}
	if strings.IndexByte(k, '_') >= 0 {
		k = http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
	}
	switch k[0] {
	case 'F':
		return k == "Forwarded"
	case 'X':
		return strings.HasPrefix(k, "X-Forwarded-") || k == "X-Real-Ip" || k == "X-Client-Ip"
	}
	return false
}

// setForwarded sets X-Forwarded-For, -Host and -Proto. ReverseProxy has
// already removed the client's values from Out; a trusted proxy's values are
// carried over from In (its X-Forwarded-For extended with the peer).
func setForwarded(in, out *http.Request, trusted bool) {
	peer, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		peer = ""
	}
	xff := peer
	if trusted {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + peer
		}
	}
	vals := [3]string{xff} // one allocation for the three headers
	if xff != "" {
		out.Header["X-Forwarded-For"] = vals[0:1:1]
	}
	host, proto := in.Host, "http"
	if in.TLS != nil {
		proto = "https"
	}
	if trusted {
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
	}
	vals[1], vals[2] = host, proto
	out.Header["X-Forwarded-Host"] = vals[1:2:2]
	out.Header["X-Forwarded-Proto"] = vals[2:3:3]
}

// stripPrefix removes the route's path prefix from the outbound URL, whose
// path is canonical (path.go), keeping a leading slash. The prefix matched
// case-insensitively and may span escapes (route.PrefixLen).
func stripPrefix(out *http.Request, prefix string) {
	u := out.URL
	p := u.EscapedPath()
	n, ok := route.PrefixLen(p, prefix)
	if !ok || n == 0 {
		return
	}
	rest := p[n:]
	if rest == "" {
		rest = "/"
	}
	setPath(u, rest)
}
