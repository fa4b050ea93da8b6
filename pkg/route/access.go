package route

import (
	"strconv"
	"time"
)

// Rate is a request rate, as the `limit.rate` label writes it: N requests
// per second or per minute (docs/labels.md, "Limits").
type Rate struct {
	N   int           // requests
	Per time.Duration // time.Second or time.Minute
}

// String writes the rate as the label does: "10r/s", "600r/m".
func (r Rate) String() string {
	if r.N <= 0 || r.Per <= 0 {
		return ""
	}
	unit := "s"
	if r.Per == time.Minute {
		unit = "m"
	}
	return strconv.Itoa(r.N) + "r/" + unit
}

// Interval is the time in which one request's worth of allowance comes
// back (Nginx's 1/rate): 100ms at 10r/s. Zero when no rate is set.
func (r Rate) Interval() time.Duration {
	if r.N <= 0 || r.Per <= 0 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

// Limit is a route's per-client-address limits (labels limit.*); the zero
// value limits nothing.
type Limit struct {
	Rate  Rate // limit.rate: requests per client address, Nginx limit_req
	Burst int  // limit.burst: requests over the rate accepted at once
	Conn  int  // limit.conn: concurrent requests per client address; 0 means no limit
}

// Enabled reports whether any limit is set.
func (l Limit) Enabled() bool { return l.Rate.N > 0 || l.Conn > 0 }

// ForwardAuth is a route's `auth.forward`: every request is first asked of
// an auth service (Nginx auth_request).
type ForwardAuth struct {
	URL     string   // http or https URL of the auth service
	Headers []string // canonical names of the auth response headers copied to the upstream request
}

// ErrorPage is one `error_page.<code>`: the body answered instead of the
// short plain-text one for that status.
type ErrorPage struct {
	Code   int    // 502, 503 or 504
	Source string // absolute file path on the host serving traffic, or an http(s) URL
}

// AccessView is the part of RouteView (GET /api/routes) that shows the
// access keys; each field is left out when the key is not set.
type AccessView struct {
	Limit         *LimitView        `json:"limit,omitempty"`
	BasicAuthFile string            `json:"auth_basic_file,omitempty"`
	ForwardAuth   *ForwardAuthView  `json:"auth_forward,omitempty"`
	ErrorPages    map[string]string `json:"error_pages,omitempty"` // "502" -> file path or URL
	Maintenance   bool              `json:"maintenance,omitempty"`
}

// LimitView is a route's limits in the API: rate as the label writes it
// ("" when only limit.conn is set), burst, conn (0 means none).
type LimitView struct {
	Rate  string `json:"rate"`
	Burst int    `json:"burst"`
	Conn  int    `json:"conn"`
}

// ForwardAuthView is a route's forward auth in the API.
type ForwardAuthView struct {
	URL     string   `json:"url"`
	Headers []string `json:"headers"`
}

func (r *Route) accessView() AccessView {
	v := AccessView{BasicAuthFile: r.BasicAuthFile, Maintenance: r.Maintenance}
	if r.Limit.Enabled() {
		v.Limit = &LimitView{Rate: r.Limit.Rate.String(), Burst: r.Limit.Burst, Conn: r.Limit.Conn}
	}
	if r.ForwardAuth.URL != "" {
		v.ForwardAuth = &ForwardAuthView{URL: r.ForwardAuth.URL, Headers: append([]string{}, r.ForwardAuth.Headers...)}
	}
	for _, p := range r.ErrorPages {
		if v.ErrorPages == nil {
			v.ErrorPages = map[string]string{}
		}
		v.ErrorPages[strconv.Itoa(p.Code)] = p.Source
	}
	return v
}
