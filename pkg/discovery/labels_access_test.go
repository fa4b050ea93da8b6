package discovery

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// renderAccess writes the access fields of a route for the label goldens.
func renderAccess(b *bytes.Buffer, r route.Route) {
	if r.Limit.Enabled() || r.Limit.Burst > 0 {
		fmt.Fprintf(b, "  limit: rate %q (every %s)  burst %d  conn %d\n", r.Limit.Rate, r.Limit.Rate.Interval(), r.Limit.Burst, r.Limit.Conn)
	}
	if r.BasicAuthFile != "" {
		fmt.Fprintf(b, "  auth.basic_file: %s\n", r.BasicAuthFile)
	}
	if r.ForwardAuth.URL != "" {
		fmt.Fprintf(b, "  auth.forward: %s  headers: %s\n", r.ForwardAuth.URL, strings.Join(r.ForwardAuth.Headers, ","))
	}
	for _, p := range r.ErrorPages {
		fmt.Fprintf(b, "  error_page: %d %s\n", p.Code, p.Source)
	}
	if r.Maintenance {
		fmt.Fprintf(b, "  maintenance: true\n")
	}
}

// checkAccessFields fails if a served route holds an access value its
// parser would not produce.
func checkAccessFields(t *testing.T, r route.Route) {
	t.Helper()
	l := r.Limit
	if l.Rate.N < 0 || l.Rate.N > maxLimit || (l.Rate.N > 0) != (l.Rate.Per == 1e9 || l.Rate.Per == 60e9) ||
		l.Burst < 0 || l.Burst > maxLimit || l.Conn < 0 || l.Conn > maxLimit || (l.Burst > 0 && l.Rate.N == 0) {
		t.Fatalf("limit %+v", l)
	}
	if r.BasicAuthFile != "" {
		if got, err := parseFilePath(r.BasicAuthFile); err != nil || got != r.BasicAuthFile {
			t.Fatalf("auth.basic_file %q: %v", r.BasicAuthFile, err)
		}
	}
	if r.ForwardAuth.URL != "" {
		if got, err := parseHTTPURL(r.ForwardAuth.URL); err != nil || got != r.ForwardAuth.URL {
			t.Fatalf("auth.forward %q: %v", r.ForwardAuth.URL, err)
		}
	} else if len(r.ForwardAuth.Headers) > 0 {
		t.Fatalf("auth.forward.headers without auth.forward")
	}
	for _, h := range r.ForwardAuth.Headers {
		if h != http.CanonicalHeaderKey(h) || h == "Host" || isForwardingName(h) {
			t.Fatalf("auth.forward.headers %q", h)
		}
	}
	if !slices.IsSorted(r.ForwardAuth.Headers) {
		t.Fatalf("auth.forward.headers not sorted: %q", r.ForwardAuth.Headers)
	}
	for i, p := range r.ErrorPages {
		if !slices.Contains(errorPageCodes, p.Code) || (i > 0 && r.ErrorPages[i-1].Code >= p.Code) || p.Source == "" {
			t.Fatalf("error pages %+v", r.ErrorPages)
		}
	}
}

func TestRateInterval(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ms   int64
	}{
		{"10r/s", "10r/s", 100},
		{"600r/m", "600r/m", 100},
		{"1r/m", "1r/m", 60000},
		{"3r/s", "3r/s", 333},
	}
	for _, tc := range tests {
		r, err := parseRate(tc.in)
		if err != nil || r.String() != tc.want || r.Interval().Milliseconds() != tc.ms {
			t.Errorf("%s: %v %q %s", tc.in, err, r, r.Interval())
		}
	}
	for _, bad := range []string{"", "10", "10r/h", "-1r/s", "+1r/s", "0r/s", "1000001r/s", "r/s", "10 r/s", "1.5r/s"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRoutesFileAccessKeys: the routes file takes the access keys, and a bad
// one blocks the static route like a bad label.
func TestRoutesFileAccessKeys(t *testing.T) {
	file := `services:
  - name: legacy
    upstreams: ["192.0.2.10:8080"]
    labels:
      ingress.host: legacy.example.com
      ingress.limit.rate: 600r/m
      ingress.limit.burst: 5
      ingress.limit.conn: 3
      ingress.auth.basic_file: /run/secrets/htpasswd
      ingress.auth.forward: http://192.0.2.20:4180/auth
      ingress.auth.forward.headers: X-User
      ingress.error_page.502: /etc/ingress/502.html
      ingress.maintenance: "false"
      ingress.routes.bad.host: bad.example.com
      ingress.routes.bad.limit.rate: lots
`
	entries, err := ParseRoutesFile(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	routes, errs := Build(Input{Static: []StaticService{{Name: entries[0].Name,
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort(entries[0].Upstreams[0])}, Labels: entries[0].Labels}}})
	if len(routes) != 2 || len(errs) != 1 || errs[0].Label != "ingress.routes.bad.limit.rate" {
		t.Fatalf("routes %v errors %v", routes, errs)
	}
	bad, r := routes[0], routes[1]
	if bad.Blocked == "" || len(bad.Upstreams) != 0 {
		t.Errorf("bad route not blocked: %+v", bad)
	}
	want := route.Limit{Rate: route.Rate{N: 600, Per: time.Minute}, Burst: 5, Conn: 3}
	if r.Blocked != "" || r.Limit != want || r.BasicAuthFile != "/run/secrets/htpasswd" ||
		r.ForwardAuth.URL != "http://192.0.2.20:4180/auth" || !slices.Equal(r.ForwardAuth.Headers, []string{"X-User"}) ||
		!slices.Equal(r.ErrorPages, []route.ErrorPage{{Code: 502, Source: "/etc/ingress/502.html"}}) || r.Maintenance {
		t.Errorf("route %+v", r)
	}
}
