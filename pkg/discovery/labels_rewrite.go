package discovery

import (
	"cmp"
	"errors"
	"fmt"
	"mime"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The keys of redirects, rewrites, request and response header edits and
// compression (docs/labels.md, "Redirects and rewrites", "Request headers",
// "Compression"): return, canonical_host, rewrite and rewrite.<N>,
// request_headers.<Name>, request_headers_add.<Name>,
// request_headers_remove, response_headers_remove, compress,
// compress.types, compress.min_size.

const (
	requestHeadersPart    = "request_headers."
	requestHeadersAddPart = "request_headers_add."
	rewritePart           = "rewrite."
)

// rewriteKeys is appended to knownKeys in unknown-key errors.
const rewriteKeys = "return, canonical_host, rewrite, rewrite.<N>, request_headers.<Name>, request_headers_add.<Name>, request_headers_remove, response_headers_remove, compress, compress.types, compress.min_size"

// normalizeRewriteKey canonicalises the header name of a request header key
// (so that a route's value overrides a default of the same header whatever
// its case) and the number of rewrite.<N> (rewrite.02 is rewrite.2).
func normalizeRewriteKey(key string) (string, bool) {
	for _, part := range []string{requestHeadersPart, requestHeadersAddPart} {
		if name, ok := strings.CutPrefix(key, part); ok && name != "" {
			return part + textproto.CanonicalMIMEHeaderKey(name), true
		}
	}
	if n, ok := strings.CutPrefix(key, rewritePart); ok {
		if i, err := strconv.ParseUint(n, 10, 16); err == nil && i > 0 {
			return rewritePart + strconv.FormatUint(i, 10), true
		}
	}
	return key, false
}

// applyRewriteLabel parses one of the keys above into s; handled is false
// for any other key.
func applyRewriteLabel(s *Spec, key, v string) (handled bool, err error) {
	r := &s.Route
	switch key {
	case "return":
		r.Return, err = parseReturn(v)
	case "canonical_host":
		r.CanonicalHost, err = parseHost(v)
		if err == nil && strings.HasPrefix(r.CanonicalHost, "*.") {
			err = fmt.Errorf("host %q: the canonical host cannot be a wildcard", v)
		}
	case "rewrite":
		err = addRewrite(s, 0, v)
	case "request_headers_remove":
		r.RequestHeadersRemove, err = requestHeadersRemove.parse(v)
	case "response_headers_remove":
		r.ResponseHeadersRemove, err = responseHeadersRemove.parse(v)
	case "compress":
		r.Compress.Encodings, err = parseCompress(v)
	case "compress.types":
		r.Compress.Types, err = parseMediaTypes(v)
	case "compress.min_size":
		digits := strings.TrimRightFunc(v, func(c rune) bool { return c < '0' || c > '9' })
		if digits != "" && strings.Trim(digits, "0") == "" {
			return true, fmt.Errorf("%q: the size must be more than 0 (leave compress.min_size out for the default, 1KB)", v)
		}
		r.Compress.MinSize, err = parseSize(v)
		if err == nil && r.Compress.MinSize > route.MaxCompressMinSize {
			err = fmt.Errorf("%q is more than 1MiB, the most a response of unknown length may be held back to measure it", v)
		}
	default:
		if n, ok := strings.CutPrefix(key, rewritePart); ok {
			i, perr := strconv.ParseUint(n, 10, 16)
			if perr != nil || i == 0 {
				return true, fmt.Errorf("rewrite.%s: the rewrites are numbered rewrite.1, rewrite.2, ... (applied in that order, after rewrite)", n)
			}
			return true, addRewrite(s, int(i), v)
		}
		if name, ok := strings.CutPrefix(key, requestHeadersPart); ok {
			var h route.Header
			h, err = parseRequestHeader(name, v, true)
			r.RequestHeaders = append(r.RequestHeaders, h)
			return true, err
		}
		if name, ok := strings.CutPrefix(key, requestHeadersAddPart); ok {
			var h route.Header
			h, err = parseRequestHeader(name, v, false)
			r.RequestHeadersAdd = append(r.RequestHeadersAdd, h)
			return true, err
		}
		return false, nil
	}
	return true, err
}

// finishRewriteSpec runs once every key of a valid route is applied: the
// rewrites in their numbers' order, request headers sorted by name, and
// the compression defaults (compress.types and compress.min_size alone,
// e.g. as top-level defaults, turn nothing on).
func finishRewriteSpec(s *Spec) {
	r := &s.Route
	if len(r.Rewrites) > 1 {
		idx := make([]int, len(r.Rewrites))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(s.rewriteOrder[a], s.rewriteOrder[b]) })
		sorted := make([]route.Rewrite, len(idx))
		for i, j := range idx {
			sorted[i] = r.Rewrites[j]
		}
		r.Rewrites = sorted
	}
	s.rewriteOrder = nil
	byName := func(a, b route.Header) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(r.RequestHeaders, byName)
	slices.SortFunc(r.RequestHeadersAdd, byName)
	if len(r.Compress.Encodings) == 0 {
		r.Compress = route.Compression{}
		return
	}
	if r.Compress.Types == nil {
		r.Compress.Types = slices.Clone(route.DefaultCompressTypes)
	}
	if r.Compress.MinSize == 0 {
		r.Compress.MinSize = route.DefaultCompressMinSize
	}
}

