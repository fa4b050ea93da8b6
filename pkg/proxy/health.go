package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Upstream health (docs/labels.md "Upstream health"): outlier ejection from
// the outcome of real requests here, active checks in healthcheck.go. The
// balancer (pick) avoids an upstream for which avoid says so; roundTrip
// reports every attempt's outcome to observe.

// Ejection reasons (label "reason" of ingress_upstream_ejections_total).
const (
	reasonConnect = "connect" // connect error: ejects at once
	reasonStatus  = "status"  // a 5xx answer other than 501 and 505
	reasonTimeout = "timeout" // no response headers within the route's timeout
	reasonBroken  = "broken"  // the connection broke before a response
)

// upstreamHealth is the passive health of one upstream address. It lives in
// upstream: shared by every route using the address, kept across table
// swaps, and new for an address that left the table and came back.
//
// An ejected upstream has until set: avoided before it, on trial after it
// (one request is sent; its outcome decides). Only the trial's outcome
// changes an ejected upstream's state: an answer to a request sent before
// the ejection says nothing about now.
type upstreamHealth struct {
	until atomic.Int64 // unix nanoseconds; 0 when in rotation
	fails atomic.Int32 // consecutive failures
	trial atomic.Bool  // the trial request is in flight

	mu        sync.Mutex // serialises changes of state; guards the fields below
	ejections int        // ejections since the last success: the backoff exponent
	reason    string     // of the last ejection
	kept      bool       // would be ejected, but is the last upstream of a route in rotation
}

// healthShared is the Handler's upstream health machinery.
type healthShared struct {
	now       func() time.Time // the clock (tests replace it)
	ejections *prometheus.CounterVec
	hedges    *prometheus.CounterVec // hedged connects (hedge.go)
	log       zerolog.Logger
	checks    checks // healthcheck.go
}

func (hs *healthShared) init(h *Handler) {
	hs.now = time.Now
	hs.log = h.log
	hs.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingress_upstream_ejections_total", Help: "Upstreams taken out of a route's rotation by outlier ejection, by route and reason (connect, status, timeout, broken).",
	}, []string{"route", "reason"})
	hs.checks.init(h)
	hs.hedges = newHedges(h.cfg.Registerer, h.log)
	if reg := h.cfg.Registerer; reg != nil {
		hs.ejections = register(reg, hs.ejections, h.log)
		if err := reg.Register(healthCollector{h}); err != nil {
			h.log.Debug().Err(err).Msg("upstream health gauges already registered by another handler")
		}
	}
}

// syncHealth gives the routes of a new state their ejection settings and
// checkers, and drops the ejection counts of routes that left. It runs
// under h.mu, from build, before h.routeStats is replaced.
func (h *Handler) syncHealth(st *state) {
	ids := make(map[string]bool, len(st.routes))
	for _, rs := range st.routes {
		rs.eject = rs.route.Ejection()
		ids[rs.id] = true
	}
	h.health.checks.sync(st)
	for id := range h.routeStats {
		if !ids[id] {
			h.health.ejections.DeletePartialMatch(prometheus.Labels{"route": id})
			h.health.hedges.DeletePartialMatch(prometheus.Labels{"route": id})
		}
	}
}

// avoid reports whether the balancer should pass over upstream j: it fails
// its active check, or is ejected and not (yet) available for a trial.
// *now is read from the clock on first need.
func (rs *routeState) avoid(j int, now *int64) bool {
	if rs.checks != nil && !rs.checks[j].passing() {
		return true
	}
	hl := &rs.ups[j].health
	d := hl.until.Load()
	if d == 0 {
		return false
	}
	if *now == 0 {
		*now = rs.h.health.now().UnixNano()
	}
	return d > *now || hl.trial.Load()
}

// claim makes the request about to go to u its trial, if u's ejection is
// over and no trial is in flight.
func (rs *routeState) claim(u *upstream) bool {
	d := u.health.until.Load()
	if d == 0 || d > rs.h.health.now().UnixNano() {
		return false
	}
	return u.health.trial.CompareAndSwap(false, true)
}

// observe takes the outcome of one attempt on u: a response (err nil) or
// the error. trial is claim's result for the attempt.
func (rs *routeState) observe(u *upstream, trial bool, req *http.Request, res *http.Response, err error) {
	reason, failed := outcome(req, res, err)
	hl := &u.health
	switch {
	case !failed && reason != "": // neither failure nor success
		if trial {
			hl.trial.Store(false)
		}
	case !failed:
		if trial || hl.until.Load() == 0 && hl.fails.Load() != 0 {
			rs.recovered(u, trial)
		}
	default:
		rs.failed(u, reason, trial)
	}
}

// neutral is outcome's reason for an attempt that says nothing about the
// upstream (the client went away, or its body was bad or too large).
const neutral = "neutral"

// outcome classifies an attempt: a failure with its reason, a success
// (reason ""), or neutral.
func outcome(req *http.Request, res *http.Response, err error) (string, bool) {
	if err == nil {
		if c := res.StatusCode; c >= 500 && c != http.StatusNotImplemented && c != http.StatusHTTPVersionNotSupported {
			return reasonStatus, true
		}
		return "", false
	}
	if req.Context().Err() != nil {
		return neutral, false
	}
	switch kindOf(err) {
	case kindDial:
		return reasonConnect, true
	case kindTimeout:
		return reasonTimeout, true
	case kindBroken:
		return reasonBroken, true
	}
	return neutral, false
}

