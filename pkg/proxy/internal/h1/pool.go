package h1

import (
	"context"
	"time"
)

// sweep closes idle connections that are too old or that the upstream
// closed, until Close.
func (t *Transport) sweep() {
	defer close(t.swept)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		t.mu.Lock()
		var drop []*conn
		for addr, conns := range t.idle {
			kept := conns[:0]
			for _, c := range conns {
				if now.Sub(c.since) > t.idleTime || !c.alive() {
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
		for addr, slots := range t.dials {
			if len(slots) == 0 {
				delete(t.dials, addr) // a dial that still holds it finishes harmlessly
			}
		}
		t.mu.Unlock()
		for _, c := range drop {
			c.nc.Close()
		}
	}
}

// alive peeks at the socket without blocking: an idle connection must have
// nothing to read; EOF means the upstream closed it. Where the platform
// cannot peek (alive_other.go), only buffered bytes mark it dead.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.fd < 0 {
		return true
	}
	return peekIdle(c.fd)
}

// get returns a live idle connection to addr or dials one (dial.go).
func (t *Transport) get(ctx context.Context, addr string) (*conn, bool, error) {
	if c := t.idleConn(addr); c != nil {
		return c, true, nil
	}
	return t.dial(ctx, addr)
}

// idleConn takes the most recently used live idle connection to addr, or
// returns nil.
func (t *Transport) idleConn(addr string) *conn {
	for {
		t.mu.Lock()
		conns := t.idle[addr]
		if len(conns) == 0 {
			t.mu.Unlock()
			return nil
		}
		c := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[addr] = conns[:len(conns)-1]
		t.mu.Unlock()
		if time.Since(c.since) < t.idleTime && c.alive() {
			return c
		}
		c.nc.Close()
	}
}

func (t *Transport) put(addr string, c *conn) {
	c.since = time.Now()
	t.mu.Lock()
	if !t.closed && len(t.idle[addr]) < t.maxIdle {
		t.idle[addr] = append(t.idle[addr], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// CloseIdleConnections closes the pooled connections. Connections in use
// are not affected.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, conns := range idle {
		for _, c := range conns {
			c.nc.Close()
		}
	}
}

// Close stops the sweeper, waits for it to return and closes the idle
// connections; connections in use are closed when their response ends
// instead of being pooled. A request sent after Close still works, on a
// connection of its own.
func (t *Transport) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.stop)
	}
	t.mu.Unlock()
	<-t.swept
	t.CloseIdleConnections()
	return nil
}

// Idle returns the number of pooled connections to addr.
func (t *Transport) Idle(addr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle[addr])
}

// Dialing returns the number of dials in progress, to every address.
func (t *Transport) Dialing() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.dials {
		n += len(s)
	}
	return n
}
