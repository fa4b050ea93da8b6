package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Access log field names.
const (
	fieldRoute    = "route"
	fieldMethod   = "method"
	fieldHost     = "host"
	fieldPath     = "path"
	fieldStatus   = "status"
	fieldBytes    = "bytes"
	fieldDuration = "duration"
	fieldUpstream = "upstream"
	fieldRemote   = "remote"
	fieldProto    = "proto"
)

type exchangeKey struct{}

// exchange is one request's bookkeeping. It wraps the ResponseWriter to see
// the status and the bytes written, and rides in the request context so the
// transport can record the upstream it chose.
type exchange struct {
	http.ResponseWriter
	start    time.Time
	status   int
	bytes    int64
	route    *routeState
	upstream *upstream // set once a response arrived; its in-flight count is released in finish
	addr     string    // the last upstream tried, for the log
	peer     netip.Addr
	trusted  bool
	err      error // the upstream error, if any
	hijacked bool  // a stream took the connection over: it records the request when it ends
}

func (e *exchange) WriteHeader(code int) {
	if e.status == 0 && code >= 200 {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(p []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	n, err := e.ResponseWriter.Write(p)
	e.bytes += int64(n)
	return n, err
}

// Flush is called after every write on streams; it must stay cheap.
func (e *exchange) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Hijack and deadlines.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// finish releases the upstream and records the request in metrics and the
// access log. The path is logged without its query, which may carry secrets;
// the Authorization header is never logged.
func (h *Handler) finish(ex *exchange, r *http.Request) {
	if !ex.hijacked {
		h.record(ex, r)
	}
}

// record is finish for a request whose response has ended.
func (h *Handler) record(ex *exchange, r *http.Request) {
	if ex.upstream != nil {
		ex.upstream.inflight.Add(-1)
	}
	d := time.Since(ex.start)
	status := ex.status
	if status == 0 {
		status = http.StatusOK
	}
	stats, id := h.metrics.unmatched, ""
	if ex.route != nil {
		stats, id = ex.route.stats, ex.route.id
	}
	stats.observe(status, d)

	e := h.log.Info()
	if e == nil {
		return
	}
	e.Str(fieldRoute, id).
		Str(fieldMethod, r.Method).
		Str(fieldHost, r.Host).
		Str(fieldPath, r.URL.Path).
		Int(fieldStatus, status).
		Int64(fieldBytes, ex.bytes).
		Dur(fieldDuration, d).
		Str(fieldProto, r.Proto)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.Str(fieldRemote, host) // a substring: no allocation
	}
	if ex.addr != "" {
		e.Str(fieldUpstream, ex.addr)
	}
	if ex.err != nil {
		e.AnErr("upstream_error", ex.err)
	}
	e.Msg("request")
}
