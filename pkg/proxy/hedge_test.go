package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// gate holds the dials to one address: each dial reports its start on
// started and waits for release (or for its connect timeout), then fails
// like a dial whose SYNs were lost (fail) or connects for real.
type gate struct {
	started chan struct{}
	release chan struct{}
	fail    bool
}

func newGate(fail bool) *gate {
	return &gate{started: make(chan struct{}, 16), release: make(chan struct{}), fail: fail}
}

// fakeNet is a Handler's dialHook: real loopback dials, held by gates, and
// counted per address (dials, connections opened and closed).
type fakeNet struct {
	gates  map[string]*gate
	mu     sync.Mutex
	dials  map[string]int
	opened map[string]int
	closed map[string]*atomic.Int32
}

func newFakeNet(gates map[netip.AddrPort]*gate) *fakeNet {
	n := &fakeNet{gates: map[string]*gate{}, dials: map[string]int{}, opened: map[string]int{}, closed: map[string]*atomic.Int32{}}
	for a, g := range gates {
		n.gates[a.String()] = g
	}
	return n
}

func (n *fakeNet) dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials[addr]++
	closed := n.closed[addr]
	if closed == nil {
		closed = new(atomic.Int32)
		n.closed[addr] = closed
	}
	n.mu.Unlock()
	if g := n.gates[addr]; g != nil {
		g.started <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: "tcp4", Err: ctx.Err()}
		}
		if g.fail {
			return nil, &net.OpError{Op: "dial", Net: "tcp4", Err: context.DeadlineExceeded}
		}
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp4", addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.opened[addr]++
	n.mu.Unlock()
	return &countedConn{Conn: c, closed: closed}, nil
}

func (n *fakeNet) count(m map[string]int, a netip.AddrPort) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return m[a.String()]
}

type countedConn struct {
	net.Conn
	once   sync.Once
	closed *atomic.Int32
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.closed.Add(1) })
	return c.Conn.Close()
}

// hedgeFixture serves r through a Handler that dials through n.
func hedgeFixture(t *testing.T, n *fakeNet, logs io.Writer, r *route.Route) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := New(Config{Registerer: reg, Logger: newLogger(logs)})
	t.Cleanup(func() { _ = h.Close() })
	h.dialHook = n.dial
	h.SetTable(table(r))
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	return &fixture{h: h, reg: reg, front: front}
}

// routeOf is the one route's state.
func routeOf(t *testing.T, f *fixture) *routeState {
	t.Helper()
	for _, rs := range f.h.state.Load().routes {
		return rs
	}
	t.Fatal("no route")
	return nil
}

func upstreamOf(rs *routeState, a netip.AddrPort) *upstream {
	for _, u := range rs.ups {
		if u.addr == a {
			return u
		}
	}
	return nil
}

// eventually waits for cond, which the proxy makes true on its own
// goroutine; waitLimit is a hang guard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echo answers with its name, the method and the request body.
func echo(t *testing.T, name string) *httptest.Server {
	return backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, name+" "+r.Method+" "+string(b))
	})
}

// A request whose balancer picks an upstream whose dial hangs (its node cut
// off) is answered by the other upstream while that dial is still pending,
// not after connect_timeout; GET and POST alike. When the hung dial fails,
// its upstream is ejected.
func TestHedgeBlackholedUpstream(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			good := addrOf(t, echo(t, "good"))
			black := deadAddr(t)
			g := newGate(true)
			n := newFakeNet(map[netip.AddrPort]*gate{black: g})
			var logs syncBuffer
			r := testRoute("app.test", black, good)
			r.ConnectTimeout = time.Minute // the answer must not wait for it
			f := hedgeFixture(t, n, &logs, r)
			rs := routeOf(t, f)
			ub, ug := upstreamOf(rs, black), upstreamOf(rs, good)
			ug.inflight.Add(1) // the balancer picks the blackholed one first
			defer ug.inflight.Add(-1)

			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("payload")
			}
			res := f.do(t, f.newRequest(t, method, "app.test", "/", body))
			got := readAll(t, res.Body)
			want := "good " + method + " "
			if method == http.MethodPost {
				want += "payload"
			}
			if res.StatusCode != http.StatusOK || got != want {
				t.Fatalf("got %d %q, want 200 %q", res.StatusCode, got, want)
			}
			select {
			case <-g.started:
			default:
				t.Fatal("the blackholed upstream was never dialled: the hedge was not exercised")
			}
			// The blackholed dial is still held: the answer did not wait for it.
			if v, _ := gathered(t, f, "ingress_upstream_hedges_total", map[string]string{"route": "svc/default"}); v != 1 {
				t.Fatalf("hedges = %v, want 1", v)
			}
			eventually(t, "logged as hedged", func() bool {
				return strings.Contains(logs.String(), `"hedged":"`+black.String()+`"`)
			})
			if ub.health.until.Load() != 0 {
				t.Fatal("ejected before its dial failed")
			}

			close(g.release) // the dial fails, as at connect_timeout
			eventually(t, "ejected", func() bool { return ub.health.until.Load() != 0 })
			if v, _ := gathered(t, f, "ingress_upstream_ejections_total", map[string]string{"route": "svc/default", "reason": reasonConnect}); v != 1 {
				t.Fatalf("connect ejections = %v, want 1", v)
			}
			eventually(t, "released", func() bool { return ub.inflight.Load() == 0 })
			if d := n.count(n.dials, black); d != 1 {
				t.Fatalf("%d dials to the blackholed upstream, want 1", d)
			}
			// Ejected: the next request goes to the good one without a hedge.
			res = f.do(t, f.newRequest(t, http.MethodGet, "app.test", "/", nil))
			if got := readAll(t, res.Body); got != "good GET " {
				t.Fatalf("after the ejection: %q", got)
			}
			if d := n.count(n.dials, black); d != 1 {
				t.Fatalf("the ejected upstream was dialled again (%d dials)", d)
			}
		})
	}
}

