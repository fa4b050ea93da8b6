package discovery

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// renderRewrite writes the redirect, rewrite, request header and
// compression fields of r for the golden files (renderSpecs).
func renderRewrite(b *bytes.Buffer, r route.Route) {
	if r.Return.Code != 0 {
		fmt.Fprintf(b, "  return: %d %s\n", r.Return.Code, r.Return.URL)
	}
	if r.CanonicalHost != "" {
		fmt.Fprintf(b, "  canonical_host: %s\n", r.CanonicalHost)
	}
	for _, rw := range r.Rewrites {
		fmt.Fprintf(b, "  rewrite: %s -> %s  code: %d  last: %t\n", rw.Regex, rw.Replacement, rw.Code, rw.Last)
	}
	for _, h := range r.RequestHeaders {
		fmt.Fprintf(b, "  request_header set: %s: %q\n", h.Name, h.Value)
	}
	for _, h := range r.RequestHeadersAdd {
		fmt.Fprintf(b, "  request_header add: %s: %q\n", h.Name, h.Value)
	}
	if len(r.RequestHeadersRemove) > 0 {
		fmt.Fprintf(b, "  request_headers_remove: %s\n", strings.Join(r.RequestHeadersRemove, ","))
	}
	if len(r.ResponseHeadersRemove) > 0 {
		fmt.Fprintf(b, "  response_headers_remove: %s\n", strings.Join(r.ResponseHeadersRemove, ","))
	}
	if c := r.Compress; len(c.Encodings) > 0 {
		fmt.Fprintf(b, "  compress: %s  min_size: %d  types: %s\n", strings.Join(c.Encodings, ","), c.MinSize, strings.Join(c.Types, ","))
	}
}

// checkRewriteSpec fails unless the redirect, rewrite, request header and
// compression fields of r hold values the proxy can use (FuzzParseLabels).
func checkRewriteSpec(t *testing.T, r route.Route) {
	t.Helper()
	if c := r.Return.Code; c != 0 {
		if _, ok := redirectCodes[strconv.Itoa(c)]; !ok || r.Return.URL == "" || strings.ContainsAny(r.Return.URL, " \r\n") {
			t.Fatalf("return %+v", r.Return)
		}
		if _, err := route.ParseTemplate(r.Return.URL, false, 0); err != nil {
			t.Fatalf("return %q: %v", r.Return.URL, err)
		}
	}
	if r.CanonicalHost != "" {
		if h, err := parseHost(r.CanonicalHost); err != nil || h != r.CanonicalHost || strings.HasPrefix(h, "*.") {
			t.Fatalf("canonical_host %q: %v", r.CanonicalHost, err)
		}
	}
	for _, rw := range r.Rewrites {
		re, err := regexp.Compile(rw.Regex)
		if err != nil {
			t.Fatalf("rewrite %q: %v", rw.Regex, err)
		}
		if _, err := route.ParseTemplate(rw.Replacement, true, re.NumSubexp()); err != nil || strings.ContainsAny(rw.Replacement, "\r\n") {
			t.Fatalf("rewrite replacement %q: %v", rw.Replacement, err)
		}
		if _, ok := redirectCodes[strconv.Itoa(rw.Code)]; rw.Code != 0 && (!ok || rw.Last) {
			t.Fatalf("rewrite %+v", rw)
		}
	}
	for _, hs := range [][]route.Header{r.RequestHeaders, r.RequestHeadersAdd} {
		for i, h := range hs {
			if i > 0 && hs[i-1].Name >= h.Name || h.Name != http.CanonicalHeaderKey(h.Name) || !httpguts.ValidHeaderFieldValue(h.Value) {
				t.Fatalf("request header %q: %q (sorted, unique, canonical, no control characters)", h.Name, h.Value)
			}
			if _, err := route.ParseTemplate(h.Value, false, 0); err != nil {
				t.Fatalf("request header %s: %v", h.Name, err)
			}
		}
	}
	for _, names := range [][]string{r.RequestHeadersRemove, r.ResponseHeadersRemove} {
		for i, n := range names {
			if i > 0 && names[i-1] >= n || n != http.CanonicalHeaderKey(n) || slices.Contains(hopHeaders, n) {
				t.Fatalf("header list %q", names)
			}
		}
	}
	c := r.Compress
	if len(c.Encodings) == 0 {
		if len(c.Types) != 0 || c.MinSize != 0 {
			t.Fatalf("compression off but %+v", c)
		}
		return
	}
	if len(c.Types) == 0 || c.MinSize <= 0 || c.MinSize > route.MaxCompressMinSize || slices.Contains(c.Types, "text/event-stream") {
		t.Fatalf("compress %+v", c)
	}
	for _, e := range c.Encodings {
		if e != route.EncodingGzip && e != route.EncodingZstd {
			t.Fatalf("encoding %q", e)
		}
	}
}

