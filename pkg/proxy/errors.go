package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// statusClientClosed is logged (never sent) when the client went away
// before the upstream answered.
const statusClientClosed = 499

// Upstream error kinds (label "kind" of ingress_upstream_errors_total).
const (
	kindDial       = "dial"        // connection refused or unreachable
	kindTimeout    = "timeout"     // no response headers within the route's timeout
	kindBroken     = "broken"      // connection reset or closed before a response
	kindNoUpstream = "no_upstream" // the route has no address (no task running)
	kindBodyLimit  = "body_limit"  // request body over max_body
	kindCanceled   = "canceled"    // the client went away
	kindOther      = "other"

	// The client's own failures, not counted as upstream errors.
	kindClientBody    = "client_body"    // the request body could not be read (e.g. malformed chunked encoding): 400
	kindClientTimeout = "client_timeout" // the client paused its body over client_body_timeout: 408
)

// errorBodies holds the short plain-text body of each error status.
var errorBodies = map[int][]byte{}

func init() {
	for _, code := range []int{400, 401, 403, 404, 408, 413, 500, 502, 503, 504} {
		errorBodies[code] = []byte(http.StatusText(code) + "\n")
	}
}

// writeError answers with a short plain-text body that names the status and
// nothing else.
func writeError(w http.ResponseWriter, code int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	body, ok := errorBodies[code]
	if !ok {
		body = []byte(http.StatusText(code) + "\n")
	}
	_, _ = w.Write(body)
}

// writeError answers for a route: its configured response headers apply.
func (rs *routeState) writeError(w http.ResponseWriter, code int) {
	rs.setHeaders(w.Header())
	if rs.files.pages != nil && rs.errorPage(w, code) { // errorpage.go
		return
	}
	writeError(w, code)
}

// proxyError is the ReverseProxy ErrorHandler: every upstream failure ends
// here, is counted and logged once (in the access log line), and gets a
// status without internals.
func (rs *routeState) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	kind := kindOf(err)
	if kind == kindCanceled && r.Context().Err() == nil {
		kind = kindOther
	}
	ex, _ := w.(*exchange)
	if ex != nil && ex.limitName() == limitClientBody {
		// On HTTP/1.1 the expired read also cancels the request context,
		// so the transport may report that instead.
		kind = kindClientTimeout
	}
	switch kind {
	case kindClientBody, kindClientTimeout:
		// The connection's state is unknown (a broken chunk, a read
		// deadline in the past): do not read another request from it.
		w.Header().Set("Connection", "close")
	case kindTimeout:
		if ex != nil {
			ex.limitHit(limitHeader)
		}
		fallthrough
	default:
		rs.stats.upstreamError(kind)
	}
	if ex != nil {
		ex.err = err
	}
	code := statusOf(kind)
	if code == statusClientClosed {
		if ex != nil {
			ex.status = code
		}
		return
	}
	rs.writeError(w, code)
}

func kindOf(err error) string {
	var tooBig *http.MaxBytesError
	var client *clientBodyError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		return kindBodyLimit
	case errors.As(err, &client) && client.timeout:
		return kindClientTimeout
	case errors.As(err, &client) && !errors.Is(err, context.Canceled):
		return kindClientBody
	case errors.Is(err, errNoUpstream):
		return kindNoUpstream
	case isDial(err):
		return kindDial
	case errors.Is(err, context.Canceled):
		return kindCanceled
	case isBroken(err): // before Timeout: ETIMEDOUT is a dead peer, not a bound of ours
		return kindBroken
	case errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	}
	return kindOther
}

func statusOf(kind string) int {
	switch kind {
	case kindBodyLimit:
		return http.StatusRequestEntityTooLarge
	case kindTimeout:
		return http.StatusGatewayTimeout
	case kindClientBody:
		return http.StatusBadRequest
	case kindClientTimeout:
		return http.StatusRequestTimeout
	case kindCanceled:
		return statusClientClosed
	}
	return http.StatusBadGateway
}
