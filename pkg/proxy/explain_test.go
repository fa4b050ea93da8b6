package proxy

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

var updateExplain = flag.Bool("update", false, "rewrite testdata/explain/*.golden")

// explainTable is the fixture: an HTTPS site, an API with a losing older
// route, a blocked admin path, a wildcard, a split, a maintenance route.
func explainTable() *route.Table {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	return route.New(route.Snapshot{Routes: []*route.Route{
		{Service: "web", Name: "default", Hosts: []string{"example.com", "www.example.com"}, Path: "/", Port: 80,
			TLS: route.TLSAuto, Redirect: true, Scheme: route.SchemeHTTP, Mode: route.ModeVIP,
			Upstreams: []netip.AddrPort{ap("10.0.1.5:80")},
			Headers:   []route.Header{{Name: "Strict-Transport-Security", Value: "max-age=63072000"}}},
		{Service: "api", Name: "default", Hosts: []string{"api.example.com"}, Path: "/v1", Port: 9000, StripPrefix: true,
			TLS: route.TLSOff, Scheme: route.SchemeHTTP, Mode: route.ModeTasks, Priority: 1, Created: t0.Add(time.Hour),
			Upstreams: []netip.AddrPort{ap("10.0.2.7:9000"), ap("10.0.2.8:9000")},
			Allow:     []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, MaxBody: 5_000_000,
			BasicAuth: []route.BasicUser{{User: "ops", Hash: []byte("x")}},
			Limit:     route.Limit{Rate: route.Rate{N: 10, Per: time.Second}, Burst: 5, Conn: 20},
			Timeout:   30 * time.Second},
		{Service: "api-old", Name: "default", Hosts: []string{"api.example.com"}, Path: "/v1", Port: 8080,
			TLS: route.TLSOff, Scheme: route.SchemeHTTP, Created: t0},
		{Service: "admin", Name: "default", Hosts: []string{"example.com"}, Path: "/admin", TLS: route.TLSAuto, Redirect: true,
			Blocked: "ingress.auth.basic: the hash of user \"ops\" is not a bcrypt hash"},
		{Service: "apps", Name: "default", Hosts: []string{"*.apps.example.com"}, Path: "/", Port: 8080, TLS: route.TLSOff,
			Scheme: route.SchemeH2C, Stream: true, Upstreams: []netip.AddrPort{ap("10.0.3.2:8080")}},
		{Service: "docs", Name: "default", Hosts: []string{"docs.example.com"}, Path: "/docs", TLS: route.TLSOff, Port: 80,
			Scheme: route.SchemeHTTP, Maintenance: true, ForwardAuth: route.ForwardAuth{URL: "http://auth:4180/check", Headers: []string{"X-User"}},
			ErrorPages: []route.ErrorPage{{Code: 503, Source: "/pages/503.html"}}},
		{Service: "blue", Name: "default", Hosts: []string{"shop.example.com"}, Path: "/", TLS: route.TLSOff, Port: 80,
			Scheme: route.SchemeHTTP, Weight: 90, Weighted: true, Created: t0, Upstreams: []netip.AddrPort{ap("10.0.4.1:80")}},
		{Service: "green", Name: "default", Hosts: []string{"shop.example.com"}, Path: "/", TLS: route.TLSOff, Port: 80,
			Scheme: route.SchemeHTTP, Weight: 10, Weighted: true, Created: t0.Add(time.Minute), Upstreams: []netip.AddrPort{ap("10.0.4.2:80")}},
		{Service: "store", Name: "default", Hosts: []string{"store.example.com", "www.store.example.com"}, Path: "/", Port: 8080,
			TLS: route.TLSOff, Scheme: route.SchemeHTTP, CanonicalHost: "store.example.com",
			Upstreams: []netip.AddrPort{ap("10.0.5.1:8080")},
			Rewrites: []route.Rewrite{
				{Regex: "^/catalogue/(.*)$", Replacement: "/products/$1", Code: 301},
				{Regex: "^/api/(.*)$", Replacement: "/v2/$1"},
				{Regex: "^/v2/old$", Replacement: "/v2/new?from=old", Last: true},
			},
			RequestHeaders:        []route.Header{{Name: "X-Site", Value: "store"}},
			RequestHeadersRemove:  []string{"Cookie"},
			ResponseHeadersRemove: []string{"X-Powered-By"},
			Compress:              route.Compression{Encodings: []string{"zstd", "gzip"}, Types: []string{"application/json", "text/html"}, MinSize: 1000}},
		{Service: "store", Name: "blog", Hosts: []string{"store.example.com"}, Path: "/blog", Port: 8080,
			TLS: route.TLSOff, Scheme: route.SchemeHTTP, Return: route.Return{Code: 302, URL: "http://blog.example.com$request_uri"}},
	}})
}

// TestExplainGolden explains each URL of testdata/explain/urls.txt against
// the fixture table and compares the text (explain.golden) and the JSON
// of GET /api/match (explain.json.golden). -update rewrites them.
func TestExplainGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "explain", "urls.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tab := explainTable()
	var text strings.Builder
	var all []*Explanation
	for _, u := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		e, err := Explain(tab, u)
		if err != nil {
			text.WriteString("URL      " + u + "\nerror    " + err.Error() + "\n\n")
			continue
		}
		e.WriteText(&text)
		text.WriteString("\n")
		all = append(all, e)
	}
	js, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"explain.golden": text.String(), "explain.json.golden": string(js) + "\n"} {
		file := filepath.Join("testdata", "explain", name)
		if *updateExplain {
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs (run with -update to accept):\n--- got:\n%s", file, got)
		}
	}
}

// TestExplainAgreesWithMatch: the route Explain names is the one the
// handler's table lookup picks, and a miss names none.
func TestExplainAgreesWithMatch(t *testing.T) {
	tab := explainTable()
	for _, u := range []string{"http://example.com/x", "http://EXAMPLE.com/ADMIN/y", "http://api.example.com/v1", "http://a.apps.example.com/",
		"http://b.a.apps.example.com/", "http://api.example.com/v2", "http://shop.example.com/cart"} {
		e, err := Explain(tab, u)
		if err != nil {
			t.Fatal(err)
		}
		want := tab.Match(e.Host, e.Path)
		switch {
		case want == nil && e.Match != nil:
			t.Errorf("%s: explain names %s, the table matches nothing", u, e.Match.Route)
		case want != nil && (e.Match == nil || e.Match.Route != want.ID()):
			t.Errorf("%s: explain names %+v, the table matches %s", u, e.Match, want.ID())
		case want == nil && len(e.Nearest) == 0:
			t.Errorf("%s: a miss lists no nearest route", u)
		}
	}
}