var redirectCodes = map[string]int{"301": 301, "302": 302, "303": 303, "307": 307, "308": 308}

// parseReturn parses "<code> <url-template>".
func parseReturn(v string) (route.Return, error) {
	fields := strings.Fields(v)
	if len(fields) != 2 {
		return route.Return{}, fmt.Errorf("%q: write <code> <url>, e.g. 301 https://example.com$request_uri", v)
	}
	code, ok := redirectCodes[fields[0]]
	if !ok {
		return route.Return{}, fmt.Errorf("%q: the status must be 301, 302, 303, 307 or 308", fields[0])
	}
	if _, err := route.ParseTemplate(fields[1], false, 0); err != nil {
		return route.Return{}, err
	}
	if !httpguts.ValidHeaderFieldValue(fields[1]) {
		return route.Return{}, fmt.Errorf("%q holds a control character", fields[1])
	}
	return route.Return{Code: code, URL: fields[1]}, nil
}

// addRewrite parses "<regex> <replacement> [flag]" (Nginx's rewrite
// directive) and appends it to the route, numbered n.
func addRewrite(s *Spec, n int, v string) error {
	fields := strings.Fields(v)
	if len(fields) < 2 || len(fields) > 3 {
		return fmt.Errorf("%q: write <regex> <replacement> [permanent|redirect|last|break|301|302|303|307|308], e.g. ^/old/(.*)$ /new/$1 permanent", v)
	}
	re, err := regexp.Compile(fields[0])
	if err != nil {
		return fmt.Errorf("%v (RE2 syntax: no lookaround, no backreferences)", err)
	}
	rw := route.Rewrite{Regex: fields[0], Replacement: fields[1]}
	if _, err := route.ParseTemplate(rw.Replacement, true, re.NumSubexp()); err != nil {
		return err
	}
	if !httpguts.ValidHeaderFieldValue(rw.Replacement) {
		return fmt.Errorf("%q holds a control character", rw.Replacement)
	}
	if len(fields) == 3 {
		switch f := fields[2]; f {
		case "permanent":
			rw.Code = 301
		case "redirect":
			rw.Code = 302
		case "last", "break":
			rw.Last = true
		default:
			code, ok := redirectCodes[f]
			if !ok {
				return fmt.Errorf("flag %q is not one of permanent, redirect, last, break, 301, 302, 303, 307, 308", f)
			}
			rw.Code = code
		}
	}
	if rw.Code == 0 && route.StartsWithScheme(rw.Replacement) {
		rw.Code, rw.Last = 302, false // a URL is a redirect, as in Nginx
	}
	if rw.Code == 0 && !strings.HasPrefix(rw.Replacement, "/") && !strings.HasPrefix(rw.Replacement, "$") {
		return fmt.Errorf("%q: an internal rewrite's replacement is a path starting with / (or a redirect: a URL, or a flag permanent, redirect or a status)", rw.Replacement)
	}
	if rw.Code != 0 {
		rw.Last = false
	}
	s.Route.Rewrites = append(s.Route.Rewrites, rw)
	s.rewriteOrder = append(s.rewriteOrder, n)
	return nil
}

