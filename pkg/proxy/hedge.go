package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
)

// Hedged connect (docs/labels.md "Upstream health"), in the manner of Happy
// Eyeballs (RFC 8305) across a route's upstreams. A task whose node is cut
// off does not refuse a connection: its SYNs are lost, and a dial to it
// waits the whole connect_timeout. So when a new connection to the chosen
// upstream is not up within hedgeAfter, a second dial starts to the
// upstream the balancer would choose next (another one, in rotation), and
// the request goes on whichever connection comes up first.
//
// This is safe for every method, POST included: no byte of the request is
// written before a connection is chosen (h1.Conn), so the upstream that is
// not chosen has seen nothing but a TCP handshake. The losing dial is not
// cancelled: a connection it opens goes to the pool, and its failure counts
// as a connect failure of its upstream (health.go), so a dead task still
// leaves the rotation at its first failed dial.
//
// Only scheme=http routes (h1) with two upstreams or more hedge; https and
// h2c dial inside http.Transport.

// hedgeAfter is how long a new connection may take before the hedge starts:
// RFC 8305's recommended Connection Attempt Delay. An upstream is a task on
// the swarm's overlay network, where a connect takes well under a
// millisecond and some tens of milliseconds on a loaded machine; a SYN that
// is lost is resent only after 1 s. 250 ms thus hedges almost only dials
// that will not complete, and leaves a request whose first dial was lost
// well under a second late. A route whose connect_timeout is shorter than
// twice that hedges at half its connect_timeout.
const hedgeAfter = 250 * time.Millisecond

func hedgeDelay(connect time.Duration) time.Duration { return min(hedgeAfter, connect/2) }

// attempt is one upstream a request is being sent to, counted in its
// in-flight requests.
type attempt struct {
	u     *upstream
	idx   int  // in rs.ups
	trial bool // claim's result: the attempt is the upstream's trial
}

type dialed struct {
	a   attempt
	c   h1.Conn
	err error
}

// hedging reports whether roundTrip gets its connections from connect.
func (rs *routeState) hedging() bool { return rs.h1 != nil && len(rs.ups) > 1 }

// connect gets a connection for attempt a: a pooled one at once, or a new
// one, hedged after hedgeDelay by a dial to another upstream (*tried gains
// it). It returns the attempt whose connection won, or on failure the
// attempt whose error it returns (the last dial that failed, or a when the
// client left); that attempt is still live for the caller, which observes
// it. Every other attempt is settled here or, when its dial ends later, by
// settle.
func (rs *routeState) connect(req *http.Request, ex *exchange, a attempt, tried *uint64) (attempt, h1.Conn, error) {
	if c, ok := rs.h1.Pooled(a.u.host); ok {
		return a, c, nil
	}
	ctx := req.Context()
	// The dials outlive the request: a loser's outcome must still be
	// counted. Each is bounded by the connect timeout (h1's dial.go).
	results := make(chan dialed, 2) // buffered: a dial that ends after connect returned never blocks
	dctx := context.WithoutCancel(ctx)
	dial := func(a attempt) {
		c, err := rs.h1.Dial(dctx, a.u.host)
		results <- dialed{a, c, err}
	}
	go dial(a)
	pending := []attempt{a}
	timer := time.NewTimer(hedgeDelay(rs.bounds.Connect))
	defer timer.Stop()
	for {
		select {
		case r := <-results:
			pending = without(pending, r.a.u)
			if r.err == nil {
				if len(pending) > 0 {
					go rs.settle(results, len(pending), nil)
				}
				return r.a, r.c, nil
			}
			if len(pending) == 0 {
				return r.a, h1.Conn{}, r.err
			}
			rs.lost(r) // the other dial may still win
		case <-timer.C:
			b, ok := rs.hedgeTarget(req, ex, *tried)
			if !ok {
				continue // nobody else in rotation: wait for a
			}
			*tried |= 1 << (b.idx % 64)
			b.trial = rs.claim(b.u)
			b.u.inflight.Add(1)
			pending = append(pending, b)
			if ex != nil {
				ex.hedged = a.u.host
			}
			rs.h.health.hedges.WithLabelValues(rs.id).Inc()
			rs.h.health.log.Debug().Str(fieldRoute, rs.id).Str(fieldUpstream, a.u.host).Str("hedge", b.u.host).
				Msg("connect slow: dialling another upstream too")
			go dial(b)
		case <-ctx.Done():
			// The client left. The caller observes one pending attempt (as
			// neutral, as without a hedge); settle takes the others' outcomes
			// and pools whatever connects.
			live := pending[0]
			go rs.settle(results, len(pending), live.u)
			return live, h1.Conn{}, ctx.Err()
		}
	}
}

func without(as []attempt, u *upstream) []attempt {
	for i, a := range as {
		if a.u == u {
			return append(as[:i], as[i+1:]...)
		}
	}
	return as
}

// hedgeTarget is the upstream the balancer would choose after the ones
// tried, if it is in rotation.
func (rs *routeState) hedgeTarget(req *http.Request, ex *exchange, tried uint64) (attempt, bool) {
	u, idx := rs.choose(req, ex, tried)
	var now int64
	if tried&(1<<(idx%64)) != 0 || rs.avoid(idx, &now) {
		return attempt{}, false
	}
	return attempt{u: u, idx: idx}, true
}

// settle takes the last n results of connect's dials after it returned:
// each is lost, except skip's (the attempt connect returned to a client
// that left, which its caller has released and observed as neutral): its
// connection is pooled and its connect error still counts.
func (rs *routeState) settle(results <-chan dialed, n int, skip *upstream) {
	for range n {
		r := <-results
		switch {
		case r.a.u != skip:
			rs.lost(r)
		case r.err == nil:
			r.c.Release()
		case isDial(r.err):
			rs.failed(r.a.u, reasonConnect, false)
		}
	}
}

// lost ends an attempt whose dial the request did not use: its connection
// goes to the pool, its failure counts against its upstream.
func (rs *routeState) lost(r dialed) {
	u := r.a.u
	u.inflight.Add(-1)
	if r.err == nil {
		r.c.Release()
		if r.a.trial {
			u.health.trial.Store(false) // the next request is its trial
		}
		return
	}
	rs.stats.upstreamError(kindOf(r.err))
	rs.h.health.log.Debug().Str(fieldRoute, rs.id).Str(fieldUpstream, u.host).Err(r.err).Msg("hedged dial failed")
	if isDial(r.err) {
		rs.failed(u, reasonConnect, r.a.trial)
	} else if r.a.trial {
		u.health.trial.Store(false)
	}
}

// newHedges is ingress_upstream_hedges_total, registered on reg if not nil.
func newHedges(reg prometheus.Registerer, log zerolog.Logger) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingress_upstream_hedges_total",
		Help: "Requests whose connect to the chosen upstream was slow, so that a second upstream was dialled (hedged connect), by route.",
	}, []string{"route"})
	if reg != nil {
		c = register(reg, c, log)
	}
	return c
}
