package proxy

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

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

// h1Body returns its connection to the pool once the body was read to the
// end and the request body was fully written; otherwise it closes it. Close
// may run while a Read is blocked (a stream ended at shutdown): closing the
// connection first is what unblocks it.
type h1Body struct {
	rc       io.ReadCloser
	t        *h1Transport
	c        *h1Conn
	addr     string
	stop     func() bool // detaches the connection from the request context
	stopOnce sync.Once
	stopped  bool // stop's result: the context had not closed the connection
	wrote    *bodyWrite
	reusable bool
	eof      atomic.Bool
	closed   atomic.Bool
}

// release detaches the connection from the request context (once) and
// reports whether the context had not closed it already. A hijacked stream
// calls it before its handler returns, which cancels that context.
func (b *h1Body) release() bool {
	b.stopOnce.Do(func() { b.stopped = b.stop() })
	return b.stopped
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
	reuse := b.release() && b.reusable && b.eof.Load() && b.c.br.Buffered() == 0 && b.wrote.finished()
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