// A route with one upstream has nothing to hedge with: one dial, which
// fails at connect_timeout, and a 502.
func TestHedgeOneUpstream(t *testing.T) {
	black := deadAddr(t)
	g := newGate(true) // never released: the dial ends at connect_timeout
	n := newFakeNet(map[netip.AddrPort]*gate{black: g})
	r := testRoute("app.test", black)
	r.ConnectTimeout = time.Second
	f := hedgeFixture(t, n, io.Discard, r)
	res := f.do(t, f.newRequest(t, http.MethodGet, "app.test", "/", nil))
	if res.StatusCode != http.StatusBadGateway && res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 502 or 504", res.StatusCode)
	}
	if d := n.count(n.dials, black); d != 1 {
		t.Fatalf("%d dials, want 1", d)
	}
	if v, _ := gathered(t, f, "ingress_upstream_hedges_total", map[string]string{"route": "svc/default"}); v != 0 {
		t.Fatalf("hedges = %v, want 0", v)
	}
}

// The losing dial's connection is not leaked: it goes to the pool, its
// upstream is not blamed, and closing the transports closes it.
func TestHedgeLoserPooled(t *testing.T) {
	slow, fast := addrOf(t, echo(t, "slow")), addrOf(t, echo(t, "fast"))
	g := newGate(false) // connects once released
	n := newFakeNet(map[netip.AddrPort]*gate{slow: g})
	r := testRoute("app.test", slow, fast)
	r.ConnectTimeout = time.Minute
	f := hedgeFixture(t, n, io.Discard, r)
	rs := routeOf(t, f)
	us, uf := upstreamOf(rs, slow), upstreamOf(rs, fast)
	uf.inflight.Add(1) // the balancer picks the slow one first
	res := f.do(t, f.newRequest(t, http.MethodPost, "app.test", "/", strings.NewReader("x")))
	if got := readAll(t, res.Body); got != "fast POST x" {
		t.Fatalf("got %q", got)
	}
	res.Body.Close()
	uf.inflight.Add(-1)
	<-g.started
	close(g.release)
	eventually(t, "the loser's connection pooled", func() bool { return rs.h1.Idle(slow.String()) == 1 })
	eventually(t, "the loser released", func() bool { return us.inflight.Load() == 0 })
	if o := n.count(n.opened, slow); o != 1 {
		t.Fatalf("%d connections opened to the slow upstream, want 1", o)
	}
	if us.health.fails.Load() != 0 || us.health.until.Load() != 0 {
		t.Fatal("the slow upstream was blamed for losing the race")
	}
	if d := rs.h1.Dialing(); d != 0 {
		t.Fatalf("%d dials still in progress", d)
	}
	// The pooled connection serves the next request to it.
	us.inflight.Add(-100) // prefer it
	res = f.do(t, f.newRequest(t, http.MethodGet, "app.test", "/", nil))
	us.inflight.Add(100)
	if got := readAll(t, res.Body); got != "slow GET " {
		t.Fatalf("got %q", got)
	}
	res.Body.Close()
	if o := n.count(n.opened, slow); o != 1 {
		t.Fatalf("%d connections opened to the slow upstream, want 1 (the pooled one reused)", o)
	}
	f.front.Close()
	_ = f.h.Close()
	eventually(t, "every connection closed", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		for a, o := range n.opened {
			if int(n.closed[a].Load()) != o {
				return false
			}
		}
		return true
	})
}

