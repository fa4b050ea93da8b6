package h1

import (
	"context"
	"sync"
	"time"
)

// contextWatch closes an upstream connection when its request's context
// ends (the client left), until the connection is detached from the request:
// it then belongs to the pool or to a hijacked stream. Once the response
// has ended and only the request body is still being written (handOff), the
// context's end only makes a blocked write fail, so that the writer, not the
// context, decides whether the connection is reused.
type contextWatch struct {
	c    *conn
	stop func() bool

	mu        sync.Mutex
	detached  bool
	closed    bool // the context closed the connection
	handedOff bool
	poisoned  bool // the context set a write deadline in the past
}

// aLongTimeAgo is a deadline in the past.
var aLongTimeAgo = time.Unix(1, 0)

func watchContext(ctx context.Context, c *conn) *contextWatch {
	w := &contextWatch{c: c}
	w.stop = context.AfterFunc(ctx, w.fire)
	return w
}

func (w *contextWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.detached:
	case w.handedOff:
		_ = w.c.nc.SetWriteDeadline(aLongTimeAgo)
		w.poisoned = true
	default:
		w.closed = true
		w.c.nc.Close()
	}
}

func (w *contextWatch) handOff() {
	w.mu.Lock()
	w.handedOff = true
	w.mu.Unlock()
}

// detach ends the watch and reports whether the connection is still open.
func (w *contextWatch) detach() bool {
	w.mu.Lock()
	w.detached = true
	open, poisoned := !w.closed, w.poisoned
	w.poisoned = false
	w.mu.Unlock()
	w.stop()
	if poisoned && open {
		_ = w.c.nc.SetWriteDeadline(time.Time{})
	}
	return open
}
