// Package h1 is the proxy's HTTP/1.1 wire client for scheme=http
// upstreams: the connection pool, the request writer, the response reader,
// bodies and the hijacked stream writer. Its API is narrow, in the manner of
// net/http/internal: pkg/proxy decides policy (which upstream, whether to
// retry, timeouts, what to log) and h1 only speaks the protocol.
//
// A Transport never retries. A request that fails on a pooled connection
// before any response byte arrived returns an error wrapping ErrStaleConn;
// the caller may send it again (pkg/proxy's outbound.go does, for idempotent
// requests without a body).
package h1

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
	"os"
	"sync"
	"syscall"
	"time"
)

// Config configures a Transport.
type Config struct {
	// Dial opens a connection to addr (host:port); the context carries the
	// connect timeout.
	Dial            func(ctx context.Context, addr string) (net.Conn, error)
	HeaderTimeout   time.Duration // response header timeout, from the end of the request
	ConnectTimeout  time.Duration // dial timeout
	MaxResponseHead int64         // bytes a response head may take, 1xx heads included
	MaxIdlePerHost  int           // idle connections kept per address
	IdleTimeout     time.Duration // how long an idle connection is kept
}

// BufferSize is the size of a connection's read buffer and of the request
// and stream write buffers. A buffer is held for as long as an upstream
// connection lives, i.e. for the whole of a stream. Request heads are small
// and large bodies bypass the buffers, so 2 KiB (net/http's default is 4)
// saves memory per open stream at no measurable cost.
const BufferSize = 2 << 10

// Transport is the HTTP/1.1 client for scheme=http upstreams. Unlike
// http.Transport it runs each exchange on the caller's goroutine (no read
// and write loop per connection), which halves the goroutines of an open
// stream and saves two goroutine hand-offs per request. It keeps a LIFO pool
// of idle connections per address; a sweeper closes the ones idle for too
// long or closed by the upstream, so none lingers in CLOSE_WAIT. Close stops
// the sweeper.
type Transport struct {
	dialFn   func(ctx context.Context, addr string) (net.Conn, error)
	timeout  time.Duration // response header timeout
	connect  time.Duration // dial timeout
	maxHead  int64         // bytes a response head may take, 1xx heads included
	maxIdle  int           // idle connections per address
	idleTime time.Duration // how long a connection may stay idle
	stop     chan struct{} // closed by Close: ends the sweeper
	swept    chan struct{} // closed when the sweeper has returned

	mu     sync.Mutex
	closed bool
	idle   map[string][]*conn
	dials  map[string]chan struct{} // per address: a slot per dial in progress (dial.go)
}

type conn struct {
	nc net.Conn
	fd int // the socket, for alive; -1 if nc has none
	// deadline is set when the last response left its header deadline on
	// the socket (its body was already buffered); see readResponse.
	deadline bool
	cr       connReader // what br reads from
	br       *bufio.Reader
	since    time.Time // idle since
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc, fd: -1, cr: connReader{nc: nc, left: -1}}
	c.br = bufio.NewReaderSize(&c.cr, BufferSize)
	c.fd = socketFD(nc)
	return c
}

// connReader reads from the connection; while a response head is read it
// stops at the head's byte budget.
type connReader struct {
	nc   net.Conn
	left int64 // bytes the head may still take; negative: no limit
}

// ErrHeadTooLarge is returned when an upstream's response head exceeds
// Config.MaxResponseHead.
var ErrHeadTooLarge = errors.New("upstream response head too large")

func (r *connReader) Read(p []byte) (int, error) {
	if r.left < 0 {
		return r.nc.Read(p)
	}
	if r.left == 0 {
		return 0, ErrHeadTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.nc.Read(p)
	r.left -= int64(n)
	return n, err
}

const sweepEvery = 30 * time.Second

var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, BufferSize) }}

// New returns a Transport and starts its sweeper; Close stops it.
func New(cfg Config) *Transport {
	t := &Transport{dialFn: cfg.Dial, timeout: cfg.HeaderTimeout, connect: cfg.ConnectTimeout,
		maxHead: cfg.MaxResponseHead, maxIdle: cfg.MaxIdlePerHost, idleTime: cfg.IdleTimeout,
		stop: make(chan struct{}), swept: make(chan struct{}), idle: map[string][]*conn{}, dials: map[string]chan struct{}{}}
	go t.sweep()
	return t
}

// ErrStaleConn marks a failure on a pooled connection before any response
// byte: the upstream had closed it. Nothing was processed, but the request
// was written, so only an idempotent request may be sent again. The
// Transport never does that itself.
var ErrStaleConn = errors.New("pooled upstream connection was closed")

// RoundTrip sends req on a pooled or new connection; 1xx responses go to
// the request context's httptrace.ClientTrace, as with http.Transport.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, nil)
}

// An InterimSink receives the 1xx responses of a request.
type InterimSink interface {
	Interim(code int, h http.Header) error
}

// Send is RoundTrip with 1xx responses passed to sink.
func (t *Transport) Send(req *http.Request, sink InterimSink) (*http.Response, error) {
	return t.roundTrip(req, sink)
}

func (t *Transport) roundTrip(req *http.Request, sink InterimSink) (*http.Response, error) {
	ctx := req.Context()
	addr := req.URL.Host
	c, reused, err := t.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	return t.exchange(req, addr, c, reused, sink)
}

// exchange sends req on c, a connection to addr taken from the pool (reused)
// or just dialled, and reads the response.
func (t *Transport) exchange(req *http.Request, addr string, c *conn, reused bool, sink InterimSink) (*http.Response, error) {
	ctx := req.Context()
	var err error
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
			err = fmt.Errorf("%w: %w", ErrStaleConn, err)
		}
		return nil, err
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		res.Body = &upgraded{c: c, watch: watch}
		return res, nil
	}
	res.Body = &Body{rc: res.Body, t: t, c: c, addr: addr, watch: watch, wrote: wrote,
		reusable: !res.Close && !req.Close, buffered: c.deadline}
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
func (t *Transport) readResponse(ctx context.Context, c *conn, req *http.Request, wrote *bodyWrite, sink InterimSink) (*http.Response, error) {
	if wrote == nil {
		if err := c.nc.SetReadDeadline(time.Now().Add(t.timeout)); err != nil {
			return nil, err
		}
	}
	c.cr.left = t.maxHead // the buffer is empty: a connection is pooled only so
	defer func() { c.cr.left = -1 }()
	for {
		res, ok, err := readSimpleResponse(c.br, req) // simplehead.go
		if !ok {
			res, err = http.ReadResponse(c.br, req)
		}
		if err != nil {
			// Only our read deadline is the header timeout. Other errors
			// whose Timeout is true, such as ETIMEDOUT from TCP_USER_TIMEOUT
			// (the upstream's node is gone), are a broken connection, which
			// the caller may retry elsewhere.
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, ErrHeaderTimeout
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
			if err := sink.Interim(res.StatusCode, res.Header); err != nil {
				return nil, err
			}
		} else if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// ErrHeaderTimeout is returned when no response head arrived within
// Config.HeaderTimeout. It is a net.Error whose Timeout is true: a timeout
// (504), not a dial failure.
var ErrHeaderTimeout error = headerTimeout{}

type headerTimeout struct{}

func (headerTimeout) Error() string   { return "timeout awaiting upstream response headers" }
func (headerTimeout) Timeout() bool   { return true }
func (headerTimeout) Temporary() bool { return true }