// The hedge never goes to an ejected upstream: with the only other one
// ejected, the slow dial is waited for.
func TestHedgeNotToEjected(t *testing.T) {
	black, other := deadAddr(t), addrOf(t, echo(t, "other"))
	g := newGate(true) // never released: the dial ends at connect_timeout
	n := newFakeNet(map[netip.AddrPort]*gate{black: g})
	r := testRoute("app.test", black, other)
	r.ConnectTimeout = time.Second
	f := hedgeFixture(t, n, io.Discard, r)
	rs := routeOf(t, f)
	uo := upstreamOf(rs, other)
	uo.health.until.Store(time.Now().Add(time.Hour).UnixNano()) // ejected
	res := f.do(t, f.newRequest(t, http.MethodGet, "app.test", "/", nil))
	res.Body.Close()
	if v, _ := gathered(t, f, "ingress_upstream_hedges_total", map[string]string{"route": "svc/default"}); v != 0 {
		t.Fatalf("hedges = %v, want 0: the hedge went to an ejected upstream", v)
	}
	if d := n.count(n.dials, black); d != 1 {
		t.Fatalf("%d dials to the slow upstream, want 1", d)
	}
}

// gatedPair is a route of two upstreams whose dials the test lets end:
// a blackholed one (gb, failing when released), which the balancer picks
// first, and a slow one (gs, connecting when released). The slow one's
// in-flight count is raised by one for that; the test lowers it at the end.
func gatedPair(t *testing.T) (f *fixture, rs *routeState, gb, gs *gate, ub, us *upstream) {
	black, slow := deadAddr(t), addrOf(t, echo(t, "slow"))
	gb, gs = newGate(true), newGate(false)
	n := newFakeNet(map[netip.AddrPort]*gate{black: gb, slow: gs})
	r := testRoute("app.test", black, slow)
	r.ConnectTimeout = time.Minute
	f = hedgeFixture(t, n, io.Discard, r)
	rs = routeOf(t, f)
	ub, us = upstreamOf(rs, black), upstreamOf(rs, slow)
	us.inflight.Add(1) // the balancer picks the blackholed one first
	return f, rs, gb, gs, ub, us
}

// bothStarted waits until the dials of both gates have started.
func bothStarted(t *testing.T, gb, gs *gate) {
	t.Helper()
	for _, g := range []*gate{gb, gs} {
		select {
		case <-g.started:
		case <-time.After(waitLimit):
			t.Fatal("the dials did not both start")
		}
	}
}

// A client that leaves while both dials are pending: each dial's outcome is
// still taken when it ends (the failed one ejects, the connected one is
// pooled) and the in-flight counts go back to zero.
func TestHedgeClientLeaves(t *testing.T) {
	f, rs, gb, gs, ub, us := gatedPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	req := f.newRequest(t, http.MethodGet, "app.test", "/", nil).WithContext(ctx)
	done := make(chan error, 1)
	go func() {
		res, err := f.front.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	bothStarted(t, gb, gs)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	// Both dials are held until the proxy has given up on the request.
	eventually(t, "the request given up", func() bool {
		v, _ := gathered(t, f, "ingress_upstream_errors_total", map[string]string{"route": "svc/default", "kind": kindCanceled})
		return v == 1
	})
	us.inflight.Add(-1)
	close(gb.release)
	close(gs.release)
	eventually(t, "the blackholed one ejected", func() bool { return ub.health.until.Load() != 0 })
	eventually(t, "the connection pooled", func() bool { return rs.h1.Idle(us.addr.String()) == 1 })
	eventually(t, "in-flight counts back to zero", func() bool { return ub.inflight.Load() == 0 && us.inflight.Load() == 0 })
	if us.health.fails.Load() != 0 || us.health.until.Load() != 0 {
		t.Fatal("the upstream that connected was blamed")
	}
}

// The first dial fails while the hedge is still dialling: its upstream is
// ejected at once and the request waits for the hedge.
func TestHedgeFirstFailsHedgeWins(t *testing.T) {
	f, _, gb, gs, ub, us := gatedPair(t)
	type answer struct {
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := f.front.Client().Do(f.newRequest(t, http.MethodPost, "app.test", "/", strings.NewReader("p")))
		if err != nil {
			done <- answer{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- answer{string(b), err}
	}()
	bothStarted(t, gb, gs)
	close(gb.release)
	eventually(t, "the blackholed one ejected", func() bool { return ub.health.until.Load() != 0 })
	select {
	case a := <-done:
		t.Fatalf("answered before the hedge connected: %+v", a)
	default:
	}
	close(gs.release)
	if a := <-done; a.err != nil || a.body != "slow POST p" {
		t.Fatalf("got %+v, want the hedge's answer", a)
	}
	us.inflight.Add(-1)
	eventually(t, "in-flight counts back to zero", func() bool { return ub.inflight.Load() == 0 && us.inflight.Load() == 0 })
}
