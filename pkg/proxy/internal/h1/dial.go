package h1

import (
	"context"
)

// maxDialsPerUpstream bounds the connections being set up to one upstream
// address at a time; more requests wait for a slot (or for their client to
// leave). A burst of requests to a cold upstream still opens connections
// quickly, but a flood cannot make the ingress open thousands at once.
const maxDialsPerUpstream = 32

type dialResult struct {
	c   *conn
	err error
}

// dial opens a connection to addr for a request, within the transport's
// connect timeout. The dial runs on its own and does not end with the
// request: a connection set up for a request whose client left meanwhile
// goes to the pool, as with http.Transport. Without that, a client that
// opens and cancels requests in a loop (HTTP/2 rapid reset) would make the
// ingress dial and drop one upstream connection per request.
func (t *Transport) dial(ctx context.Context, addr string) (*conn, bool, error) {
	slots := t.dialSlots(addr)
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	// While this request waited for a slot, another dial may have pooled
	// its connection.
	if c := t.idleConn(addr); c != nil {
		<-slots
		return c, true, nil
	}
	got := make(chan dialResult) // unbuffered: a result nobody takes goes to the pool
	go func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.connect)
		nc, err := t.dialFn(dctx, addr)
		cancel()
		<-slots
		r := dialResult{err: err}
		if err == nil {
			r.c = newConn(nc)
		}
		select {
		case got <- r:
		case <-ctx.Done():
			if r.c != nil {
				t.put(addr, r.c)
			}
		}
	}()
	select {
	case r := <-got:
		return r.c, false, r.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// dialSlots returns addr's dial semaphore.
func (t *Transport) dialSlots(addr string) chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.dials[addr]
	if s == nil {
		s = make(chan struct{}, maxDialsPerUpstream)
		t.dials[addr] = s
	}
	return s
}
