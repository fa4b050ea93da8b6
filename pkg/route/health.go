package route

import (
	"strconv"
	"time"
)

// The defaults of outlier ejection and active health checks (labels
// `eject.*` and `health.*`, docs/labels.md "Upstream health").
const (
	DefaultEjectAfter      = 3                // consecutive failures that eject an upstream
	DefaultEjectFor        = 5 * time.Second  // first ejection; doubles on each re-ejection
	MaxEjectFor            = time.Minute      // cap of the doubling (never below the route's eject.for)
	DefaultHealthInterval  = 10 * time.Second // between two active checks of one upstream
	DefaultHealthTimeout   = 2 * time.Second  // of one active check
	DefaultHealthStatusMin = 200
	DefaultHealthStatusMax = 399
)

// HealthCheck is a route's active check (labels `health.*`): every upstream
// is asked GET Path at each Interval; an answer within Timeout whose status
// lies in StatusMin-StatusMax passes. Zero fields mean the defaults (see
// WithDefaults; the timeout is capped at the interval). It is comparable:
// the proxy keys its checkers by it.
type HealthCheck struct {
	Path      string        // request path, with an optional query; starts with "/"
	Interval  time.Duration // 0: DefaultHealthInterval
	Timeout   time.Duration // 0: DefaultHealthTimeout
	StatusMin int           // 0: DefaultHealthStatusMin
	StatusMax int           // 0: DefaultHealthStatusMax
	Port      uint16        // 0: each upstream's own port
}

// WithDefaults returns the check with every zero field given its default.
func (c HealthCheck) WithDefaults() HealthCheck {
	c.Interval = orDefault(c.Interval, DefaultHealthInterval)
	c.Timeout = min(orDefault(c.Timeout, DefaultHealthTimeout), c.Interval)
	if c.StatusMin == 0 && c.StatusMax == 0 {
		c.StatusMin, c.StatusMax = DefaultHealthStatusMin, DefaultHealthStatusMax
	}
	return c
}

// Passes reports whether an answer with status code passes the check.
func (c HealthCheck) Passes(code int) bool {
	c = c.WithDefaults()
	return c.StatusMin <= code && code <= c.StatusMax
}

// Status is the expected status as written in the label: "200" or "200-399".
func (c HealthCheck) Status() string {
	c = c.WithDefaults()
	if c.StatusMin == c.StatusMax {
		return strconv.Itoa(c.StatusMin)
	}
	return strconv.Itoa(c.StatusMin) + "-" + strconv.Itoa(c.StatusMax)
}

// Ejection is a route's outlier ejection with the defaults applied: After
// consecutive failures eject an upstream (0: only connect errors do) for
// For, doubled on each re-ejection up to max(MaxEjectFor, For).
type Ejection struct {
	After int
	For   time.Duration
}

// Ejection returns the route's outlier ejection settings, defaults applied.
func (r *Route) Ejection() Ejection {
	e := Ejection{After: r.EjectAfter, For: orDefault(r.EjectFor, DefaultEjectFor)}
	switch {
	case e.After == 0:
		e.After = DefaultEjectAfter
	case e.After < 0:
		e.After = 0
	}
	return e
}

// HealthView is the health configuration of a route in /api/routes.
type HealthView struct {
	EjectAfter int              `json:"eject_after"` // 0: only connect errors eject
	EjectFor   string           `json:"eject_for"`
	Check      *HealthCheckView `json:"check,omitempty"` // nil: no active check
}

// HealthCheckView is a route's active check in /api/routes.
type HealthCheckView struct {
	Path     string `json:"path"`
	Interval string `json:"interval"`
	Timeout  string `json:"timeout"`
	Status   string `json:"status"`
	Port     uint16 `json:"port,omitempty"` // 0: the upstreams' own port
}

func (r *Route) healthView() HealthView {
	e := r.Ejection()
	v := HealthView{EjectAfter: e.After, EjectFor: e.For.String()}
	if r.HealthCheck != nil {
		c := r.HealthCheck.WithDefaults()
		v.Check = &HealthCheckView{Path: c.Path, Interval: c.Interval.String(), Timeout: c.Timeout.String(), Status: c.Status(), Port: c.Port}
	}
	return v
}

// UpstreamHealth is the proxy's state of one upstream of a route, in
// /api/routes (`upstream_health`; only where a proxy serves the table).
type UpstreamHealth struct {
	Upstream string `json:"upstream"`
	// State: "up"; "ejected" (until EjectedUntil); "trial" (the ejection
	// is over: the next request decides); "kept" (failing, but the last
	// upstream of the route in rotation); "failing_check" (the active
	// check fails); "unchecked" (active check not answered yet).
	State               string     `json:"state"`
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	Reason              string     `json:"reason,omitempty"` // of the last ejection: connect, status, timeout, broken
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Check               string     `json:"check,omitempty"`       // active check: "passing", "failing", "pending"; "" without one
	CheckError          string     `json:"check_error,omitempty"` // why the last check failed
}
