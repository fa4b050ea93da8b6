package proxy

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// refMatch is a deliberately naive reading of the matching rules
// (docs/labels.md): scan every route; an exact host beats a wildcard of one
// label; among the routes of a host the longest path prefix on a segment
// boundary wins, segments compared decoded and in either ASCII case (an
// encoded slash stays inside its segment); equal host and path go to a
// blocked route, then the higher priority, then the older service, then the
// lower service and route name.
func refMatch(routes []*route.Route, host, path string) *route.Route {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	best := refBest(routes, path, func(h string) bool { return h == host })
	if best != nil {
		return best
	}
	i := strings.IndexByte(host, '.')
	if i < 0 || i == len(host)-1 {
		return nil
	}
	return refBest(routes, path, func(h string) bool { return h == "*"+host[i:] })
}

func refBest(routes []*route.Route, path string, hostOK func(string) bool) *route.Route {
	var best *route.Route
	for _, r := range routes {
		hit := false
		for _, h := range r.Hosts {
			hit = hit || hostOK(h)
		}
		if !hit || !refUnder(path, r.Path) {
			continue
		}
		if best == nil || len(r.Path) > len(best.Path) || len(r.Path) == len(best.Path) && refWins(r, best) {
			best = r
		}
	}
	return best
}

func refUnder(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	segs, want := strings.Split(path, "/"), strings.Split(prefix, "/")
	if len(segs) < len(want) {
		return false
	}
	for i, w := range want {
		seg, ok := percentDecode(segs[i], true)
		if !ok {
			seg = segs[i]
		}
		if lowerASCII(seg) != lowerASCII(w) {
			return false
		}
	}
	return true
}

func refWins(a, b *route.Route) bool {
	if (a.Blocked != "") != (b.Blocked != "") {
		return a.Blocked != ""
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	if a.Service != b.Service {
		return a.Service < b.Service
	}
	return a.Name < b.Name
}

// fuzzHost turns fuzz input into a valid route host (lower-case labels,
// optionally a one-label wildcard), or "".
func fuzzHost(s string) string {
	wild := strings.HasPrefix(s, "*.")
	s = strings.TrimPrefix(s, "*.")
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return ""
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return ""
		}
	}
	if wild {
		return "*." + s
	}
	return s
}

// fuzzPath turns fuzz input into a valid route path ("/" or a prefix
// without a trailing slash, of segments that are not "." or ".." and hold
// only the characters a path label may), or "".
func fuzzPath(s string) string {
	if s == "/" {
		return s
	}
	if !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return ""
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return ""
		}
		for i := range len(seg) {
			if !pathByte(seg[i]) {
				return ""
			}
		}
	}
	return s
}

func FuzzMatch(f *testing.F) {
	f.Add("example.com", "/api", "*.example.com", "/", 0, false, "api.example.com", "/api/x")
	f.Add("example.com", "/", "example.com", "/api", 1, false, "EXAMPLE.com.:443", "/apix")
	f.Add("a.b", "/x", "*.b", "/x/y", -1, false, "c.b", "/x/y/z")
	f.Add("a.b.c", "/", "*.b.c", "/", 0, false, "x.a.b.c", "/")
	f.Add("a.b", "/p", "a.b", "/p", 2, false, "a.b", "/p")
	f.Add("a.b", "/Admin", "a.b", "/admin/x", 0, true, "a.b", "/%61DMIN/x/y")
	f.Add("a.b", "/a;b", "a.b", "/A;B", 0, true, "a.b", "/a%3Bb%2Fc")
	f.Fuzz(func(t *testing.T, h1, p1, h2, p2 string, prio2 int, blocked2 bool, host, path string) {
		h1, h2, p1, p2 = fuzzHost(h1), fuzzHost(h2), fuzzPath(p1), fuzzPath(p2)
		if h1 == "" || h2 == "" || p1 == "" || p2 == "" {
			t.Skip("not a valid route")
		}
		created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		routes := []*route.Route{
			{Service: "one", Name: "default", Hosts: []string{h1}, Path: p1, Created: created},
			{Service: "two", Name: "default", Hosts: []string{h2}, Path: p2, Priority: prio2, Created: created.Add(time.Second)},
			{Service: "three", Name: "api", Hosts: []string{h1, h2}, Path: "/api", Created: created.Add(-time.Second)},
		}
		if blocked2 {
			routes[1].Blocked = "invalid labels"
		}
		tbl := route.New(route.Snapshot{Routes: routes})
		got := tbl.Match(host, path)
		want := refMatch(routes, host, path)
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v (routes %s %s, %s %s prio %d blocked %t, three /api on both)",
				host, path, id(got), id(want), h1, p1, h2, p2, prio2, blocked2)
		}
	})
}

func id(r *route.Route) string {
	if r == nil {
		return "<nil>"
	}
	return r.ID()
}