// recovered puts u back in rotation after a success.
func (rs *routeState) recovered(u *upstream, trial bool) {
	hl := &u.health
	hl.mu.Lock()
	if !trial && hl.until.Load() != 0 {
		hl.mu.Unlock() // ejected meanwhile: only its trial decides
		return
	}
	was := hl.until.Load() != 0
	hl.fails.Store(0)
	hl.until.Store(0)
	hl.trial.Store(false)
	hl.ejections, hl.reason, hl.kept = 0, "", false
	hl.mu.Unlock()
	if was {
		rs.h.health.log.Info().Str(fieldRoute, rs.id).Str(fieldUpstream, u.host).Msg("upstream back")
	}
}

// failed counts a failure of u and ejects it when the route's rules say so
// (docs/labels.md "Upstream health"), unless it is the route's last
// upstream in rotation.
func (rs *routeState) failed(u *upstream, reason string, trial bool) {
	hl := &u.health
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if trial {
		hl.trial.Store(false)
	} else if hl.until.Load() != 0 {
		return // already out: only its trial decides
	}
	n := int(hl.fails.Add(1))
	if !trial && reason != reasonConnect && (rs.eject.After == 0 || n < rs.eject.After) {
		return
	}
	now := rs.h.health.now()
	if !rs.othersInRotation(u, now.UnixNano()) {
		hl.kept = true
		hl.until.Store(0)
		return
	}
	d := rs.eject.For << min(hl.ejections, 16)
	if limit := max(route.MaxEjectFor, rs.eject.For); d > limit || d <= 0 {
		d = limit
	}
	hl.ejections++
	hl.reason, hl.kept = reason, false
	hl.until.Store(now.Add(d).UnixNano())
	rs.h.health.ejections.WithLabelValues(rs.id, reason).Inc()
	rs.h.health.log.Warn().Str(fieldRoute, rs.id).Str(fieldUpstream, u.host).Str("reason", reason).
		Int("consecutive_failures", n).Dur("for", d).Msg("upstream ejected")
}

// othersInRotation reports whether the route has an upstream other than u
// that the balancer does not avoid.
func (rs *routeState) othersInRotation(u *upstream, now int64) bool {
	for j, v := range rs.ups {
		if v != u && !rs.avoid(j, &now) {
			return true
		}
	}
	return false
}

// AnnotateView fills in each route's upstream_health from the state the
// proxy serves (GET /api/routes).
func (h *Handler) AnnotateView(v *route.View) {
	st := h.state.Load()
	byID := make(map[string]*routeState, len(st.routes))
	for _, rs := range st.routes {
		byID[rs.id] = rs
	}
	now := h.health.now()
	for i := range v.Routes {
		rv := &v.Routes[i]
		rv.UpstreamHealth = []route.UpstreamHealth{}
		if rs := byID[rv.Service+"/"+rv.Route]; rs != nil {
			for j := range rs.ups {
				rv.UpstreamHealth = append(rv.UpstreamHealth, rs.upstreamView(j, now))
			}
		}
	}
}

func (rs *routeState) upstreamView(j int, now time.Time) route.UpstreamHealth {
	u := rs.ups[j]
	hl := &u.health
	hl.mu.Lock()
	v := route.UpstreamHealth{Upstream: u.host, State: "up", Reason: hl.reason, ConsecutiveFailures: int(hl.fails.Load())}
	kept := hl.kept
	hl.mu.Unlock()
	if d := hl.until.Load(); d != 0 {
		until := time.Unix(0, d).UTC()
		v.EjectedUntil = &until
		v.State = "ejected"
		if !now.Before(until) {
			v.State = "trial"
		}
	} else if kept {
		v.State = "kept"
	}
	if rs.checks != nil {
		c := rs.checks[j]
		v.Check, v.CheckError = c.status()
		if v.State == "up" && v.Check == checkFailing {
			v.State = "failing_check"
		} else if v.State == "up" && v.Check == checkPending {
			v.State = "unchecked"
		}
	}
	return v
}

// healthCollector reports the gauges of the routes being served, counted
// when scraped.
type healthCollector struct{ h *Handler }

var (
	descEjected = prometheus.NewDesc("ingress_upstreams_ejected",
		"Upstreams of a route currently ejected by outlier detection (on trial included).", []string{"route"}, nil)
	descFailingCheck = prometheus.NewDesc("ingress_upstreams_failing_check",
		"Upstreams of a route whose last active health check failed.", []string{"route"}, nil)
)

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEjected
	ch <- descFailingCheck
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.state.Load()
	if st == nil {
		return
	}
	for _, rs := range st.routes {
		ejected, failing := 0, 0
		for j, u := range rs.ups {
			if u.health.until.Load() != 0 {
				ejected++
			}
			if rs.checks != nil && rs.checks[j].failing() {
				failing++
			}
		}
		ch <- prometheus.MustNewConstMetric(descEjected, prometheus.GaugeValue, float64(ejected), rs.id)
		ch <- prometheus.MustNewConstMetric(descFailingCheck, prometheus.GaugeValue, float64(failing), rs.id)
	}
}
