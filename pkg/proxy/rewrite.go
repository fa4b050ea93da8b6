package proxy

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Redirects and rewrites (docs/labels.md, "Redirects and rewrites"), run
// after the route is matched and before its access checks, as Nginx's
// rewrite phase runs before its access phase:
//
//  1. canonical_host: a request for another host of the route gets 301 to
//     the canonical host, path and query kept (https when the route would
//     redirect to HTTPS anyway: one hop, not two);
//  2. the rewrites, in order, on the canonical path (the whole path, before
//     strip_prefix, as Nginx's regexes see the normalised URI): a redirect
//     answers at once; an internal rewrite changes the path and goes on to
//     the next rewrite unless its flag is last or break;
//  3. return: answers with its status and Location.
//
// An internal rewrite sets the upstream's path and query exactly (the
// route's strip_prefix is then not applied, as Nginx passes a rewritten
// URI to proxy_pass as it is); the rewritten path is not matched against
// the routes again (last behaves like break). A rewritten query replaces
// the request's, which is appended unless the replacement ends with '?'.

// edits is what a route's rewrite, return, canonical_host and header labels
// compile to. A route without any of them has none (nil).
type edits struct {
	canonical string
	rules     []rewriteRule
	ret       route.Template
	retCode   int

	set    []headerEdit // request_headers
	add    []headerEdit // request_headers_add
	remove []string     // request_headers_remove
	hide   []string     // response_headers_remove

	broken error // the route could not be compiled (a table that did not come from discovery): 503
}

type rewriteRule struct {
	re   *regexp.Regexp
	repl route.Template
	code int
	last bool
}

type headerEdit struct {
	name  string
	value route.Template
	lit   []string // the value when it has no variable, shared read-only
}

// prepareEdits compiles r's redirects, rewrites and header edits, or
// returns nil when it has none. The table came as plain values (maybe over
// the control channel), so the regular expressions are compiled here, on
// every instance that serves it.
func prepareEdits(r *route.Route) *edits {
	if r.Return.Code == 0 && r.CanonicalHost == "" && len(r.Rewrites) == 0 && len(r.RequestHeaders) == 0 &&
		len(r.RequestHeadersAdd) == 0 && len(r.RequestHeadersRemove) == 0 && len(r.ResponseHeadersRemove) == 0 {
		return nil
	}
	e := &edits{canonical: r.CanonicalHost, remove: r.RequestHeadersRemove, hide: r.ResponseHeadersRemove}
	fail := func(err error) *edits { return &edits{broken: err} }
	for _, rw := range r.Rewrites {
		re, err := regexp.Compile(rw.Regex)
		if err != nil {
			return fail(fmt.Errorf("rewrite %q: %w", rw.Regex, err))
		}
		t, err := route.ParseTemplate(rw.Replacement, true, re.NumSubexp())
		if err != nil {
			return fail(fmt.Errorf("rewrite %q: %w", rw.Regex, err))
		}
		e.rules = append(e.rules, rewriteRule{re: re, repl: t, code: rw.Code, last: rw.Last})
	}
	if r.Return.Code != 0 {
		t, err := route.ParseTemplate(r.Return.URL, false, 0)
		if err != nil {
			return fail(fmt.Errorf("return: %w", err))
		}
		e.ret, e.retCode = t, r.Return.Code
	}
	for _, set := range []struct {
		from []route.Header
		to   *[]headerEdit
	}{{r.RequestHeaders, &e.set}, {r.RequestHeadersAdd, &e.add}} {
		for _, h := range set.from {
			t, err := route.ParseTemplate(h.Value, false, 0)
			if err != nil {
				return fail(fmt.Errorf("request header %s: %w", h.Name, err))
			}
			he := headerEdit{name: h.Name, value: t}
			if s, ok := t.Literal(); ok {
				he.lit = []string{s}
			}
			*set.to = append(*set.to, he)
		}
	}
	return e
}

