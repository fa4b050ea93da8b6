package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"
)

// Access log field names.
const (
	fieldRoute     = "route"
	fieldMethod    = "method"
	fieldHost      = "host"
	fieldPath      = "path"
	fieldStatus    = "status"
	fieldBytes     = "bytes"
	fieldDuration  = "duration"
	fieldUpstream  = "upstream"
	fieldRemote    = "remote"
	fieldProto     = "proto"
	fieldTimeout   = "timeout" // the time bound that cut the exchange (bounds.go)
	fieldRequestID = "request_id"
	fieldHedged    = "hedged" // the upstream whose slow connect was hedged by another (hedge.go)
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
	hedged   string    // the upstream whose slow connect was hedged (hedge.go)
	sticky   stickyHit // the upstream a sticky cookie named (sticky.go)
	peer     netip.Addr
	trusted  bool
	err      error // the upstream error, if any
	hijacked bool  // a stream took the connection over: it records the request when it ends

	requestID                   string    // X-Request-ID (requestid.go)
	requestIDv                  [1]string // its header value, shared by the response and the upstream request
	rewritten                   bool      // an internal rewrite set the upstream path and query (rewrite.go)
	upstreamPath, upstreamQuery string

	stats  *routeMetrics // the route's, or the unmatched requests'
	limit  atomic.Int32  // index in limitNames of the first time bound that fired
	wbound time.Duration // client write bound (bounds.go)
	wtimer *time.Timer
	held   limitHeld // the limit.conn slot the request holds (access.go)

	// The upstream request of the direct path (direct.go), part of the
	// exchange to save two allocations; a retry copies it (outbound.go).
	out    http.Request
	outURL url.URL
}

func (e *exchange) WriteHeader(code int) {
	if code >= 200 {
		if e.status == 0 {
			e.status = code
		}
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.armWrite() // a 1xx response is written at once
	e.ResponseWriter.WriteHeader(code)
	e.disarmWrite()
}

func (e *exchange) Write(p []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	if e.bytes+int64(len(p)) <= bufferedBytes {
		n, err := e.ResponseWriter.Write(p) // cannot block: no timer
		e.bytes += int64(n)
		return n, err
	}
	e.armWrite()
	n, err := e.ResponseWriter.Write(p)
	e.disarmWrite()
	e.bytes += int64(n)
	return n, err
}

// bufferedBytes is how much of a response body is sure to fit in the
// server's buffer: net/http buffers the first 2 KiB written after a flush
// (HTTP/1.1, 4 KiB for HTTP/2) and only a flush or a full buffer writes to
// the connection. A write that keeps the body written so far within it
// copies into memory and cannot block, so it needs no client write bound:
// small responses, the common case, then never arm the timer. Half of the
// buffer leaves room for what a compressor adds (compress.go: its output
// for this much input is at most a few dozen bytes longer).
const bufferedBytes = 1 << 10

// Flush is called after every write on streams; it must stay cheap.
func (e *exchange) Flush() { _ = e.FlushError() }

// FlushError is Flush with its error (http.ResponseController uses it).
func (e *exchange) FlushError() error {
	e.armWrite()
	defer e.disarmWrite()
	switch f := e.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// Unwrap lets http.ResponseController reach Hijack and deadlines.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// finish releases the upstream and records the request in metrics and the
// access log. The path is logged without its query, which may carry secrets;
// the Authorization header is never logged.
func (h *Handler) finish(ex *exchange, r *http.Request) {
	if ex.wtimer != nil {
		ex.wtimer.Stop()
	}
	if !ex.hijacked {
		boundConnWrites(ex.ResponseWriter, r, ex.wbound)
		h.record(ex, r)
	}
}

// record is finish for a request whose response has ended.
func (h *Handler) record(ex *exchange, r *http.Request) {
	ex.held.release()
	if ex.upstream != nil {
		ex.upstream.inflight.Add(-1)
	}
	d := time.Since(ex.start)
	status := ex.status
	if status == 0 {
		status = http.StatusOK
	}
	id := ""
	if ex.route != nil {
		id = ex.route.id
	}
	ex.stats.observe(status, d)

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
		Str(fieldProto, r.Proto).
		Str(fieldRequestID, ex.requestID)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.Str(fieldRemote, host) // a substring: no allocation
	}
	if ex.addr != "" {
		e.Str(fieldUpstream, ex.addr)
	}
	if ex.hedged != "" {
		e.Str(fieldHedged, ex.hedged)
	}
	if ex.err != nil {
		e.AnErr("upstream_error", ex.err)
	}
	if l := ex.limitName(); l != "" {
		e.Str(fieldTimeout, l)
	}
	e.Msg("request")
}
