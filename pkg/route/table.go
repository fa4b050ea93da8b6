package route

import (
	"cmp"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Table is an immutable route table with a host/path index. Build it with New;
// never change it afterwards.
type Table struct {
	Generation uint64
	UpdatedAt  time.Time
	Routes     []*Route // sorted by service, then route name
	Errors     []Error  // sorted; includes the conflicts New found
	// Partial: the table holds the static routes only, because the Swarm
	// state has not been read yet. A request it has no route for may have
	// one once Docker answers: the proxy says 503, not 404.
	Partial bool

	exact    map[string][]slot // host -> slots, longest path first
	wildcard map[string][]slot // "example.com" (from "*.example.com") -> slots
}

// slot is one (host, path) a route owns after conflicts are settled.
type slot struct {
	path  string
	route *Route
}

// Snapshot is what a table is built from.
type Snapshot struct {
	Generation  uint64
	UpdatedAt   time.Time
	Routes      []*Route
	Errors      []Error
	LabelPrefix string // e.g. "ingress.", used to name the label in conflict errors
	Partial     bool   // see Table.Partial
}

// New indexes the routes and settles conflicts: of two routes with the same
// host and path, the higher Priority wins, then the older service (Created),
// then the lower service and route name so that the result never depends on
// input order. Each loser is reported in Errors. The slices in s are copied.
func New(s Snapshot) *Table {
	t := &Table{
		Generation: s.Generation,
		UpdatedAt:  s.UpdatedAt,
		Routes:     slices.Clone(s.Routes),
		Errors:     slices.Clone(s.Errors),
		Partial:    s.Partial,
		exact:      map[string][]slot{},
		wildcard:   map[string][]slot{},
	}
	slices.SortFunc(t.Routes, func(a, b *Route) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name))
	})

	type key struct{ host, path string }
	claims := map[key][]*Route{}
	for _, r := range t.Routes {
		for _, h := range r.Hosts {
			k := key{h, r.Path}
			claims[k] = append(claims[k], r)
		}
	}
	keys := make([]key, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.path, b.path))
	})
	for _, k := range keys {
		rs := claims[k]
		slices.SortFunc(rs, precedence)
		winner := rs[0]
		for _, loser := range rs[1:] {
			t.Errors = append(t.Errors, Error{
				Service: loser.Service,
				Label:   s.LabelPrefix + hostLabel(loser),
				Error: fmt.Sprintf("conflict: host %q path %q is also routed by %s, which wins (priority %d vs %d, then the older service)",
					k.host, k.path, winner.ID(), winner.Priority, loser.Priority),
			})
		}
		if suffix, ok := strings.CutPrefix(k.host, "*."); ok {
			t.wildcard[suffix] = append(t.wildcard[suffix], slot{k.path, winner})
		} else {
			t.exact[k.host] = append(t.exact[k.host], slot{k.path, winner})
		}
	}
	for _, idx := range []map[string][]slot{t.exact, t.wildcard} {
		for _, slots := range idx {
			slices.SortFunc(slots, func(a, b slot) int { return cmp.Compare(len(b.path), len(a.path)) })
		}
	}
	slices.SortFunc(t.Errors, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Label, b.Label), cmp.Compare(a.Error, b.Error))
	})
	t.Errors = slices.Compact(t.Errors)
	return t
}

// precedence orders routes competing for one host and path, winner first.
func precedence(a, b *Route) int {
	return cmp.Or(
		cmp.Compare(b.Priority, a.Priority),
		a.Created.Compare(b.Created),
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Name, b.Name),
	)
}

func hostLabel(r *Route) string {
	if r.Name == "default" {
		return "host"
	}
	return "routes." + r.Name + ".host"
}

// Match returns the route for a request's Host header and URL path, or nil.
// An exact host beats a wildcard; among the routes of a host the longest path
// prefix wins, matched on segment boundaries ("/api" matches "/api" and
// "/api/x", not "/apix"). When no route of the exact host matches the path,
// the wildcard routes are tried.
func (t *Table) Match(host, path string) *Route {
	if t == nil {
		return nil
	}
	host = NormalizeHost(host)
	if r := matchPath(t.exact[host], path); r != nil {
		return r
	}
	if _, suffix, ok := strings.Cut(host, "."); ok && suffix != "" {
		return matchPath(t.wildcard[suffix], path)
	}
	return nil
}

func matchPath(slots []slot, path string) *Route {
	for _, s := range slots {
		if PathHasPrefix(path, s.path) {
			return s.route
		}
	}
	return nil
}

// PathHasPrefix reports whether path lies under prefix on segment boundaries.
func PathHasPrefix(path, prefix string) bool {
	if prefix == "/" || prefix == "" {
		return true
	}
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || rest[0] == '/')
}

// NormalizeHost lower-cases a Host header value and removes its port and any
// trailing dot.
func NormalizeHost(host string) string {
	// Only a host with a colon can carry a port; checking first spares the
	// common case the error SplitHostPort allocates.
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(host, ".")
	if !hasUpper(host) {
		return host
	}
	return strings.ToLower(host)
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// TLSHost reports whether a current route with tls=auto names host exactly.
// It is the ACME host policy. A name that only a wildcard route matches is
// not accepted: ACME cannot issue wildcards over HTTP-01 or TLS-ALPN-01, and
// ordering on demand for any name a client sends would let strangers spend
// the CA's rate limits. Wildcard routes use a user-supplied certificate.
func (t *Table) TLSHost(host string) bool {
	if t == nil {
		return false
	}
	for _, s := range t.exact[NormalizeHost(host)] {
		if s.route.TLSAuto() {
			return true
		}
	}
	return false
}

// TLSHosts lists, sorted, the exact (non-wildcard) hosts that a route with
// tls=auto serves: the names to obtain certificates for ahead of time.
func (t *Table) TLSHosts() []string {
	if t == nil {
		return nil
	}
	var hosts []string
	for h, slots := range t.exact {
		for _, s := range slots {
			if s.route.TLSAuto() {
				hosts = append(hosts, h)
				break
			}
		}
	}
	slices.Sort(hosts)
	return hosts
}

// SameContent reports whether two tables hold the same routes and errors and
// are both partial or both not, ignoring Generation and UpdatedAt. The watcher publishes only on change.
func (t *Table) SameContent(o *Table) bool {
	if t == nil || o == nil {
		return t == o
	}
	if t.Partial != o.Partial || len(t.Routes) != len(o.Routes) || !slices.Equal(t.Errors, o.Errors) {
		return false
	}
	for i := range t.Routes {
		if !reflect.DeepEqual(t.Routes[i], o.Routes[i]) {
			return false
		}
	}
	return true
}