// TestRewriteLabelsRejectLineBreaks covers values a golden file cannot
// hold: a line break in any templated value keeps the route out.
func TestRewriteLabelsRejectLineBreaks(t *testing.T) {
	for _, kv := range [][2]string{
		{"return", "301 https://a.example.com/\r\nSet-Cookie:x"},
		{"rewrite", "^/a$ /b\x7f redirect"},
		{"rewrite", "^/a$ /b\x00 redirect"},
		{"request_headers.X-A", "a\r\nX-B: 1"},
		{"request_headers_add.X-A", "a\nb"},
	} {
		specs, errs := ParseLabels("ingress.", map[string]string{"ingress.host": "example.com", "ingress." + kv[0]: kv[1]})
		if len(specs) != 0 || len(errs) != 1 || errs[0].Label != "ingress."+kv[0] {
			t.Errorf("%s=%q: specs %+v errors %+v, want no route and one error", kv[0], kv[1], specs, errs)
		}
	}
}

// TestRewriteKeysInRoutesFile: the routes file takes the same keys (its
// labels go through ParseLabels), from the YAML to the built route.
func TestRewriteKeysInRoutesFile(t *testing.T) {
	const file = `services:
  - name: legacy
    upstreams: ["192.0.2.10:8080"]
    labels:
      ingress.host: example.com,www.example.com
      ingress.canonical_host: example.com
      ingress.rewrite: ^/old/(.*)$ /new/$1 permanent
      ingress.request_headers.X-Real-IP: $remote_addr
      ingress.response_headers_remove: Server
      ingress.compress: gzip
  - name: bad
    upstreams: ["192.0.2.11:8080"]
    labels:
      ingress.host: bad.example.com
      ingress.rewrite: ^/(a $1
`
	entries, err := ParseRoutesFile(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var static []StaticService
	for _, e := range entries {
		ups := make([]netip.AddrPort, 0, len(e.Upstreams))
		for _, u := range e.Upstreams {
			ups = append(ups, netip.MustParseAddrPort(u))
		}
		static = append(static, StaticService{Name: e.Name, Upstreams: ups, Labels: e.Labels})
	}
	routes, errs := Build(Input{LabelPrefix: "ingress.", Static: static})
	if len(routes) != 1 || len(errs) != 1 || errs[0].Service != "bad" || errs[0].Label != "ingress.rewrite" {
		t.Fatalf("routes %d, errors %+v: want legacy only, and the error of bad's rewrite", len(routes), errs)
	}
	r := routes[0]
	if r.CanonicalHost != "example.com" || len(r.Rewrites) != 1 || r.Rewrites[0].Code != 301 ||
		len(r.RequestHeaders) != 1 || r.RequestHeaders[0].Name != "X-Real-Ip" || !slices.Equal(r.ResponseHeadersRemove, []string{"Server"}) ||
		!slices.Equal(r.Compress.Encodings, []string{"gzip"}) || r.Compress.MinSize != route.DefaultCompressMinSize {
		t.Fatalf("route %+v", r)
	}
}