// redirects runs the route's canonical host, rewrites and return, and
// reports whether it answered the request. An internal rewrite leaves the
// new upstream path and query in ex.
func (rs *routeState) redirects(ex *exchange, r *http.Request) bool {
	e := rs.edits
	if e == nil {
		return false
	}
	if e.broken != nil {
		writeError(ex, http.StatusServiceUnavailable)
		return true
	}
	if e.canonical != "" {
		if host := requestHost(r); host != e.canonical {
			scheme := "http"
			if rs.h.secure(r, ex.trusted) || rs.route.TLSAuto() && rs.route.Redirect {
				scheme = "https"
			}
			rs.redirect(ex, http.StatusMovedPermanently, scheme+"://"+e.canonical+r.URL.RequestURI())
			return true
		}
	}
	if len(e.rules) == 0 && e.retCode == 0 {
		return false
	}
	v := &vars{h: rs.h, ex: ex, r: r, uri: r.URL.EscapedPath()}
	query, rewritten := r.URL.RawQuery, false
	v.args = &query
	for _, rule := range e.rules {
		m := rule.re.FindStringSubmatchIndex(v.uri)
		if m == nil {
			continue
		}
		v.subject, v.sub = v.uri, m
		repl := string(rule.repl.Expand(nil, v.value))
		v.sub = nil
		if rule.code != 0 {
			rs.redirect(ex, rule.code, withArgs(repl, query))
			return true
		}
		p, q, hasQuery := strings.Cut(withArgs(repl, query), "?")
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		c, _, ok := canonicalPath(p)
		if !ok {
			writeError(ex, http.StatusBadRequest)
			return true
		}
		v.uri, rewritten = c, true
		if hasQuery || strings.HasSuffix(repl, "?") {
			query = q
		}
		if rule.last {
			break
		}
	}
	if e.retCode != 0 {
		rs.redirect(ex, e.retCode, string(e.ret.Expand(nil, v.value)))
		return true
	}
	if rewritten {
		ex.rewritten, ex.upstreamPath, ex.upstreamQuery = true, v.uri, query
	}
	return false
}

// withArgs applies Nginx's rule for a rewrite's query: a replacement that
// ends with '?' drops the request's query; one with a query of its own gets
// the request's appended after '&'; otherwise the request's is kept.
func withArgs(repl, query string) string {
	if s, ok := strings.CutSuffix(repl, "?"); ok {
		return s
	}
	if query == "" {
		return repl
	}
	if strings.Contains(repl, "?") {
		return repl + "&" + query
	}
	return repl + "?" + query
}

// redirect answers with code and Location loc, and the route's response
// headers (Nginx's add_header applies to redirects too). A relative loc
// that would read as another host (//evil.example) keeps one slash.
func (rs *routeState) redirect(ex *exchange, code int, loc string) {
	if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
		loc = "/" + strings.TrimLeft(loc, "/\\")
	}
	h := ex.Header()
	rs.setHeaders(h)
	h.Set("Location", loc)
	ex.WriteHeader(code)
}

// requestHost is the request's host, lower case, without port.
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// vars gives the values of template variables for one request.
type vars struct {
	h       *Handler
	ex      *exchange
	r       *http.Request
	uri     string  // $uri: the path after the rewrites so far
	args    *string // $args, as the rewrites so far left it; nil: the request's
	subject string  // what the captures index
	sub     []int   // the captures of the rewrite being expanded
}

func (v *vars) value(x route.Var) string {
	switch x {
	case route.VarRemoteAddr:
		a := v.h.clientIP(v.r, v.ex)
		if !a.IsValid() {
			a = v.ex.peer
		}
		return a.String()
	case route.VarScheme:
		if v.h.secure(v.r, v.ex.trusted) {
			return "https"
		}
		return "http"
	case route.VarHost:
		return requestHost(v.r)
	case route.VarRequestID:
		return v.ex.requestID
	case route.VarRequestURI:
		return v.r.URL.RequestURI()
	case route.VarURI:
		return v.uri
	case route.VarArgs:
		if v.args != nil {
			return *v.args
		}
		return v.r.URL.RawQuery
	}
	if n := int(x-route.VarCapture1) + 1; x >= route.VarCapture1 && 2*n+1 < len(v.sub) && v.sub[2*n] >= 0 {
		return v.subject[v.sub[2*n]:v.sub[2*n+1]]
	}
	return ""
}
