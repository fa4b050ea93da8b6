package proxy

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// unmatchedRoute is the route label of requests no route matched. Route IDs
// always contain a slash, so it cannot collide with one.
const unmatchedRoute = "none"

// metrics are the proxy's Prometheus collectors.
type metrics struct {
	requests       *prometheus.CounterVec   // by route and status code
	duration       *prometheus.HistogramVec // by route
	streams        *prometheus.GaugeVec     // open streams by route
	upstreamErrors *prometheus.CounterVec   // by route and kind
	timeouts       *prometheus.CounterVec   // time bounds that fired, by route and kind
	routes         prometheus.Gauge
	unmatched      *routeMetrics
}

// newMetrics creates the collectors and registers them on reg (none if reg
// is nil). A collector already registered (a second Handler on the same
// registry) is shared.
func newMetrics(reg prometheus.Registerer, log zerolog.Logger) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_requests_total", Help: "Requests served, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ingress_request_duration_seconds", Help: "Time from request to the end of the response, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ingress_streams_active", Help: "Open streams (event streams, stream=true responses, upgraded connections), by route.",
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_upstream_errors_total", Help: "Failed upstream attempts, by route and kind (dial, timeout, broken, no_upstream, body_limit, canceled, other).",
		}, []string{"route", "kind"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingress_timeouts_total", Help: "Time bounds that cut an exchange, by route and kind (connect, header, client_body, client_write, upstream_idle).",
		}, []string{"route", "kind"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingress_routes", Help: "Routes in the current table.",
		}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests, log)
		m.duration = register(reg, m.duration, log)
		m.streams = register(reg, m.streams, log)
		m.upstreamErrors = register(reg, m.upstreamErrors, log)
		m.timeouts = register(reg, m.timeouts, log)
		m.routes = register(reg, m.routes, log)
	}
	m.unmatched = m.route(unmatchedRoute)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C, log zerolog.Logger) C {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		log.Error().Err(err).Msg("register proxy metric")
	}
	return c
}

// forget drops the series of a route that left the table.
func (m *metrics) forget(id string) {
	l := prometheus.Labels{"route": id}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.streams.DeletePartialMatch(l)
	m.upstreamErrors.DeletePartialMatch(l)
	m.timeouts.DeletePartialMatch(l)
}

// routeMetrics caches one route's metric handles, so that the hot path does
// no label lookups.
type routeMetrics struct {
	m        *metrics
	id       string
	duration prometheus.Observer
	streams  prometheus.Gauge

	mu    sync.Mutex                    // serialises additions to codes
	codes atomic.Pointer[[]codeCounter] // copy-on-write; a route sees a handful of codes
}

type codeCounter struct {
	code    int
	counter prometheus.Counter
}

func (m *metrics) route(id string) *routeMetrics {
	return &routeMetrics{
		m: m, id: id,
		duration: m.duration.WithLabelValues(id),
		streams:  m.streams.WithLabelValues(id),
	}
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	rm.counter(code).Inc()
	rm.duration.Observe(d.Seconds())
}

func (rm *routeMetrics) counter(code int) prometheus.Counter {
	if cs := rm.codes.Load(); cs != nil {
		for _, c := range *cs {
			if c.code == code {
				return c.counter
			}
		}
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var cs []codeCounter
	if p := rm.codes.Load(); p != nil {
		cs = *p
		for _, c := range cs {
			if c.code == code {
				return c.counter
			}
		}
	}
	c := rm.m.requests.WithLabelValues(rm.id, strconv.Itoa(code))
	next := append(slices.Clip(cs), codeCounter{code, c})
	rm.codes.Store(&next)
	return c
}

func (rm *routeMetrics) upstreamError(kind string) {
	rm.m.upstreamErrors.WithLabelValues(rm.id, kind).Inc()
}

func (rm *routeMetrics) timeout(kind string) {
	rm.m.timeouts.WithLabelValues(rm.id, kind).Inc()
}
