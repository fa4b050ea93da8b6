package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// An open stream inside net/http's handler costs about 20 KB of server
// state (bufio reader and writer, chunked writer, the deep handler stack and
// the background-read goroutine). For an HTTP/1.1 client on the direct path,
// a stream instead takes over the client connection once the upstream's
// response head is known: the head and the chunked framing are written here,
// one small goroutine copies the body, another watches the client for a
// disconnect, and the handler returns. The connection is closed when the
// stream ends (the head says Connection: close). Shutdown still ends these
// streams (EndStreams) and waits for them (streams.drained).

// streamFrameHead is the room left before the data in a copy buffer for the
// chunk-size line; two bytes after it take the chunk's CRLF.
const streamFrameHead = 8

// maxPipelined bounds what a client may send while its stream is open (the
// bytes are discarded: the connection closes when the stream ends).
const maxPipelined = 64 << 10

// hijackable reports whether the response to r may leave net/http: an
// HTTP/1.1 request without a body, a tracked stream on the direct path, a
// final status whose response has a body, no announced trailers.
func hijackable(r *http.Request, res *http.Response) (*streamBody, *h1Body, bool) {
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.ContentLength != 0 || r.Method == http.MethodHead ||
		res.StatusCode < 200 || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified ||
		len(res.Trailer) > 0 {
		return nil, nil, false
	}
	sb, ok := res.Body.(*streamBody)
	if !ok {
		return nil, nil, false
	}
	hb, ok := sb.ReadCloser.(*h1Body)
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
	ex.hijacked = true // from here on, the stream's goroutine owns ex, r and res
	rs.h.streams.hijacked(sb)
	ex.status = res.StatusCode
	if !hb.release() {
		// The request context ended first (the client left): the upstream
		// connection is already closed.
		conn.Close()
		go rs.endStream(ex, r, sb)
		return true
	}
	s := &h1Stream{rs: rs, ex: ex, r: r, res: res, header: ex.Header(), body: sb, conn: conn, chunked: res.ContentLength < 0}
	go s.copy()
	go s.watch()
	return true
}

// h1Stream is a hijacked stream.
type h1Stream struct {
	rs      *routeState
	ex      *exchange
	r       *http.Request
	res     *http.Response
	header  http.Header // the response headers, taken before the handler returned
	body    *streamBody
	conn    net.Conn
	chunked bool
	done    atomic.Bool // the copy finished: the watcher must not cancel
	gone    atomic.Bool // the client went away
}

// watch reads the client connection until it fails (the client left, or
// copy closed it) and then cancels the upstream exchange.
func (s *h1Stream) watch() {
	var buf [64]byte
	for n := 0; n < maxPipelined; {
		m, err := s.conn.Read(buf[:])
		if err != nil {
			break
		}
		n += m
	}
	if !s.done.Load() {
		s.gone.Store(true)
		_ = s.body.ReadCloser.Close() // unblocks copy's read; the registry entry stays until copy closes it
	}
}

// copy writes the head, then every upstream read as it arrives, then the
// end of the body. An upstream failure closes the connection without the
// last chunk, so the client sees a cut response.
func (s *h1Stream) copy() {
	if s.wrote(s.writeHead()) && s.copyBody() && s.chunked {
		s.wrote(s.writeEnd()) // a failure here is the client's: nothing left to do
	}
	s.done.Store(true)
	s.conn.Close()
	s.rs.endStream(s.ex, s.r, s.body)
}

// bound sets the deadline of the next write to the client: a stream has no
// idle timeout, but a client that stops reading does not hold it forever.
func (s *h1Stream) bound() {
	if s.ex.wbound > 0 {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.ex.wbound))
	}
}

// wrote notes a write's outcome and reports whether it succeeded.
func (s *h1Stream) wrote(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.ex.limitHit(limitClientWrite)
	}
	return err == nil
}

// endStream closes the upstream body (the stream leaves the registry) and
// records the request.
func (rs *routeState) endStream(ex *exchange, r *http.Request, body io.Closer) {
	_ = body.Close()
	rs.h.record(ex, r)
}

func (s *h1Stream) writeHead() error {
	s.bound()
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(s.conn)
	code := s.res.StatusCode
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		bw.WriteString(strconv.Itoa(code))
		bw.WriteByte(' ')
		bw.WriteString(text)
	} else {
		bw.WriteString(strconv.Itoa(code))
		bw.WriteString(" status code ")
		bw.WriteString(strconv.Itoa(code))
	}
	bw.WriteString("\r\n")
	h := s.header
	h.Del("Content-Length")
	if !s.chunked {
		h["Content-Length"] = []string{strconv.FormatInt(s.res.ContentLength, 10)}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	err := h.Write(bw)
	if err == nil {
		if s.chunked {
			bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
		bw.WriteString("Connection: close\r\n\r\n")
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	return err
}

// copyBody copies the upstream body, one write per read, and reports
// whether it reached the end of the body. A stream starts with a small
// buffer and moves to the regular one when a read fills it.
func (s *h1Stream) copyBody() bool {
	pool := &streamBuffers
	bp := pool.Get().(*[]byte)
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		data := buf[streamFrameHead : len(buf)-2]
		n, rerr := s.body.Read(data)
		if n > 0 {
			frame := data[:n]
			if s.chunked {
				frame = chunkFrame(buf, n)
			}
			s.bound()
			if _, err := s.conn.Write(frame); !s.wrote(err) {
				s.gone.Store(true)
				return false
			}
			s.ex.bytes += int64(n)
			if n == len(data) && pool == &streamBuffers {
				pool.Put(bp)
				pool = &copyBuffers
				bp = pool.Get().(*[]byte)
			}
		}
		if rerr == io.EOF {
			return true
		}
		if rerr != nil {
			if !s.gone.Load() && !errors.Is(rerr, net.ErrClosed) {
				s.rs.h.errorLog.Printf("read error during body copy: %v", rerr)
			}
			return false
		}
	}
}

// chunkFrame frames the n bytes at buf[streamFrameHead:] as one chunk, in
// place, and returns the frame.
func chunkFrame(buf []byte, n int) []byte {
	var size [16]byte
	hex := strconv.AppendInt(size[:0], int64(n), 16)
	start := streamFrameHead - 2 - len(hex)
	copy(buf[start:], hex)
	buf[streamFrameHead-2], buf[streamFrameHead-1] = '\r', '\n'
	end := streamFrameHead + n
	buf[end], buf[end+1] = '\r', '\n'
	return buf[start : end+2]
}

// writeEnd writes the last chunk with the upstream's trailers, if any.
func (s *h1Stream) writeEnd() error {
	s.bound()
	if len(s.res.Trailer) == 0 {
		_, err := io.WriteString(s.conn, "0\r\n\r\n")
		return err
	}
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(s.conn)
	bw.WriteString("0\r\n")
	err := s.res.Trailer.Write(bw)
	if err == nil {
		bw.WriteString("\r\n")
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	return err
}
