package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// The response on its way back to the client: the route's response
// headers and the tracking of streams (modifyResponse, for both paths), the
// copy of the body on the direct path, 1xx responses, and the copy buffers.
// Streams themselves are in stream.go and hijack.go, failures in errors.go.

// modifyResponse applies the route's response headers and tracks streams:
// text/event-stream responses, every response of a stream=true route, and
// upgraded connections. A tracked stream is counted in the active-streams
// gauge and can be ended cleanly at shutdown.
//
// A stream has no idle timeout: its body loses the upstream idle bound
// (bounds.go) before its first read.
//
// A 101 that switches to another protocol than the one asked for is an
// error (ReverseProxy would refuse it too, but only after this, leaving the
// stream registered and the upstream connection open); returning it makes
// ReverseProxy close the body and answer 502.
func (rs *routeState) modifyResponse(res *http.Response) error {
	rs.hideResponseHeaders(res.Header)
	rs.setHeaders(res.Header)
	upgraded := res.StatusCode == http.StatusSwitchingProtocols
	if upgraded {
		if err := checkUpgrade(res); err != nil {
			return err
		}
		if ex, ok := res.Request.Context().Value(exchangeKey{}).(*exchange); ok {
			ex.status = http.StatusSwitchingProtocols // the hijacked conn bypasses WriteHeader
		}
	}
	if upgraded || rs.route.Stream || isEventStream(res.Header.Get("Content-Type")) {
		if ib, ok := res.Body.(*idleBody); ok {
			res.Body = ib.rc
		}
		res.Body = rs.h.streams.track(res.Body, rs.stats, upgraded)
		if upgraded {
			// Whatever way ReverseProxy leaves the exchange (a failed
			// hijack included), the upgraded connection ends with it.
			body := res.Body
			context.AfterFunc(res.Request.Context(), func() { _ = body.Close() })
		}
	}
	return nil
}

// errUpgradeMismatch: the upstream switched to a protocol the client did
// not ask for.
var errUpgradeMismatch = errors.New("upstream switched to another protocol than the one requested")

// checkUpgrade accepts a 101 whose Upgrade names the protocol the request
// asked for (compared as ReverseProxy does).
func checkUpgrade(res *http.Response) error {
	want, got := upgradeType(res.Request.Header), upgradeType(res.Header)
	if got == "" || !strings.EqualFold(want, got) {
		return fmt.Errorf("%w: asked %q, got %q", errUpgradeMismatch, want, got)
	}
	return nil
}

func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func (rs *routeState) setHeaders(h http.Header) {
	for i, hd := range rs.route.Headers {
		h[hd.Name] = rs.headers[i]
	}
}

func isEventStream(ct string) bool {
	const sse = "text/event-stream"
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse) &&
		(len(ct) == len(sse) || ct[len(sse)] == ';' || ct[len(sse)] == ' ')
}

// removeHopHeaders removes the hop-by-hop headers of a response.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for k := range h {
		if isHopHeader(k) {
			delete(h, k)
		}
	}
}

// copyBody copies the upstream body to the client, flushing after every
// write if flush is set. It returns the first read or write error; read
// errors other than the client going away are logged at debug level.
//
// A stream holds its buffer while it waits for the next event, for as long
// as it is open, so a stream starts with a small one and moves to the
// regular one only when a read fills it (a bulk stream).
func (rs *routeState) copyBody(ex *exchange, body io.Reader, flush bool) error {
	pool := &copyBuffers
	if flush {
		pool = &streamBuffers
	}
	bp := pool.Get().(*[]byte)
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := ex.Write(buf[:n]); err != nil {
				return err
			}
			if flush {
				ex.Flush()
			}
			if n == len(buf) && pool == &streamBuffers {
				pool.Put(bp)
				pool = &copyBuffers
				bp = pool.Get().(*[]byte)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if !errors.Is(rerr, context.Canceled) {
				rs.h.errorLog.Printf("read error during body copy: %v", rerr)
			}
			return rerr
		}
	}
}

// Interim passes a 1xx response to the client (the direct path's
// h1.InterimSink).
func (e *exchange) Interim(code int, h http.Header) error {
	dst := e.Header()
	for k, vv := range h {
		dst[k] = vv
	}
	e.WriteHeader(code)
	clear(dst) // WriteHeader does not clear them for 1xx
	return nil
}

// bufferPool lends ReverseProxy its copy buffers. A stream holds its buffer
// for as long as it is open, so the buffer is small (ReverseProxy would
// allocate 32 KiB); an event rarely needs more in one read, and bulk bodies
// only pay a few more system calls.
type bufferPool struct{}

const copyBufferSize = 4 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// streamBufferSize is the first copy buffer of a stream on the direct path:
// an event rarely needs more, and an open stream holds it while idle.
const streamBufferSize = 1 << 10

var streamBuffers = sync.Pool{New: func() any { b := make([]byte, streamBufferSize); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
