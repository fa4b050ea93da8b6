package proxy

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The explain stages of rewrite.go, reqheaders.go and compress.go
// (explain.go's Stages). The redirects and rewrites are explained by
// running them: the same code on a request built from the URL, so the
// explanation cannot drift from what the proxy does.

// explainRedirects runs the route's canonical_host, rewrites and return on
// q. It returns the redirect's status and Location (code 0: none), and the
// upstream path and query an internal rewrite set (rewritten false: none).
func explainRedirects(r *route.Route, q explainReq) (code int, loc string, path, query string, rewritten bool) {
	e := prepareEdits(r)
	if e == nil {
		return 0, "", "", "", false
	}
	rs := &routeState{h: &Handler{}, route: r, edits: e}
	for _, h := range r.Headers {
		rs.headers = append(rs.headers, []string{h.Value})
	}
	req := &http.Request{Method: http.MethodGet, Host: q.host, URL: &url.URL{RawQuery: q.query}, Header: http.Header{},
		RemoteAddr: "192.0.2.1:1234", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	setPath(req.URL, q.path)
	if q.scheme == "https" {
		req.TLS = &tls.ConnectionState{}
	}
	w := &explainWriter{header: http.Header{}}
	ex := &exchange{ResponseWriter: w, requestID: "$request_id"}
	if rs.redirects(ex, req) {
		if w.code == http.StatusServiceUnavailable {
			return w.code, "", "", "", false
		}
		return w.code, w.header.Get("Location"), "", "", false
	}
	return 0, "", ex.upstreamPath, ex.upstreamQuery, ex.rewritten
}

// explainWriter records what redirects answers.
type explainWriter struct {
	header http.Header
	code   int
}

func (w *explainWriter) Header() http.Header         { return w.header }
func (w *explainWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *explainWriter) WriteHeader(code int)        { w.code = code }

func explainRewriteStage(r *route.Route, q explainReq) (string, bool) {
	code, loc, path, query, rewritten := explainRedirects(r, q)
	switch {
	case code == http.StatusServiceUnavailable:
		return "503: the route's rewrites cannot be compiled", true
	case code != 0:
		return fmt.Sprintf("%d to %s", code, loc), true
	case rewritten:
		if query != "" {
			path += "?" + query
		}
		return "internal rewrite: the upstream gets " + path + " (strip_prefix does not apply)", false
	}
	return "", false
}

// upstreamTarget is the path and query the upstream gets for q: an
// internal rewrite's, else the request's after strip_prefix (forward stage).
func upstreamTarget(r *route.Route, q explainReq) string {
	if _, _, path, query, ok := explainRedirects(r, q); ok {
		if query != "" {
			path += "?" + query
		}
		return path
	}
	p := q.path
	if r.StripPrefix && r.Path != "/" {
		if n, ok := route.PrefixLen(p, r.Path); ok {
			p = p[n:]
			if p == "" || p[0] != '/' {
				p = "/" + p
			}
		}
	}
	if q.query != "" {
		p += "?" + q.query
	}
	return p
}

func explainRequestHeaders(r *route.Route, _ explainReq) (string, bool) {
	var parts []string
	if len(r.RequestHeadersRemove) > 0 {
		parts = append(parts, "removes "+strings.Join(r.RequestHeadersRemove, ", "))
	}
	for _, set := range []struct {
		verb string
		hs   []route.Header
	}{{"sets", r.RequestHeaders}, {"adds", r.RequestHeadersAdd}} {
		if len(set.hs) == 0 {
			continue
		}
		names := make([]string, len(set.hs))
		for i, h := range set.hs {
			names[i] = h.Name + ": " + h.Value
		}
		parts = append(parts, set.verb+" "+strings.Join(names, ", "))
	}
	if len(parts) == 0 {
		return "", false
	}
	return strings.Join(parts, "; ") + " (towards the upstream)", false
}

func explainResponseEdits(r *route.Route, _ explainReq) (string, bool) {
	var parts []string
	if len(r.ResponseHeadersRemove) > 0 {
		parts = append(parts, "removes "+strings.Join(r.ResponseHeadersRemove, ", ")+" from the upstream's response")
	}
	if c := r.Compress; len(c.Encodings) > 0 && !r.Stream {
		parts = append(parts, fmt.Sprintf("compresses (%s) %s from %d bytes, for clients that accept it",
			strings.Join(c.Encodings, " or "), strings.Join(c.Types, ", "), c.MinSize))
	}
	return strings.Join(parts, "; "), false
}
