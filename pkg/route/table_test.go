package route

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func rt(service, name string, hosts []string, path string, prio int, created int) *Route {
	return &Route{Service: service, Name: name, Hosts: hosts, Path: path, Priority: prio,
		Created: time.Unix(int64(created), 0), TLS: TLSAuto, Mode: ModeVIP}
}

func TestMatch(t *testing.T) {
	tbl := New(Snapshot{Routes: []*Route{
		rt("web", "default", []string{"example.com"}, "/", 0, 1),
		rt("api", "default", []string{"example.com"}, "/api", 0, 1),
		rt("apiv2", "default", []string{"example.com"}, "/api/v2", 0, 1),
		rt("wild", "default", []string{"*.example.com"}, "/", 0, 1),
		rt("wildapi", "default", []string{"*.example.com"}, "/x", 0, 1),
		rt("exactsub", "default", []string{"a.example.com"}, "/only", 0, 1),
	}})
	tests := []struct {
		name, host, path, want string
	}{
		{name: "root", host: "example.com", path: "/", want: "web"},
		{name: "prefix exact", host: "example.com", path: "/api", want: "api"},
		{name: "prefix segment", host: "example.com", path: "/api/x", want: "api"},
		{name: "no partial segment", host: "example.com", path: "/apix", want: "web"},
		{name: "longest prefix", host: "example.com", path: "/api/v2/users", want: "apiv2"},
		{name: "host case and port", host: "EXAMPLE.com:8080", path: "/api", want: "api"},
		{name: "trailing dot", host: "example.com.", path: "/", want: "web"},
		{name: "wildcard one label", host: "b.example.com", path: "/", want: "wild"},
		{name: "wildcard path", host: "b.example.com", path: "/x/y", want: "wildapi"},
		{name: "wildcard not two labels", host: "a.b.example.com", path: "/", want: ""},
		{name: "wildcard not apex", host: "other.com", path: "/", want: ""},
		{name: "exact beats wildcard", host: "a.example.com", path: "/only/1", want: "exactsub"},
		{name: "exact falls back to wildcard path", host: "a.example.com", path: "/else", want: "wild"},
		{name: "unknown host", host: "nope.org", path: "/", want: ""},
		{name: "path case ignored", host: "example.com", path: "/API/V2/x", want: "apiv2"},
		{name: "escaped letters match", host: "example.com", path: "/%61pi/%76%32", want: "apiv2"},
		{name: "encoded slash is no boundary", host: "example.com", path: "/api%2Fv2", want: "web"},
		{name: "encoded slash inside a segment", host: "example.com", path: "/api/v2%2Fx", want: "api"},
		{name: "trailing slash", host: "example.com", path: "/api/", want: "api"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if r := tbl.Match(tc.host, tc.path); r != nil {
				got = r.Service
			}
			if got != tc.want {
				t.Fatalf("Match(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
			}
		})
	}
}

func TestConflictsDeterministic(t *testing.T) {
	routes := []*Route{
		rt("old", "default", []string{"a.com"}, "/", 0, 1),
		rt("new", "default", []string{"a.com", "b.com"}, "/", 0, 2),
		rt("high", "default", []string{"c.com"}, "/", 5, 9),
		rt("low", "default", []string{"c.com"}, "/", 1, 1),
	}
	for i := 0; i < 20; i++ {
		shuffled := append([]*Route(nil), routes...)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		tbl := New(Snapshot{Routes: shuffled, HostLabel: testHostLabel})
		if got := tbl.Match("a.com", "/").Service; got != "old" {
			t.Fatalf("a.com: got %s, want old (older service wins)", got)
		}
		if got := tbl.Match("b.com", "/").Service; got != "new" {
			t.Fatalf("b.com: got %s, want new (no conflict there)", got)
		}
		if got := tbl.Match("c.com", "/").Service; got != "high" {
			t.Fatalf("c.com: got %s, want high (priority wins)", got)
		}
		if len(tbl.Errors) != 2 || tbl.Errors[0].Service != "low" || tbl.Errors[1].Service != "new" ||
			tbl.Errors[1].Label != "ingress.host" {
			t.Fatalf("conflict errors = %+v", tbl.Errors)
		}
	}
}

