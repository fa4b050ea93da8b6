package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"syscall"
	"time"
)

// h1Transport is the HTTP/1.1 client for scheme=http upstreams. Unlike
// http.Transport it runs each exchange on the caller's goroutine (no read
// and write loop per connection), which halves the goroutines of an open
// stream and saves two goroutine hand-offs per request. It keeps a LIFO pool
// of idle connections per address; a sweeper closes the ones idle for too
// long or closed by the upstream, so none lingers in CLOSE_WAIT.
type h1Transport struct {
	timeout time.Duration // response header timeout
	connect time.Duration // dial timeout
	maxHead int64         // bytes a response head may take, 1xx heads included

	mu    sync.Mutex
	idle  map[string][]*h1Conn
	dials map[string]chan struct{} // per address: a slot per dial in progress (h1dial.go)
}

type h1Conn struct {
	nc net.Conn
	fd int // the socket, for alive; -1 if nc has none
	// deadline is set when the last response left its header deadline on
	// the socket (its body was already buffered); see readResponse.
	deadline bool
	cr       connReader // what br reads from
	br       *bufio.Reader
	since    time.Time // idle since
}

// maxResponseHead bounds the response head of an upstream (status line and
// headers, 1xx responses included), like http.Transport's
// MaxResponseHeaderBytes but tighter than its 10 MB default. The bound is on
// bytes, so it also bounds a single header line and the number of headers.
const maxResponseHead = 1 << 20

func newH1Conn(nc net.Conn) *h1Conn {
	c := &h1Conn{nc: nc, fd: -1, cr: connReader{nc: nc, left: -1}}
	c.br = bufio.NewReaderSize(&c.cr, connReadBuffer)
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	return c
}

// connReader reads from the connection; while a response head is read it
// stops at the head's byte budget.
type connReader struct {
	nc   net.Conn
	left int64 // bytes the head may still take; negative: no limit
}

// errHeadTooLarge is returned when an upstream's response head exceeds
// maxResponseHead.
var errHeadTooLarge = errors.New("upstream response head too large")

func (r *connReader) Read(p []byte) (int, error) {
	if r.left < 0 {
		return r.nc.Read(p)
	}
	if r.left == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.nc.Read(p)
	r.left -= int64(n)
	return n, err
}

const h1SweepEvery = 30 * time.Second

var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, connWriteBuffer) }}

func newH1Transport(timeout, connect time.Duration) *h1Transport {
	t := &h1Transport{timeout: timeout, connect: connect, maxHead: maxResponseHead,
		idle: map[string][]*h1Conn{}, dials: map[string]chan struct{}{}}
	go t.sweep()
	return t
}

// errReusedBroken marks a failure on a pooled connection before any
// response byte: the upstream had closed it. Nothing was processed, but the
// request was written, so only idempotent requests are retried.
var errReusedBroken = errors.New("pooled upstream connection was closed")

// RoundTrip sends req on a pooled or new connection. A pooled connection
// the upstream closed meanwhile is replaced by a new one, once, for requests
// without a body (the balancer's retry rules apply to everything else).
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.send(req, nil)
}

// interimSink receives 1xx responses. Without one, they go to the request
// context's httptrace.ClientTrace, as with http.Transport.
type interimSink interface {
	interim(code int, h http.Header) error
}

// send is RoundTrip with 1xx responses passed to sink, if not nil.
func (t *h1Transport) send(req *http.Request, sink interimSink) (*http.Response, error) {
	res, err := t.roundTrip(req, sink)
	if errors.Is(err, errReusedBroken) && (req.Body == nil || req.Body == http.NoBody) && idempotent(req.Method) {
		res, err = t.roundTrip(req, sink)
	}
	return res, err
}

func (t *h1Transport) roundTrip(req *http.Request, sink interimSink) (*http.Response, error) {
	ctx := req.Context()
	addr := req.URL.Host
	c, reused, err := t.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// The client left (or reset its HTTP/2 stream) while the connection
		// was found: nothing was sent, so the connection stays clean.
		t.put(addr, c)
		return nil, ctx.Err()
	}
	if c.deadline && req.Body != nil && req.Body != http.NoBody {
		// Left by the last response; this one's starts after the body.
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			c.nc.Close()
			return nil, err
		}
		c.deadline = false
	}
	watch := watchContext(ctx, c)

	var wrote *bodyWrite // the body is written concurrently: the upstream may answer first
	if req.Body == nil || req.Body == http.NoBody {
		err = writeRequest(c.nc, req)
	} else {
		wrote = &bodyWrite{done: make(chan struct{}), timeout: t.timeout}
		go wrote.run(c, req)
	}
	var res *http.Response
	if err == nil {
		res, err = t.readResponse(ctx, c, req, wrote, sink)
	}
	if err != nil {
		watch.detach()
		c.nc.Close() // also ends a body write in progress
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if werr := wrote.failed(); werr != nil {
			return nil, werr // e.g. the client's body went over max_body
		}
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			err = fmt.Errorf("%w: %w", errReusedBroken, err)
		}
		return nil, err
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		res.Body = &h1Upgraded{c: c, watch: watch}
		return res, nil
	}
	res.Body = &h1Body{rc: res.Body, t: t, c: c, addr: addr, watch: watch, wrote: wrote,
		reusable: !res.Close && !req.Close}
	return res, nil
}

func writeRequest(w io.Writer, req *http.Request) error {
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	var err error
	if !writeHead(bw, req) {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	return err
}

// readResponse reads the response head within the route's timeout, passing
// 1xx interim responses to sink or the request's trace (ReverseProxy
// forwards them).
// As with http.Transport, the timeout starts once the request is written: a
// body being uploaded starts it when it is done (see bodyWrite).
func (t *h1Transport) readResponse(ctx context.Context, c *h1Conn, req *http.Request, wrote *bodyWrite, sink interimSink) (*http.Response, error) {
	if wrote == nil {
		if err := c.nc.SetReadDeadline(time.Now().Add(t.timeout)); err != nil {
			return nil, err
		}
	}
	c.cr.left = t.maxHead // the buffer is empty: a connection is pooled only so
	defer func() { c.cr.left = -1 }()
	for {
		res, err := http.ReadResponse(c.br, req)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errHeaderTimeout
			}
			return nil, err
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			wrote.headersRead()
			if res.StatusCode != http.StatusSwitchingProtocols && res.ContentLength >= 0 &&
				int64(c.br.Buffered()) >= res.ContentLength {
				// The whole body is in the buffer: no read will wait, so the
				// header deadline can stay until the next request replaces it.
				c.deadline = true
				return res, nil
			}
			c.deadline = false
			return res, c.nc.SetReadDeadline(time.Time{})
		}
		if sink != nil {
			if err := sink.interim(res.StatusCode, res.Header); err != nil {
				return nil, err
			}
		} else if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// errHeaderTimeout is a timeout (504), not a dial failure.
var errHeaderTimeout error = headerTimeout{}

type headerTimeout struct{}

func (headerTimeout) Error() string   { return "timeout awaiting upstream response headers" }
func (headerTimeout) Timeout() bool   { return true }
func (headerTimeout) Temporary() bool { return true }
