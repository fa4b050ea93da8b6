package proxy

import (
	"context"
	"errors"
	"syscall"
	"time"
)

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
// nothing to read; EOF means the upstream closed it. The descriptor is used
// outside RawConn.Control to save two allocations per request: it is valid
// because only the connection's owner calls alive, and never after Close.
func (c *h1Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.fd < 0 {
		return true
	}
	var buf [1]byte
	_, _, err := syscall.Recvfrom(c.fd, buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return errors.Is(err, syscall.EAGAIN) // nothing to read; anything else is EOF, data or an error
}

// get returns a live idle connection to addr or dials one (h1dial.go).
func (t *h1Transport) get(ctx context.Context, addr string) (*h1Conn, bool, error) {
	if c := t.idleConn(addr); c != nil {
		return c, true, nil
	}
	return t.dial(ctx, addr)
}

// idleConn takes the most recently used live idle connection to addr, or
// returns nil.
func (t *h1Transport) idleConn(addr string) *h1Conn {
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
		if time.Since(c.since) < idleConnTimeout && c.alive() {
			return c
		}
		c.nc.Close()
	}
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
