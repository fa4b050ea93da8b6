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
	split *Split // nil unless several routes share the host and path by weight
}

// Snapshot is what a table is built from.
type Snapshot struct {
	Generation uint64
	UpdatedAt  time.Time
	Routes     []*Route
	Errors     []Error
	// HostLabel names the label that set a route's hosts, for conflict
	// errors; label syntax is pkg/discovery's. nil: the errors name none.
	HostLabel func(*Route) string
	Partial   bool // see Table.Partial
}

// New indexes the routes and settles conflicts: of two routes with the same
// host and path (paths that differ only in ASCII case are the same, as
// matching ignores it), a blocked route wins (it fails closed), then the
// higher Priority, then the older service (Created), then the lower service
// and route name so that the result never depends on input order. Each
// loser is reported in Errors, except that routes of equal priority share
// the host and path by weight when one of them sets one (see Split). The
// slices in s are copied.
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
			k := key{h, lowerASCII(r.Path)}
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
		split, losers := splitOf(rs)
		for _, loser := range losers {
			t.Errors = append(t.Errors, Error{
				Service: loser.Service,
				Label:   hostLabel(s, loser),
				Error:   conflict(k.host, loser.Path, winner, loser),
			})
		}
		if suffix, ok := strings.CutPrefix(k.host, "*."); ok {
			t.wildcard[suffix] = append(t.wildcard[suffix], slot{winner.Path, winner, split})
		} else {
			t.exact[k.host] = append(t.exact[k.host], slot{winner.Path, winner, split})
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
		cmp.Compare(openness(a), openness(b)),
		cmp.Compare(b.Priority, a.Priority),
		a.Created.Compare(b.Created),
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Name, b.Name),
	)
}

// openness is 0 for a blocked route, which wins any conflict, else 1.
func openness(r *Route) int {
	if r.Blocked != "" {
		return 0
	}
	return 1
}

func conflict(host, path string, winner, loser *Route) string {
	if winner.Blocked != "" && loser.Blocked == "" {
		return fmt.Sprintf("conflict: host %q path %q is also claimed by %s, which is blocked by its invalid labels and wins (fail closed): it answers 503 until they are fixed",
			host, path, winner.ID())
	}
	return fmt.Sprintf("conflict: host %q path %q is also routed by %s, which wins (priority %d vs %d, then the older service)",
		host, path, winner.ID(), winner.Priority, loser.Priority)
}

func hostLabel(s Snapshot, r *Route) string {
	if s.HostLabel == nil {
		return ""
	}
	return s.HostLabel(r)
}

// Match returns the route for a request's Host header and escaped,
// canonical URL path (see docs/labels.md, "Paths"), or nil. An exact host
// beats a wildcard; among the routes of a host the longest path prefix wins,
// matched on segment boundaries ("/api" matches "/api" and "/api/x", not
// "/apix") and ignoring ASCII case. When no route of the exact host matches
// the path, the wildcard routes are tried.
func (t *Table) Match(host, path string) *Route {
	r, _ := t.Lookup(host, path)
	return r
}

// Lookup is Match, and also returns the Split when the matched host and
// path are shared by several routes (the route is then its first member).
func (t *Table) Lookup(host, path string) (*Route, *Split) {
	if t == nil {
		return nil, nil
	}
	host = NormalizeHost(host)
	if s := matchPath(t.exact[host], path); s != nil {
		return s.route, s.split
	}
	if _, suffix, ok := strings.Cut(host, "."); ok && suffix != "" {
		if s := matchPath(t.wildcard[suffix], path); s != nil {
			return s.route, s.split
		}
	}
	return nil, nil
}

func matchPath(slots []slot, path string) *slot {
	for i := range slots {
		if PathHasPrefix(path, slots[i].path) {
			return &slots[i]
		}
	}
	return nil
}

// PathHasPrefix reports whether the escaped path lies under prefix on
// segment boundaries (see PrefixLen).
func PathHasPrefix(path, prefix string) bool {
	_, ok := PrefixLen(path, prefix)
	return ok
}

// PrefixLen reports whether the escaped path lies under prefix, a route
// path (unescaped, without '%'), on segment boundaries, and how many bytes
// of path the prefix covers. Letters match in either ASCII case (as
// case-insensitive backends such as Express route them), and an escape in
// path matches the character it encodes, except that an escaped slash is a
// character of its segment, never a boundary. The prefix "/" covers nothing
// and matches every path.
func PrefixLen(path, prefix string) (int, bool) {
	if prefix == "/" || prefix == "" {
		return 0, true
	}
	i := 0
	for j := 0; j < len(prefix); j++ {
		if i >= len(path) {
			return 0, false
		}
		c, n := path[i], 1
		if c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]) {
			c, n = unhex(path[i+1])<<4|unhex(path[i+2]), 3
			if c == '/' {
				c = '%' // a segment's character: matches no prefix byte
			}
		}
		if lowerByte(c) != lowerByte(prefix[j]) {
			return 0, false
		}
		i += n
	}
	return i, i == len(path) || path[i] == '/'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// lowerASCII lower-cases the ASCII letters of s.
func lowerASCII(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerByte(c)
	}
	return string(b)
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