// parseRequestHeader parses request_headers.<Name> (set, which may name
// Host) or request_headers_add.<Name>; the value is a template.
func parseRequestHeader(name, value string, set bool) (route.Header, error) {
	if name == "" {
		return route.Header{}, errors.New("no header name: write request_headers.<Name>, e.g. request_headers.X-Real-IP")
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return route.Header{}, fmt.Errorf("%q is not a valid header name", name)
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if slices.Contains(hopHeaders, name) || name == "Host" && !set {
		return route.Header{}, fmt.Errorf("header %s cannot be set by a route", name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return route.Header{}, fmt.Errorf("the value of header %s holds a line break or control character", name)
	}
	if _, err := route.ParseTemplate(value, false, 0); err != nil {
		return route.Header{}, fmt.Errorf("header %s: %w", name, err)
	}
	return route.Header{Name: name, Value: value}, nil
}

// headerList is a label holding a comma list of header names. parse
// returns them canonical, sorted and without duplicates; the connection's
// own (hop-by-hop) headers and those refuse names are errors.
type headerList struct {
	use     string // what the route does with them, for errors: "removed by a route"
	example string // a valid value, for the error on an empty list
	refuse  func(name string) bool
}

func (l headerList) parse(v string) ([]string, error) {
	var names []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !httpguts.ValidHeaderFieldName(item) {
			return nil, fmt.Errorf("%q is not a valid header name", item)
		}
		name := textproto.CanonicalMIMEHeaderKey(item)
		if slices.Contains(hopHeaders, name) || l.refuse != nil && l.refuse(name) {
			return nil, fmt.Errorf("header %s cannot be %s", name, l.use)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no header given: list header names, e.g. %s", l.example)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// The header lists of request_headers_remove (Host is the route's own) and
// response_headers_remove.
var (
	requestHeadersRemove  = headerList{use: "removed by a route", example: "Server,X-Powered-By", refuse: func(name string) bool { return name == "Host" }}
	responseHeadersRemove = headerList{use: "removed by a route", example: "Server,X-Powered-By"}
)

// parseCompress parses compress: true, false, gzip, zstd or both (in any
// order). The result is in the order of preference: zstd first.
func parseCompress(v string) ([]string, error) {
	switch strings.ToLower(v) {
	case "true":
		return []string{route.EncodingZstd, route.EncodingGzip}, nil
	case "false":
		return nil, nil
	}
	var gzip, zstd bool
	for item := range strings.SplitSeq(v, ",") {
		switch strings.ToLower(strings.TrimSpace(item)) {
		case route.EncodingGzip:
			gzip = true
		case route.EncodingZstd:
			zstd = true
		case "":
		default:
			return nil, fmt.Errorf("%q is not true, false, gzip, zstd or gzip,zstd", v)
		}
	}
	var out []string
	if zstd {
		out = append(out, route.EncodingZstd)
	}
	if gzip {
		out = append(out, route.EncodingGzip)
	}
	if out == nil {
		return nil, fmt.Errorf("%q is not true, false, gzip, zstd or gzip,zstd", v)
	}
	return out, nil
}

// parseMediaTypes parses compress.types: media types (type/subtype, or
// type/* for a whole top-level type), lower case, sorted, unique.
// text/event-stream is never compressed and may not be listed.
func parseMediaTypes(v string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		typ, sub, ok := strings.Cut(item, "/")
		if !ok || typ == "" || sub == "" || typ == "*" || strings.Contains(sub, "/") {
			return nil, fmt.Errorf("%q is not a media type (e.g. application/json, or text/* for every text type)", item)
		}
		if sub != "*" {
			if mt, _, err := mime.ParseMediaType(item); err != nil || mt != item {
				return nil, fmt.Errorf("%q is not a media type (e.g. application/json, or text/* for every text type)", item)
			}
		} else if _, _, err := mime.ParseMediaType(typ + "/x"); err != nil {
			return nil, fmt.Errorf("%q is not a media type (e.g. application/json, or text/* for every text type)", item)
		}
		if item == "text/event-stream" {
			return nil, errors.New("text/event-stream is a stream and is never compressed; leave it out")
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		return nil, errors.New("no media type given: list types, e.g. text/html,application/json")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
