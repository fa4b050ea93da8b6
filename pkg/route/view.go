package route

import "time"

// View is the JSON shape of GET /api/routes (docs/admin-api.md, "GET /api/routes").
type View struct {
	Generation uint64      `json:"generation"`
	UpdatedAt  time.Time   `json:"updated_at"`
	Routes     []RouteView `json:"routes"`
	Errors     []Error     `json:"errors"`
	Splits     []SplitView `json:"splits"` // host and paths shared by weight (split.go)
}

// RouteView is one route in View.
type RouteView struct {
	Service      string   `json:"service"`
	Route        string   `json:"route"`
	Hosts        []string `json:"hosts"`
	Path         string   `json:"path"`
	UpstreamMode Mode     `json:"upstream_mode"`
	Network      string   `json:"network"`
	Upstreams    []string `json:"upstreams"`
	TLS          string   `json:"tls"`
	Stream       bool     `json:"stream"`
	Blocked      string   `json:"blocked"` // why the route answers 503; "" when it serves
	AccessView            // limits, auth files, forward auth, error pages (access.go)
	BalanceView           // weight, sticky, slow_start (split.go)
	RewriteView           // return, canonical_host, rewrites, request headers, compress (rewrite.go)

	// Health: the eject.* and health.* settings. UpstreamHealth is filled
	// in by the proxy serving the table (proxy.Handler.AnnotateView) and
	// absent where none does (a controller).
	Health         HealthView       `json:"health"`
	UpstreamHealth []UpstreamHealth `json:"upstream_health,omitempty"`
}

// View returns the table in its API shape. Slices are never nil, so they
// encode as [] rather than null.
func (t *Table) View() View {
	v := View{Routes: []RouteView{}, Errors: []Error{}, Splits: []SplitView{}}
	if t == nil {
		return v
	}
	v.Generation, v.UpdatedAt = t.Generation, t.UpdatedAt.UTC()
	for _, r := range t.Routes {
		ups := make([]string, 0, len(r.Upstreams))
		for _, u := range r.Upstreams {
			ups = append(ups, u.String())
		}
		rv := RouteView{
			Service: r.Service, Route: r.Name, Hosts: append([]string{}, r.Hosts...), Path: r.Path,
			UpstreamMode: r.Mode, Network: r.Network, Upstreams: ups, TLS: r.TLS, Stream: r.Stream,
			Blocked: r.Blocked, AccessView: r.accessView(), Health: r.healthView(),
			BalanceView: r.balanceView(), RewriteView: r.rewriteView(),
		}
		v.Routes = append(v.Routes, rv)
	}
	v.Errors = append(v.Errors, t.Errors...)
	v.Splits = t.splitViews()
	return v
}