// TestConflictsFailClosed: paths that differ only in case are one slot, and
// a blocked route wins its slot whatever the priorities and ages.
func TestConflictsFailClosed(t *testing.T) {
	open := rt("open", "default", []string{"a.com"}, "/admin", 10, 1)
	blocked := rt("broken", "admin", []string{"a.com"}, "/Admin", 0, 9)
	blocked.Blocked = "ingress.routes.admin.auth.basic: not a bcrypt hash"
	upper := rt("upper", "default", []string{"b.com"}, "/API", 0, 2)
	lower := rt("lower", "default", []string{"b.com"}, "/api", 0, 1)
	tbl := New(Snapshot{Routes: []*Route{open, blocked, upper, lower}, HostLabel: testHostLabel})
	if got := tbl.Match("a.com", "/admin/x"); got != blocked {
		t.Fatalf("a.com /admin/x matched %v, want the blocked route", got)
	}
	if got := tbl.Match("b.com", "/Api/x"); got != lower {
		t.Fatalf("b.com /Api/x matched %v, want the older of /API and /api", got)
	}
	if len(tbl.Errors) != 2 || tbl.Errors[0].Service != "open" || tbl.Errors[0].Label != "ingress.host" ||
		tbl.Errors[1].Service != "upper" {
		t.Fatalf("conflict errors = %+v, want open (lost to the blocked route) and upper", tbl.Errors)
	}
	if v := tbl.View(); v.Routes[0].Service != "broken" || v.Routes[0].Blocked != blocked.Blocked {
		t.Fatalf("View lists %+v first, want the blocked route with its reason", v.Routes[0])
	}
}

func TestPrefixLen(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         int
		ok           bool
	}{
		{path: "/api/x", prefix: "/api", want: 4, ok: true},
		{path: "/API", prefix: "/api", want: 4, ok: true},
		{path: "/%61pi/x", prefix: "/api", want: 6, ok: true},
		{path: "/a%3Bb/x", prefix: "/a;b", want: 6, ok: true},
		{path: "/apix", prefix: "/api"},
		{path: "/ap", prefix: "/api"},
		{path: "/a%2Fb", prefix: "/a/b"},
		{path: "/x", prefix: "/", want: 0, ok: true},
	}
	for _, tc := range tests {
		n, ok := PrefixLen(tc.path, tc.prefix)
		if ok != tc.ok || ok && n != tc.want {
			t.Errorf("PrefixLen(%q, %q) = %d, %t; want %d, %t", tc.path, tc.prefix, n, ok, tc.want, tc.ok)
		}
	}
}

func TestTLSHostsAndView(t *testing.T) {
	off := rt("plain", "default", []string{"plain.com"}, "/", 0, 1)
	off.TLS = TLSOff
	on := rt("secure", "default", []string{"secure.com", "*.wild.com"}, "/", 0, 1)
	on.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("10.0.1.5:8080")}
	tbl := New(Snapshot{Generation: 3, Routes: []*Route{off, on}})
	if hs := tbl.TLSHosts(); len(hs) != 1 || hs[0] != "secure.com" {
		t.Fatalf("TLSHosts = %v", hs)
	}
	for host, want := range map[string]bool{"secure.com": true, "SECURE.com.": true, "x.wild.com": false, "plain.com": false, "y.x.wild.com": false, "other.com": false} {
		if got := tbl.TLSHost(host); got != want {
			t.Errorf("TLSHost(%q) = %v, want %v", host, got, want)
		}
	}
	v := tbl.View()
	if v.Generation != 3 || len(v.Routes) != 2 || v.Routes[1].Upstreams[0] != "10.0.1.5:8080" || v.Errors == nil {
		t.Fatalf("View = %+v", v)
	}
	var nilTable *Table
	if nilTable.Match("a", "/") != nil || nilTable.TLSHost("a") || nilTable.View().Routes == nil {
		t.Fatal("nil table must match nothing")
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "example.com", want: "example.com"},
		{in: "Example.COM", want: "example.com"},
		{in: "example.com:8443", want: "example.com"},
		{in: "example.com.", want: "example.com"},
		{in: "EXAMPLE.com.:80", want: "example.com"},
		{in: "[::1]:80", want: "::1"},
		{in: "10.0.0.1", want: "10.0.0.1"},
	}
	for _, tc := range tests {
		if got := NormalizeHost(tc.in); got != tc.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { NormalizeHost("example.com") }); n != 0 {
		t.Errorf("NormalizeHost allocates %v times for a plain lower-case host", n)
	}
}

// testHostLabel stands in for pkg/discovery's label names.
func testHostLabel(r *Route) string { return "ingress.host" }
