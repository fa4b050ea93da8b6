package proxy

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// state is one route table with what was prepared from it. It is built whole
// by SetTable and never changed afterwards.
type state struct {
	table  *route.Table
	routes map[*route.Route]*routeState
	splits map[*route.Split]*splitState // weighted.go
}

// routeState is what a route needs at request time, prepared once per table.
type routeState struct {
	h         *Handler
	route     *route.Route
	id        string
	proxy     *httputil.ReverseProxy
	bounds    route.Bounds      // the route's time limits, defaults applied
	base      http.RoundTripper // shared transport for the route's scheme and timeouts
	h1        *h1.Transport     // base, for scheme=http: the direct path uses it
	scheme    string            // URL scheme towards the upstream: http or https
	ups       []*upstream
	eject     route.Ejection // outlier ejection settings (health.go)
	checks    []*checker     // active checks, one per ups entry; nil without (healthcheck.go)
	headers   [][]string     // values of route.Headers, shared read-only by responses
	challenge string         // WWW-Authenticate value
	limit     *limiter       // nil without limit.rate and limit.conn (limit.go)
	files     routeFiles     // files the access steps read (access.go)
	stats     *routeMetrics
	edits     *edits          // redirects, rewrites and header edits (rewrite.go); nil: none
	compress  *compressConfig // compress.go; nil: off
	sticky    *sticky         // sticky.go; nil when the route is not sticky
	ramp      *ramp           // slowstart.go; nil when no upstream ramps
}

// build prepares a state for t. It runs under h.mu and reuses transports,
// upstream counters and metric handles from the previous state, so a swap
// keeps connection pools warm and balancing fair.
func (h *Handler) build(t *route.Table) *state {
	st := &state{table: t, routes: map[*route.Route]*routeState{}}
	ups := map[netip.AddrPort]*upstream{}
	stats := map[string]*routeMetrics{}
	if t != nil {
		for _, r := range t.Routes {
			st.routes[r] = h.prepare(r, ups, stats)
		}
		st.prepareSplits()
	}
	for id := range h.routeStats {
		if _, ok := stats[id]; !ok {
			h.metrics.forget(id)
		}
	}
	h.syncHealth(st)
	h.upstreams, h.routeStats = ups, stats
	h.swapAccess()
	h.metrics.routes.Set(float64(len(st.routes)))
	return st
}

func (h *Handler) prepare(r *route.Route, ups map[netip.AddrPort]*upstream, stats map[string]*routeMetrics) *routeState {
	rs := &routeState{
		h:         h,
		route:     r,
		id:        r.ID(),
		bounds:    r.Bounds(),
		scheme:    "http",
		challenge: `Basic realm="` + realm(r.Service) + `", charset="UTF-8"`,
	}
	rs.base = h.transport(r.Scheme, rs.bounds)
	rs.h1, _ = rs.base.(*h1.Transport)
	rs.edits, rs.compress = prepareEdits(r), prepareCompress(r)
	if r.Scheme == route.SchemeHTTPS {
		rs.scheme = "https"
	}
	for _, a := range r.Upstreams {
		u := ups[a]
		if u == nil {
			u = h.upstreams[a]
			if u == nil {
				u = newUpstream(a)
				u.since = h.routableSince()
			}
			ups[a] = u
		}
		rs.ups = append(rs.ups, u)
	}
	rs.sticky, rs.ramp = h.newSticky(rs), h.newRamp(rs)
	for _, hd := range r.Headers {
		rs.headers = append(rs.headers, []string{hd.Value})
	}
	h.prepareAccess(rs)
	rs.stats = stats[rs.id]
	if rs.stats == nil {
		rs.stats = h.routeStats[rs.id]
		if rs.stats == nil {
			rs.stats = h.metrics.route(rs.id)
		}
		stats[rs.id] = rs.stats
	}
	// A negative FlushInterval flushes after every write. ReverseProxy does
	// that by itself for text/event-stream and for responses without a
	// Content-Length; stream=true extends it to every response of the route.
	var flush time.Duration
	if r.Stream {
		flush = -1
	}
	rs.proxy = &httputil.ReverseProxy{
		Rewrite:        rs.rewrite,
		Transport:      rs,
		FlushInterval:  flush,
		BufferPool:     bufferPool{},
		ErrorLog:       h.errorLog,
		ErrorHandler:   rs.proxyError,
		ModifyResponse: rs.modifyResponse,
	}
	return rs
}

// realm makes a service name safe inside a quoted WWW-Authenticate realm.
func realm(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return -1
		}
		return c
	}, s)
}
