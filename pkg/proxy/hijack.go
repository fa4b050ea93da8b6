package proxy

import (
	"io"
	"net/http"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
)

// An open stream inside net/http's handler costs about 20 KB of server
// state (bufio reader and writer, chunked writer, the deep handler stack and
// the background-read goroutine). For an HTTP/1.1 client on the direct path,
// a stream instead takes over the client connection once the upstream's
// response head is known, and h1.Stream writes the head, the chunked
// framing and the body there; the handler returns. The connection is closed
// when the stream ends (the head says Connection: close). Shutdown still
// ends these streams (EndStreams) and waits for them (streams.h1Drained).

// hijackable reports whether the response to r may leave net/http: an
// HTTP/1.1 request without a body, a tracked stream on the direct path, a
// final status whose response has a body, no announced trailers.
func hijackable(r *http.Request, res *http.Response) (*streamBody, *h1.Body, bool) {
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.ContentLength != 0 || r.Method == http.MethodHead ||
		res.StatusCode < 200 || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified ||
		len(res.Trailer) > 0 {
		return nil, nil, false
	}
	sb, ok := res.Body.(*streamBody)
	if !ok {
		return nil, nil, false
	}
	hb, ok := sb.ReadCloser.(*h1.Body)
	return sb, hb, ok
}

// hijackStream takes over the client connection for the stream res and
// reports whether it did; if not, nothing was written and the caller serves
// the response as usual. ex.Header() holds the response headers.
func (rs *routeState) hijackStream(ex *exchange, r *http.Request, res *http.Response) bool {
	sb, hb, ok := hijackable(r, res)
	if !ok {
		return false
	}
	conn, _, err := http.NewResponseController(ex.ResponseWriter).Hijack()
	if err != nil {
		return false
	}
	header := ex.Header()
	ex.hijacked = true // from here on, the stream's goroutine owns ex, r and res
	// net/http's response is done with, but it keeps the connection's
	// state alive for as long as something refers to it: its 4 KiB read
	// buffer, the 2 KiB buffer before chunking, the response and conn
	// structs (~8 KB). ex lives as long as the stream: let go of it.
	ex.ResponseWriter = nil
	rs.h.streams.hijacked(sb)
	ex.status = res.StatusCode
	if !hb.Release() {
		// The request context ended first (the client left): the upstream
		// connection is already closed.
		conn.Close()
		go rs.endStream(ex, r, sb)
		return true
	}
	// The headers to send are in header; res lives as long as the stream
	// (its body reads the trailers into it): let go of its copy.
	res.Header = nil
	s := &h1.Stream{
		Conn: conn, Res: res, Header: header, Body: sb, Cancel: hb,
		WriteTimeout:  ex.wbound,
		WriteTimedOut: func() { ex.limitHit(limitClientWrite) },
		ReadFailed:    func(err error) { rs.h.errorLog.Printf("read error during body copy: %v", err) },
		Done: func(written int64) {
			ex.bytes += written
			rs.endStream(ex, r, sb)
		},
	}
	s.Start()
	return true
}

// endStream closes the upstream body (the stream leaves the registry) and
// records the request.
func (rs *routeState) endStream(ex *exchange, r *http.Request, body io.Closer) {
	_ = body.Close()
	rs.h.record(ex, r)
}
