package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
)

// forward sends an admitted request to the route's upstreams and the
// response back to the client: plain requests to scheme=http upstreams on
// the direct path (direct.go), everything else through the route's
// httputil.ReverseProxy (its Rewrite is in forwarded.go); both end in
// roundTrip below.
func (rs *routeState) forward(ex *exchange, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		cb := &clientBody{rc: r.Body, ex: ex, bound: rs.bounds.ClientBody}
		if rs.route.Stream {
			cb.bound = 0 // a stream both ways (NDJSON) may be quiet: no idle timeout
		}
		r.Body = cb
	}
	if rs.route.Stream && r.ProtoMajor == 1 && r.Body != http.NoBody {
		// Let a stream route's upstream answer while the client still
		// sends (e.g. NDJSON in both directions); HTTP/2 always can.
		_ = http.NewResponseController(ex.ResponseWriter).EnableFullDuplex()
	}
	if rs.direct(r) {
		rs.serveDirect(ex, r)
		return
	}
	rs.proxy.ServeHTTP(ex, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
}

// maxAttempts bounds the upstreams one request may try.
const maxAttempts = 3

var errNoUpstream = errors.New("no upstream address")

// RoundTrip sends the request to one of the route's upstreams, chosen by the
// balancer. This is the one place that retries (the transports never do):
//   - an idempotent request without a body that failed on a pooled
//     connection the upstream had closed (h1.ErrStaleConn) is sent again,
//     once, to the same upstream, on another connection (see send);
//   - a new connection that is slow to come up is raced against one to
//     another upstream (hedge.go); the request goes on the first one up;
//   - an attempt that failed before anything reached the upstream (the dial
//     failed, the body is untouched) is retried on another upstream; so is
//     an idempotent request without a body whose connection broke before
//     any response byte arrived.
//
// Anything else is returned to the ErrorHandler.
func (rs *routeState) RoundTrip(req *http.Request) (*http.Response, error) {
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	return rs.roundTrip(req, ex, nil)
}

// roundTrip is RoundTrip with the exchange given; with a sink (the direct
// path, scheme=http only) 1xx responses go to the sink.
func (rs *routeState) roundTrip(req *http.Request, ex *exchange, sink h1.InterimSink) (*http.Response, error) {
	if len(rs.ups) == 0 {
		return nil, errNoUpstream
	}
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &replayBody{rc: req.Body}
		req.Body = body
	}
	attempts := min(len(rs.ups), maxAttempts)
	var tried uint64
	for i := 1; ; i++ {
		u, idx := rs.choose(req, ex, tried)
		tried |= 1 << (idx % 64)
		trial := rs.claim(u)
		req.URL.Host = u.host
		if ex != nil {
			ex.addr = u.host
		}
		u.inflight.Add(1)
		var conn h1.Conn // a connection raced by connect (hedge.go)
		var err error
		if rs.hedging() {
			var a attempt
			a, conn, err = rs.connect(req, ex, attempt{u, idx, trial}, &tried)
			u, idx, trial = a.u, a.idx, a.trial
			req.URL.Host = u.host
			if ex != nil {
				ex.addr = u.host
			}
		}
		var res *http.Response
		if err == nil {
			res, err = rs.send(req, sink, conn)
		}
		rs.observe(u, trial, req, res, err)
		if err == nil {
			if rs.sticky != nil {
				rs.stick(req, ex, res, idx) // sticky.go
			}
			if ex != nil {
				ex.upstream = u // released by Handler.finish
				if res.StatusCode != http.StatusSwitchingProtocols && !buffered(res.Body) {
					res.Body = &idleBody{rc: res.Body, ex: ex, bound: rs.bounds.UpstreamIdle}
				}
			} else {
				u.inflight.Add(-1)
			}
			return res, nil
		}
		u.inflight.Add(-1)
		if ex != nil && isDial(err) && isTimeout(err) {
			ex.limitHit(limitConnect)
		}
		if i >= attempts || !retryable(req, body, err) {
			return nil, err
		}
		rs.stats.upstreamError(kindOf(err))
		rs.h.log.Debug().Str(fieldRoute, rs.id).Str(fieldUpstream, u.host).Err(err).Msg("retrying on another upstream")
		req = retryRequest(req, body)
		if body != nil {
			body = req.Body.(*replayBody)
		}
	}
}

// send makes one attempt on the chosen upstream, on conn if connect
// (hedge.go) got one. A request the upstream
// cannot have processed (a stale pooled connection, h1.ErrStaleConn) is
// sent again at once if it is idempotent and has no body: the pool checks
// a connection before it lends it, so this is rare and not worth a new
// upstream.
func (rs *routeState) send(req *http.Request, sink h1.InterimSink, conn h1.Conn) (*http.Response, error) {
	var res *http.Response
	var err error
	if conn.Open() {
		res, err = rs.h1.SendOn(conn, req, sink)
	} else {
		res, err = rs.sendOnce(req, sink)
	}
	if errors.Is(err, h1.ErrStaleConn) && (req.Body == nil || req.Body == http.NoBody) &&
		idempotent(req.Method) && req.Context().Err() == nil {
		res, err = rs.sendOnce(req, sink)
	}
	return res, err
}

// sendOnce sends req over the route's transport, 1xx responses to sink if
// it is not nil.
func (rs *routeState) sendOnce(req *http.Request, sink h1.InterimSink) (*http.Response, error) {
	if sink != nil {
		return rs.h1.Send(req, sink)
	}
	return rs.base.RoundTrip(req)
}

// retryable reports whether a failed attempt may be sent again.
func retryable(req *http.Request, body *replayBody, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if body != nil && !body.detach() {
		return false // some of the body was read: it may have reached the upstream
	}
	if isDial(err) {
		return true
	}
	return body == nil && idempotent(req.Method) && isBroken(err)
}

// retryRequest copies req for the next attempt; the transport may still hold
// the previous one.
func retryRequest(req *http.Request, body *replayBody) *http.Request {
	next := req.WithContext(req.Context())
	u := *req.URL
	next.URL = &u
	if body != nil {
		next.Body = &replayBody{rc: body.rc}
	}
	return next
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// isDial reports an error from connecting: nothing was sent.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isBroken reports a connection that failed after the request was written
// and before a response arrived: the upstream died or closed on us, or the
// kernel gave up on it (ETIMEDOUT: what it sent stayed unacknowledged past
// TCP_USER_TIMEOUT, usertimeout_linux.go, or keep-alive probes went
// unanswered; its node is cut off).
func isBroken(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// replayBody passes a request body to one attempt and remembers whether the
// attempt read any of it. A detached body refuses further reads, so a late
// read by an abandoned attempt can never take bytes from the next one. The
// two flags are ordered so that detach reports "untouched" only if no read
// can follow.
type replayBody struct {
	rc       io.ReadCloser
	read     atomic.Bool
	detached atomic.Bool
}

var errDetached = errors.New("request body detached after a failed attempt")

func (b *replayBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	if b.detached.Load() {
		return 0, errDetached
	}
	return b.rc.Read(p)
}

// Close does not close the client's body: ReverseProxy and the server own it.
func (b *replayBody) Close() error { return nil }

// detach ends the body's use by a failed attempt and reports whether that
// attempt read none of it, so that another attempt may send it.
func (b *replayBody) detach() bool {
	b.detached.Store(true)
	return !b.read.Load()
}
