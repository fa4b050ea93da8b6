package route

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The route fields that replace Nginx's rewrite module, proxy_set_header,
// proxy_hide_header and gzip (docs/labels.md, "Redirects and rewrites",
// "Request headers" and "Compression"). They hold plain values, so that a
// route crosses the control channel as JSON; the proxy compiles the regular
// expressions and templates when it prepares a table (on every edge).

// Return is the `return` label: every request of the route is answered with
// Code and a Location expanded from URL (a Template). The zero Return is
// none.
type Return struct {
	Code int    // 301, 302, 303, 307 or 308
	URL  string // template, e.g. "https://example.com$request_uri"
}

// Rewrite is one `rewrite` label: when Regex (RE2) matches the path, the
// path becomes Replacement (a Template that may use the captures $1..$9).
type Rewrite struct {
	Regex       string
	Replacement string
	// Code is the status of a redirect (301 for the flag permanent, 302 for
	// redirect or for a replacement that starts with http:// or https://,
	// or a status given as the flag); 0 for an internal rewrite of the
	// upstream path.
	Code int
	// Last stops the rewrites after this one when it matches (the flags
	// last and break); a redirect always stops them.
	Last bool
}

// Compression is the `compress` label group. The zero Compression is off.
type Compression struct {
	Encodings []string // EncodingZstd and/or EncodingGzip; preferred first when a client accepts both equally
	Types     []string // media types, lower case; "text/*" matches a whole top-level type
	MinSize   int64    // bytes; a shorter response is sent as it is
}

// Content encodings of `compress`.
const (
	EncodingGzip = "gzip"
	EncodingZstd = "zstd"
)

// The defaults of `compress.types` and `compress.min_size`.
var DefaultCompressTypes = []string{
	"application/atom+xml", "application/javascript", "application/json", "application/ld+json",
	"application/manifest+json", "application/problem+json", "application/rss+xml", "application/wasm",
	"application/xhtml+xml", "application/xml", "image/svg+xml", "text/css", "text/csv", "text/html",
	"text/javascript", "text/markdown", "text/plain", "text/xml",
}

const (
	DefaultCompressMinSize = 1000    // 1KB
	MaxCompressMinSize     = 1 << 20 // what may be held back while a response of unknown length is measured
)

// Var is a variable of a Template.
type Var uint8

// The variables of templates. $1..$9 are the captures of a rewrite's regex.
const (
	VarNone       Var = iota
	VarRemoteAddr     // $remote_addr: the client address (X-Forwarded-For resolved through the trusted proxies)
	VarScheme         // $scheme: http or https as the client used it (a trusted proxy's X-Forwarded-Proto)
	VarHost           // $host: the request's host, without port
	VarRequestID      // $request_id: the X-Request-ID of the request
	VarRequestURI     // $request_uri: the path (canonical) and query as requested
	VarURI            // $uri: the path, after the rewrites so far
	VarArgs           // $args: the query without '?'
	VarCapture1       // $1; $2..$9 follow
)

var varNames = map[string]Var{
	"remote_addr": VarRemoteAddr, "scheme": VarScheme, "host": VarHost, "request_id": VarRequestID,
	"request_uri": VarRequestURI, "uri": VarURI, "args": VarArgs,
}

// TemplateVars lists the variable names for error messages.
const TemplateVars = "$remote_addr, $scheme, $host, $request_id, $request_uri, $uri, $args"

// Template is a value with Nginx-style variables: $name or ${name}. A '$'
// that no name follows is literal.
type Template struct {
	parts []tmplPart
}

type tmplPart struct {
	lit string
	v   Var // VarNone: lit
}

// ParseTemplate parses s. With captures, $1..$9 are accepted (up to
// maxCapture, the regex's number of groups); else they are an error.
func ParseTemplate(s string, captures bool, maxCapture int) (Template, error) {
	var t Template
	lit := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			continue
		}
		j, name, braced := i+1, "", false
		if s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				return Template{}, fmt.Errorf("%q: ${ without }", s)
			}
			name, braced = s[j+1:j+end], true
			j += end + 1
		} else if '1' <= s[j] && s[j] <= '9' {
			name = s[j : j+1] // $10 is $1 then 0, as in Nginx
			j++
		} else {
			for j < len(s) && (s[j] == '_' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
				j++
			}
			name = s[i+1 : j]
		}
		if name == "" && !braced {
			continue // a lone '$'
		}
		v, err := lookupVar(name, captures, maxCapture)
		if err != nil {
			return Template{}, err
		}
		if lit < i {
			t.parts = append(t.parts, tmplPart{lit: s[lit:i]})
		}
		t.parts = append(t.parts, tmplPart{v: v})
		lit = j
		i = j - 1
	}
	if lit < len(s) {
		t.parts = append(t.parts, tmplPart{lit: s[lit:]})
	}
	return t, nil
}

