package h1

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
	body    readErr

	mu      sync.Mutex
	headers bool          // the response head arrived: no header deadline any more
	ended   bool          // the write finished (err is set)
	then    func(ok bool) // set by handOff: decides the connection's fate
}

func (w *bodyWrite) run(c *conn, req *http.Request) {
	body := &w.body
	body.r = req.Body
	out := *req
	out.Body = body
	err := writeRequest(c.nc, &out)
	if err != nil && body.err != nil {
		err = body.err // Request.Write hides the client body's error (e.g. *http.MaxBytesError)
	}
	w.mu.Lock()
	if err == nil && !w.headers {
		_ = c.nc.SetReadDeadline(time.Now().Add(w.timeout))
	}
	w.err, w.ended = err, true
	then := w.then
	w.mu.Unlock()
	close(w.done)
	if err != nil {
		c.nc.Close()
	}
	if then != nil {
		then(err == nil)
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

// handOff leaves the fate of the connection to the writer when the response
// ended while the request body is still being written (the upstream
// answered before reading all of it, or the writer has not yet noted its
// end): then runs when the write finishes. If the write has already
// finished, it does nothing and reports pending false and whether the write
// succeeded.
func (w *bodyWrite) handOff(watch *contextWatch, then func(ok bool)) (pending, ok bool) {
	if w == nil {
		return false, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return false, w.err == nil
	}
	watch.handOff()
	w.then = then
	return true, false
}

// readErr remembers the error of a request body, and its end.
type readErr struct {
	r   io.ReadCloser
	err error
	eof atomic.Bool
}

func (b *readErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	} else if err != nil {
		b.err = err
	}
	return n, err
}

func (b *readErr) Close() error { return b.r.Close() }

// settleWait bounds how long the end of a response waits for the writer of
// a request body it has read whole (see settle).
const settleWait = 100 * time.Millisecond

// settle waits, briefly, for a writer that has read the whole request body
// to finish its last write: the upstream answered after reading it, so the
// writer is about to finish, and the connection is pooled before the client
// has the end of the response (and sends its next request). A write still
// reading the client's body is not waited for (the upstream answered
// early); handOff takes over in both cases.
func (w *bodyWrite) settle() {
	if w == nil || !w.body.eof.Load() {
		return
	}
	select {
	case <-w.done:
		return
	default:
	}
	t := time.NewTimer(settleWait)
	select {
	case <-w.done:
	case <-t.C:
	}
	t.Stop()
}

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

// Body is the body of a response from a Transport. It returns its
// connection to the pool as soon as the upstream's response has ended (at
// the read that returns io.EOF), before the caller passes the last bytes
// on, as http.Transport does: a client that sends its
// next request as soon as it has the response finds the connection idle.
// Closed before the end, it closes the connection. Close may run while a
// Read is blocked (a stream ended at shutdown): closing the connection first
// is what unblocks it.
type Body struct {
	rc       io.ReadCloser
	t        *Transport
	c        *conn
	addr     string
	watch    *contextWatch
	wrote    *bodyWrite
	reusable bool
	buffered bool        // the whole body was in the read buffer with the head
	claimed  atomic.Bool // the connection's fate is decided (at the end, or by Close)
}

// Buffered reports whether the whole body arrived with the response head:
// then no Read waits for the upstream.
func (b *Body) Buffered() bool { return b.buffered }

// Release detaches the connection from the request context and reports
// whether the context had not closed it already. A hijacked stream calls it
// before its handler returns, which cancels that context; from then on only
// Read and Close end the connection.
func (b *Body) Release() bool { return b.watch.detach() }

func (b *Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF && b.claimed.CompareAndSwap(false, true) {
		b.ended()
	}
	return n, err
}

// ended decides the connection's fate once the response was read whole.
func (b *Body) ended() {
	if !b.reusable || b.c.br.Buffered() > 0 {
		b.watch.detach()
		b.c.nc.Close()
		return
	}
	if b.wrote == nil { // no request body: nothing to wait for (and no method value to allocate)
		b.recycle(true)
		return
	}
	b.wrote.settle()
	if pending, ok := b.wrote.handOff(b.watch, b.recycle); !pending {
		b.recycle(ok)
	}
}

// recycle pools the connection if the request was written whole (ok) and
// the context did not close it; otherwise it closes it.
func (b *Body) recycle(ok bool) {
	if b.watch.detach() && ok {
		b.t.put(b.addr, b.c)
		return
	}
	b.c.nc.Close()
}

func (b *Body) Close() error {
	if !b.claimed.CompareAndSwap(false, true) {
		return nil
	}
	if b.rc == http.NoBody { // nothing to read: the response has ended
		b.ended()
		return nil
	}
	b.watch.detach()
	b.c.nc.Close()
	return b.rc.Close() // after closing the connection: it would drain an unread body
}

// upgraded is the upstream side of a switched protocol (WebSocket).
type upgraded struct {
	c     *conn
	watch *contextWatch
}

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error {
	u.watch.detach()
	return u.c.nc.Close()
}
