package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// The time bounds of a request besides the upstream's connect and header
// timeouts (transports): how long the client may pause while sending its
// body (client_body_timeout), how long a write to the client may stay
// blocked (client_write_timeout) and how long the upstream may pause while
// sending a body that is not a stream (upstream_idle_timeout); see
// docs/labels.md. Each is a timer armed around one blocking call and
// stopped when the call returns, so it bounds a single wait, never the
// whole exchange: a long upload or a quiet stream lives. A timer that fires
// makes the blocked call return (a deadline in the past, or closing the
// upstream body), counts the limit and names it in the access log.

// Limits that fire (label "kind" of ingress_timeouts_total; field "timeout"
// of the access log).
const (
	limitConnect      = "connect"       // upstream dial (connect_timeout)
	limitHeader       = "header"        // upstream response headers (timeout)
	limitClientBody   = "client_body"   // client paused its request body (client_body_timeout)
	limitClientWrite  = "client_write"  // client stopped reading (client_write_timeout)
	limitUpstreamIdle = "upstream_idle" // upstream paused a response body (upstream_idle_timeout)
)

var limitNames = [...]string{"", limitConnect, limitHeader, limitClientBody, limitClientWrite, limitUpstreamIdle}

// limitHit records that a limit fired: counted every time, and the first
// one is named in the access log. It may run on a timer's goroutine.
func (e *exchange) limitHit(kind string) {
	e.stats.timeout(kind)
	for i, name := range limitNames {
		if name == kind {
			e.limit.CompareAndSwap(0, int32(i))
		}
	}
}

// limitName is the first limit that fired, or "".
func (e *exchange) limitName() string { return limitNames[e.limit.Load()] }

// deadliner is the part of the server's ResponseWriter (HTTP/1.1 and
// HTTP/2) that sets deadlines; a deadline in the past makes a blocked read
// or write return at once (HTTP/2: resets the stream).
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// aLongTimeAgo is a deadline in the past.
var aLongTimeAgo = time.Unix(1, 0)

// armWrite starts the client write bound before a write that may block.
func (e *exchange) armWrite() {
	if e.wbound <= 0 {
		return
	}
	if e.wtimer == nil {
		e.wtimer = time.AfterFunc(e.wbound, e.writeExpired)
		return
	}
	e.wtimer.Reset(e.wbound)
}

// disarmWrite stops it once the write returned.
func (e *exchange) disarmWrite() {
	if e.wtimer != nil {
		e.wtimer.Stop()
	}
}

func (e *exchange) writeExpired() {
	e.limitHit(limitClientWrite)
	if d, ok := e.ResponseWriter.(deadliner); ok {
		_ = d.SetWriteDeadline(aLongTimeAgo)
	}
}

// boundConnWrites bounds every write on an HTTP/1.1 connection the handler
// does not own: net/http writes the end of a response (its buffer, the last
// chunk) after the handler returns. The deadline is set when the handler
// returns and cleared when the next request on the connection starts.
func boundConnWrites(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if r.ProtoMajor != 1 {
		return
	}
	if dl, ok := w.(deadliner); ok {
		var t time.Time
		if d > 0 {
			t = time.Now().Add(d)
		}
		_ = dl.SetWriteDeadline(t)
	}
}

// Hijack hands the client connection over (ReverseProxy does, for an
// upgraded connection) with every write on it bounded by the client write
// bound: a WebSocket has no idle timeout, but a peer that stops reading
// does not hold it forever.
func (e *exchange) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(e.ResponseWriter).Hijack()
	if err != nil || e.wbound <= 0 {
		return conn, brw, err
	}
	return &boundedConn{Conn: conn, ex: e}, brw, nil
}

// boundedConn is a hijacked client connection whose writes are bounded.
type boundedConn struct {
	net.Conn
	ex *exchange
}

func (c *boundedConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.ex.wbound))
	n, err := c.Conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.ex.limitHit(limitClientWrite)
	}
	return n, err
}

// clientBody bounds the wait for each read of the request body (unless
// bound is 0) and marks its errors as the client's (see clientBodyError).
type clientBody struct {
	rc      io.ReadCloser
	ex      *exchange
	bound   time.Duration
	timer   *time.Timer // used by one reader at a time
	expired atomic.Bool
}

// clientBodyError is a failure to read the request body: a malformed
// chunked encoding (400), the client's pause over client_body_timeout (408)
// or its going away. It is never the upstream's fault.
type clientBodyError struct {
	err     error
	timeout bool
}

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

func (b *clientBody) Read(p []byte) (int, error) {
	switch {
	case b.bound <= 0:
	case b.timer == nil:
		b.timer = time.AfterFunc(b.bound, b.expire)
	default:
		b.timer.Reset(b.bound)
	}
	n, err := b.rc.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if err != nil && err != io.EOF {
		err = &clientBodyError{err: err, timeout: b.expired.Load()}
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

func (b *clientBody) expire() {
	b.expired.Store(true)
	b.ex.limitHit(limitClientBody)
	if d, ok := b.ex.ResponseWriter.(deadliner); ok {
		_ = d.SetReadDeadline(aLongTimeAgo)
	}
}

// errUpstreamIdle ends a response body whose upstream paused for longer
// than upstream_idle_timeout.
var errUpstreamIdle = errors.New("upstream paused the response body for longer than upstream_idle_timeout")

// buffered reports a response body that arrived whole with its head
// (h1.Body.Buffered): no read of it waits for the upstream, so it needs no
// idle bound.
func buffered(body io.Reader) bool {
	b, ok := body.(interface{ Buffered() bool })
	return ok && b.Buffered()
}

// idleBody bounds the wait for each read of an upstream response body that
// is not a stream (modifyResponse unwraps streams before their first read).
type idleBody struct {
	rc      io.ReadCloser
	ex      *exchange
	bound   time.Duration
	timer   *time.Timer
	expired atomic.Bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.timer == nil {
		b.timer = time.AfterFunc(b.bound, b.expire)
	} else {
		b.timer.Reset(b.bound)
	}
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF && b.expired.Load() {
		err = errUpstreamIdle
	}
	return n, err
}

// expire closes the upstream body, which unblocks the pending read (and
// closes the upstream connection: it is not reused).
func (b *idleBody) expire() {
	b.expired.Store(true)
	b.ex.limitHit(limitUpstreamIdle)
	_ = b.rc.Close()
}

func (b *idleBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	return b.rc.Close()
}
