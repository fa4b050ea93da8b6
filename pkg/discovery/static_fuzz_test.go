package discovery

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseRoutesFile checks that ParseRoutesFile never panics, is
// deterministic, returns entries or an error but not both, that every entry
// is complete and valid, and that resolving them yields IPv4 only.
func FuzzParseRoutesFile(f *testing.F) {
	for _, seed := range []string{
		"",
		"services:\n",
		"services:\n  - name: legacy\n    upstreams: [\"192.0.2.10:8080\", \"backend.lan:80\"]\n    labels:\n      ingress.host: legacy.example.com\n      ingress.port: 8080\n",
		"services:\n  - name: a\n    upstreams: [\"[::1]:80\"]\n    labels: &l {ingress.host: a.com}\n  - name: b\n    upstreams: [\"localhost:1\"]\n    labels: *l\n",
		"services: [{name: a, upstreams: [a:1], labels: {x: [1]}}]\n---\nx: 1\n",
		"a: &a [*a]\n",
		"services:\n  - name: site\n    upstreams: [\"192.0.2.10:80\"]\n    labels:\n      ingress.host: example.com,www.example.com\n      ingress.canonical_host: example.com\n      ingress.rewrite: ^/old/(.*)$ /new/$1 permanent\n      ingress.request_headers.X-Real-IP: $remote_addr\n      ingress.response_headers_remove: Server\n      ingress.compress: gzip,zstd\n      ingress.compress.min_size: 1KB\n",
		"services:\n  - name: l\n    upstreams: [\"192.0.2.10:80\"]\n    labels:\n      ingress.host: l.example.com\n      ingress.limit.rate: 10r/s\n      ingress.limit.burst: 5\n      ingress.limit.conn: 2\n      ingress.auth.basic_file: /run/secrets/htpasswd\n      ingress.auth.forward: http://auth:4180/auth\n      ingress.auth.forward.headers: X-User\n      ingress.error_page.503: /run/configs/503.html\n      ingress.maintenance: true\n",
		"services:\n  - name: checked\n    upstreams: [\"192.0.2.10:8080\", \"192.0.2.11:8080\"]\n    labels: {ingress.host: c.com, ingress.eject.after: 2, ingress.eject.for: 1s, ingress.health.path: /healthz, ingress.health.interval: 2s, ingress.health.timeout: 1s, ingress.health.status: 200-299, ingress.health.port: 8081}\n",
		"services:\n  - name: canary\n    upstreams: [\"192.0.2.11:80\", \"192.0.2.12:80\"]\n    labels:\n      ingress.host: shop.example.com\n      ingress.weight: 10\n      ingress.sticky: SHOP\n      ingress.slow_start: 30s\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, file string) {
		entries, err := ParseRoutesFile(strings.NewReader(file))
		entries2, err2 := ParseRoutesFile(strings.NewReader(file))
		if !reflect.DeepEqual(entries, entries2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil && entries != nil {
			// Good services beside bad ones: every problem is a service's own.
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				if _, ok := e.(*EntryError); !ok {
					t.Fatalf("entries beside a problem of the whole file: %v", e)
				}
			}
		}
		names := map[string]bool{}
		for _, e := range entries {
			if !staticName.MatchString(e.Name) || names[e.Name] || len(e.Upstreams) == 0 || len(e.Labels) == 0 || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
			names[e.Name] = true
			for _, u := range e.Upstreams {
				if err := checkUpstream(u); err != nil {
					t.Fatalf("entry %s: accepted upstream %q: %v", e.Name, u, err)
				}
			}
		}
		lookup := func(_ context.Context, _, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.AddrFrom4([4]byte{10, 0, 0, byte(len(host))})}, nil
		}
		services, _ := ResolveStatic(context.Background(), entries, lookup)
		for _, s := range services {
			for _, u := range s.Upstreams {
				if !u.Addr().Is4() || u.Port() == 0 {
					t.Fatalf("service %s: upstream %s", s.Name, u)
				}
			}
		}
	})
}
