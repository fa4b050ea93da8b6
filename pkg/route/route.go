// Package route holds the route table that discovery builds and the proxy and
// certificate manager read. It depends on the standard library only.
//
// A Table is immutable once New returns: readers share it without locks and a
// new table replaces it whole (see proxy.Handler and certs.Manager).
package route

import (
	"net/netip"
	"time"
)

// Mode says where a route's upstream addresses come from.
type Mode string

const (
	ModeVIP    Mode = "vip"    // the service's virtual IP on the shared network
	ModeTasks  Mode = "tasks"  // the IPv4 addresses of the service's running tasks
	ModeStatic Mode = "static" // addresses from the static routes file
)

// TLS modes of a route (label `tls`).
const (
	TLSAuto = "auto"
	TLSOff  = "off"
)

// Upstream schemes (label `scheme`).
const (
	SchemeHTTP  = "http"
	SchemeHTTPS = "https"
	SchemeH2C   = "h2c"
)

// The defaults of a route's time bounds (docs/labels.md has the Nginx
// directive each one replaces).
const (
	DefaultTimeout             = 60 * time.Second // wait for the upstream's response headers
	DefaultConnectTimeout      = 5 * time.Second  // upstream dial
	DefaultClientBodyTimeout   = 60 * time.Second // wait between two reads of the request body
	DefaultClientWriteTimeout  = 60 * time.Second // a write to the client blocked (a client that does not read)
	DefaultUpstreamIdleTimeout = 60 * time.Second // wait between two reads of a non-stream response body
)

// Route is one routable unit: a set of hosts and a path prefix in front of a
// set of upstream addresses. Fields hold parsed, validated values.
type Route struct {
	Service   string    // Swarm service name, or the static service's name
	ServiceID string    // Swarm service ID; empty for static routes
	Name      string    // route name: "default" or the <name> of ingress.routes.<name>
	Created   time.Time // service creation time; the older service wins a conflict

	Hosts       []string // lower-case, no port, no trailing dot; "*.example.com" is a wildcard of one label
	Path        string   // "/" or a prefix without trailing slash, e.g. "/api"
	Port        uint16   // target port
	StripPrefix bool
	TLS         string // TLSAuto or TLSOff
	Redirect    bool   // with TLSAuto: redirect plain HTTP to HTTPS (308)
	Mode        Mode
	Network     string           // the network name upstreams are reached on; empty for static
	Upstreams   []netip.AddrPort // IPv4 only; empty while no task runs
	Scheme      string           // SchemeHTTP, SchemeHTTPS or SchemeH2C
	Stream      bool             // flush every write whatever the content type
	Timeout     time.Duration    // response header timeout; 0 means DefaultTimeout
	// The other time bounds; 0 means the default (see Bounds).
	ConnectTimeout      time.Duration
	ClientBodyTimeout   time.Duration
	ClientWriteTimeout  time.Duration
	UpstreamIdleTimeout time.Duration
	MaxBody             int64          // largest request body in bytes; 0 means unlimited
	BasicAuth           []BasicUser    // non-empty: require one of these users
	Allow               []netip.Prefix // non-empty: only these client networks
	Headers             []Header       // response headers to set, sorted by name
	Priority            int

	// Access policies and error pages (docs/labels.md, "Limits", "Auth
	// from a file", "Forward auth", "Error pages"). Files are read by the
	// process serving traffic: on an edge, from the edge's host.
	Limit         Limit       // limit.rate, limit.burst, limit.conn
	BasicAuthFile string      // auth.basic_file: htpasswd file of bcrypt entries
	ForwardAuth   ForwardAuth // auth.forward, auth.forward.headers; URL "" means none
	ErrorPages    []ErrorPage // error_page.<code>, sorted by code
	Maintenance   bool        // answer 503 with Retry-After and the 503 page
	// Upstream health (docs/labels.md "Upstream health"; route/health.go
	// has the defaults). EjectAfter: consecutive failures that eject an
	// upstream; 0 means DefaultEjectAfter, negative only connect errors.
	// EjectFor: the first ejection's length, 0 means DefaultEjectFor.
	// HealthCheck: the active check, nil for none.
	EjectAfter  int
	EjectFor    time.Duration
	HealthCheck *HealthCheck
	// Traffic splitting and affinity (docs/labels.md, "Split, sticky and
	// slow start"): Weighted says the `weight` label is set, Weight is its
	// value (0 to MaxWeight), the route's share among the routes of the same
	// host and path (see Split); Sticky is the name of the affinity cookie,
	// "" when off; SlowStart is how long a newly routable upstream takes to
	// reach its full share, 0 when off.
	Weight    int
	Weighted  bool
	Sticky    string
	SlowStart time.Duration

	// Redirects, rewrites, request and response header edits and
	// compression (rewrite.go; docs/labels.md).
	Return                Return      // `return`; zero: none
	CanonicalHost         string      // `canonical_host`: other hosts of the route redirect to it (301)
	Rewrites              []Rewrite   // `rewrite`, `rewrite.<N>`, in order
	RequestHeaders        []Header    // `request_headers.<Name>`: set (Value is a Template), sorted by name
	RequestHeadersAdd     []Header    // `request_headers_add.<Name>`: added, sorted by name
	RequestHeadersRemove  []string    // `request_headers_remove`: canonical names
	ResponseHeadersRemove []string    // `response_headers_remove`: canonical names, removed from the upstream's response
	Compress              Compression // `compress`; zero: off

	// AllowEncodedSlashes accepts %2F and %5C in request paths (kept
	// escaped); otherwise such a request is refused with 400.
	AllowEncodedSlashes bool

	// Blocked, when not empty, is why the route's labels could not be
	// applied: its hosts and path stay claimed but answer 503 and never
	// reach an upstream (it has none), so that a broken security setting
	// fails closed instead of leaving the path to a shorter route.
	Blocked string
}

// Bounds are a route's time limits with the defaults applied.
type Bounds struct {
	Connect      time.Duration // upstream dial
	Header       time.Duration // upstream response headers (label `timeout`)
	ClientBody   time.Duration // longest wait between two reads of the request body
	ClientWrite  time.Duration // longest a write to the client may stay blocked
	UpstreamIdle time.Duration // longest wait between two reads of a response body that is not a stream
}

// Bounds returns the route's time limits, defaults applied.
func (r *Route) Bounds() Bounds {
	return Bounds{
		Connect:      orDefault(r.ConnectTimeout, DefaultConnectTimeout),
		Header:       orDefault(r.Timeout, DefaultTimeout),
		ClientBody:   orDefault(r.ClientBodyTimeout, DefaultClientBodyTimeout),
		ClientWrite:  orDefault(r.ClientWriteTimeout, DefaultClientWriteTimeout),
		UpstreamIdle: orDefault(r.UpstreamIdleTimeout, DefaultUpstreamIdleTimeout),
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// BasicUser is one `auth.basic` credential; Hash is a bcrypt hash.
type BasicUser struct {
	User string
	Hash []byte
}

// Header is one `headers.<Name>` response header.
type Header struct {
	Name  string // canonical MIME header key
	Value string
}

// ID names the route for logs, metrics and the API: "<service>/<route>".
func (r *Route) ID() string { return r.Service + "/" + r.Name }

// TLSAuto reports whether the route wants HTTPS with an automatic certificate.
func (r *Route) TLSAuto() bool { return r.TLS != TLSOff }

// Error is a problem with one service's labels (or the routes file), or a
// conflict between two routes. It never stops other routes from serving.
type Error struct {
	Service string `json:"service"`
	Label   string `json:"label"`
	Error   string `json:"error"`
}