func lookupVar(name string, captures bool, maxCapture int) (Var, error) {
	if len(name) == 1 && '1' <= name[0] && name[0] <= '9' {
		n := int(name[0] - '0')
		switch {
		case !captures:
			return 0, fmt.Errorf("$%s: captures are only available in a rewrite's replacement", name)
		case n > maxCapture:
			return 0, fmt.Errorf("$%s: the regex has %d capture group(s)", name, maxCapture)
		}
		return VarCapture1 + Var(n-1), nil
	}
	if v, ok := varNames[name]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("unknown variable $%s (known: %s; in a stack file write $ as $$)", name, TemplateVars)
}

// Literal reports whether the template has no variable, and its text.
func (t Template) Literal() (string, bool) {
	switch {
	case len(t.parts) == 0:
		return "", true
	case len(t.parts) == 1 && t.parts[0].v == VarNone:
		return t.parts[0].lit, true
	}
	return "", false
}

// Uses reports whether the template uses v.
func (t Template) Uses(v Var) bool {
	for _, p := range t.parts {
		if p.v == v {
			return true
		}
	}
	return false
}

// Expand appends the template's text to dst, each variable replaced by
// value(v).
func (t Template) Expand(dst []byte, value func(Var) string) []byte {
	for _, p := range t.parts {
		if p.v == VarNone {
			dst = append(dst, p.lit...)
		} else {
			dst = append(dst, value(p.v)...)
		}
	}
	return dst
}

// StartsWithScheme reports whether a rewrite replacement is a redirect by
// its form, as in Nginx: it starts with http://, https:// or $scheme.
func StartsWithScheme(replacement string) bool {
	r := strings.ToLower(replacement)
	return strings.HasPrefix(r, "http://") || strings.HasPrefix(r, "https://") ||
		strings.HasPrefix(replacement, "$scheme") || strings.HasPrefix(replacement, "${scheme}")
}

// RewriteView is the part of RouteView (GET /api/routes) that shows the
// redirect, rewrite, request header and compression keys; each field is
// left out when its key is not set.
type RewriteView struct {
	Return                string            `json:"return,omitempty"` // "301 https://example.com$request_uri"
	CanonicalHost         string            `json:"canonical_host,omitempty"`
	Rewrites              []RewriteRuleView `json:"rewrites,omitempty"`
	RequestHeaders        []HeaderView      `json:"request_headers,omitempty"`
	RequestHeadersAdd     []HeaderView      `json:"request_headers_add,omitempty"`
	RequestHeadersRemove  []string          `json:"request_headers_remove,omitempty"`
	ResponseHeadersRemove []string          `json:"response_headers_remove,omitempty"`
	Compress              *CompressView     `json:"compress,omitempty"`
}

// RewriteRuleView is one rewrite in the API: status 0 is an internal
// rewrite.
type RewriteRuleView struct {
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
	Status      int    `json:"status"`
	Last        bool   `json:"last"`
}

// HeaderView is a header and its value (a template) in the API.
type HeaderView struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CompressView is a route's compression in the API.
type CompressView struct {
	Encodings []string `json:"encodings"`
	Types     []string `json:"types"`
	MinSize   int64    `json:"min_size"`
}

func (r *Route) rewriteView() RewriteView {
	v := RewriteView{
		CanonicalHost:         r.CanonicalHost,
		RequestHeadersRemove:  slices.Clone(r.RequestHeadersRemove),
		ResponseHeadersRemove: slices.Clone(r.ResponseHeadersRemove),
	}
	if r.Return.Code != 0 {
		v.Return = strconv.Itoa(r.Return.Code) + " " + r.Return.URL
	}
	for _, rw := range r.Rewrites {
		v.Rewrites = append(v.Rewrites, RewriteRuleView{Regex: rw.Regex, Replacement: rw.Replacement, Status: rw.Code, Last: rw.Last})
	}
	for _, h := range r.RequestHeaders {
		v.RequestHeaders = append(v.RequestHeaders, HeaderView{Name: h.Name, Value: h.Value})
	}
	for _, h := range r.RequestHeadersAdd {
		v.RequestHeadersAdd = append(v.RequestHeadersAdd, HeaderView{Name: h.Name, Value: h.Value})
	}
	if c := r.Compress; len(c.Encodings) > 0 {
		v.Compress = &CompressView{Encodings: slices.Clone(c.Encodings), Types: slices.Clone(c.Types), MinSize: c.MinSize}
	}
	return v
}
