package h1

import (
	"context"
	"net/http"
)

// A Conn is a connection to an upstream taken before its request is sent,
// for a caller that races connects to several upstreams (pkg/proxy's
// hedge.go). Nothing of a request has been written on it: the caller sends
// one request on it with SendOn, or gives it back to the pool with Release,
// exactly once. A Conn is a value (no allocation on the hot path); its zero
// value holds no connection.
type Conn struct {
	t      *Transport
	addr   string
	c      *conn
	reused bool
}

// Pooled takes a live idle connection to addr, if there is one.
func (t *Transport) Pooled(addr string) (Conn, bool) {
	if c := t.idleConn(addr); c != nil {
		return Conn{t: t, addr: addr, c: c, reused: true}, true
	}
	return Conn{}, false
}

// Dial opens a connection to addr as a request would (dial.go: the dial
// slots and the connect timeout apply, and an idle connection pooled while
// it waited for a slot is taken instead).
func (t *Transport) Dial(ctx context.Context, addr string) (Conn, error) {
	c, reused, err := t.dial(ctx, addr)
	if err != nil {
		return Conn{}, err
	}
	return Conn{t: t, addr: addr, c: c, reused: reused}, nil
}

// Open reports whether c holds a connection.
func (c Conn) Open() bool { return c.c != nil }

// Release puts c back in the pool (or closes it if the pool is full).
func (c Conn) Release() { c.t.put(c.addr, c.c) }

// SendOn is Send on c, whose address must be req.URL.Host.
func (t *Transport) SendOn(c Conn, req *http.Request, sink InterimSink) (*http.Response, error) {
	return t.exchange(req, c.addr, c.c, c.reused, sink)
}
