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
	"sync/atomic"
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

	mu   sync.Mutex
	idle map[string][]*h1Conn
}

type h1Conn struct {
	nc    net.Conn
	br    *bufio.Reader
	since time.Time // idle since
}

const h1SweepEvery = 30 * time.Second

var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, connWriteBuffer) }}

func newH1Transport(timeout time.Duration) *h1Transport {
	t := &h1Transport{timeout: timeout, idle: map[string][]*h1Conn{}}
	go t.sweep()
	return t
}

// sweep closes idle connections that are too old or that the upstream
// closed. It runs for the life of the process, like the transports.
func (t *h1Transport) sweep() {
	for range time.Tick(h1SweepEvery) {
		now := time.Now()
		t.mu.Lock()
		var drop []*h1Conn
		for addr, conns := range t.idle {
			kept := conns[:0]
			for _, c := range conns {
				if now.Sub(c.since) > idleConnTimeout || !c.alive() {
					drop = append(drop, c)
				} else {
					kept = append(kept, c)
				}
			}
			clear(conns[len(kept):])
			if len(kept) == 0 {
				delete(t.idle, addr)
			} else {
				t.idle[addr] = kept
			}
		}
		t.mu.Unlock()
		for _, c := range drop {
			c.nc.Close()
		}
	}
}

// alive peeks at the socket without blocking: an idle connection must have
// nothing to read; EOF means the upstream closed it.
func (c *h1Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(err, syscall.EAGAIN) // nothing to read; anything else is EOF, data or an error
		return true
	})
	return alive
}

// get returns a live idle connection to addr or dials one.
func (t *h1Transport) get(ctx context.Context, addr string) (*h1Conn, bool, error) {
	for {
		t.mu.Lock()
		conns := t.idle[addr]
		if len(conns) == 0 {
			t.mu.Unlock()
			break
		}
		c := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[addr] = conns[:len(conns)-1]
		t.mu.Unlock()
		if time.Since(c.since) < idleConnTimeout && c.alive() {
			return c, true, nil
		}
		c.nc.Close()
	}
	nc, err := dialTCP4(ctx, "tcp4", addr)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, connReadBuffer)}, false, nil
}

func (t *h1Transport) put(addr string, c *h1Conn) {
	c.since = time.Now()
	t.mu.Lock()
	if len(t.idle[addr]) < maxIdleConnsPerHost {
		t.idle[addr] = append(t.idle[addr], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// errReusedBroken marks a failure on a pooled connection before any
// response byte: the upstream had closed it. Nothing was processed, but the
// request was written, so only idempotent requests are retried.
var errReusedBroken = errors.New("pooled upstream connection was closed")

// RoundTrip sends req on a pooled or new connection. A pooled connection
// the upstream closed meanwhile is replaced by a new one, once, for requests
// without a body (the balancer's retry rules apply to everything else).
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.roundTrip(req)
	if errors.Is(err, errReusedBroken) && (req.Body == nil || req.Body == http.NoBody) && idempotent(req.Method) {
		res, err = t.roundTrip(req)
	}
	return res, err
}

func (t *h1Transport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	addr := req.URL.Host
	c, reused, err := t.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })

	var wrote *bodyWrite // the body is written concurrently: the upstream may answer first
	if req.Body == nil || req.Body == http.NoBody {
		err = writeRequest(c.nc, req)
	} else {
		wrote = &bodyWrite{done: make(chan struct{}), timeout: t.timeout}
		go wrote.run(c, req)
	}
	var res *http.Response
	if err == nil {
		res, err = t.readResponse(ctx, c, req, wrote)
	}
	if err != nil {
		stop()
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
		res.Body = &h1Upgraded{c: c, stop: stop}
		return res, nil
	}
	res.Body = &h1Body{rc: res.Body, t: t, c: c, addr: addr, stop: stop, wrote: wrote,
		reusable: !res.Close && !req.Close}
	return res, nil
}

// bodyWrite is a request written by its own goroutine. A failed write
// records its error before closing the connection, so that the reader, woken
// by the close, finds the cause.
type bodyWrite struct {
	done    chan struct{}
	err     error
	timeout time.Duration

	mu      sync.Mutex
	headers bool // the response head arrived: no header deadline any more
}

func (w *bodyWrite) run(c *h1Conn, req *http.Request) {
	body := &readErr{r: req.Body}
	out := *req
	out.Body = body
	err := writeRequest(c.nc, &out)
	if err != nil && body.err != nil {
		err = body.err // Request.Write hides the client body's error (e.g. *http.MaxBytesError)
	}
	if err == nil {
		w.mu.Lock()
		if !w.headers {
			_ = c.nc.SetReadDeadline(time.Now().Add(w.timeout))
		}
		w.mu.Unlock()
	}
	w.err = err
	close(w.done)
	if err != nil {
		c.nc.Close()
	}
}

// headersRead stops the writer from starting the header timeout.
func (w *bodyWrite) headersRead() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.headers = true
	w.mu.Unlock()
}

// readErr remembers the error of a request body.
type readErr struct {
	r   io.ReadCloser
	err error
}

func (b *readErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *readErr) Close() error { return b.r.Close() }

// failed returns the write's error if it has finished with one.
func (w *bodyWrite) failed() error {
	if w == nil {
		return nil
	}
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// finished reports whether the write completed without error.
func (w *bodyWrite) finished() bool {
	if w == nil {
		return true
	}
	select {
	case <-w.done:
		return w.err == nil
	default:
		return false
	}
}

func writeRequest(w io.Writer, req *http.Request) error {
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	return err
}

// readResponse reads the response head within the route's timeout, passing
// 1xx interim responses to the request's trace (ReverseProxy forwards them).
// As with http.Transport, the timeout starts once the request is written: a
// body being uploaded starts it when it is done (see bodyWrite).
func (t *h1Transport) readResponse(ctx context.Context, c *h1Conn, req *http.Request, wrote *bodyWrite) (*http.Response, error) {
	if wrote == nil {
		if err := c.nc.SetReadDeadline(time.Now().Add(t.timeout)); err != nil {
			return nil, err
		}
	}
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
			return res, c.nc.SetReadDeadline(time.Time{})
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
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

// h1Body returns its connection to the pool once the body was read to the
// end and the request body was fully written; otherwise it closes it. Close
// may run while a Read is blocked (a stream ended at shutdown): closing the
// connection first is what unblocks it.
type h1Body struct {
	rc       io.ReadCloser
	t        *h1Transport
	c        *h1Conn
	addr     string
	stop     func() bool
	wrote    *bodyWrite
	reusable bool
	eof      atomic.Bool
	closed   atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	reuse := b.stop() && b.reusable && b.eof.Load() && b.c.br.Buffered() == 0 && b.wrote.finished()
	if !reuse {
		b.c.nc.Close()
	}
	err := b.rc.Close() // after closing the connection: it would drain an unread body
	if reuse {
		b.t.put(b.addr, b.c)
	}
	return err
}

// h1Upgraded is the upstream side of a switched protocol (WebSocket).
type h1Upgraded struct {
	c    *h1Conn
	stop func() bool
	once sync.Once
}

func (u *h1Upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *h1Upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *h1Upgraded) Close() error {
	u.once.Do(func() { u.stop() })
	return u.c.nc.Close()
}
