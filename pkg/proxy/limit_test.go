package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var rate10 = route.Rate{N: 10, Per: time.Second}

// nginxLimitReq is the computation of Nginx's limit_req for one address
// (ngx_http_limit_req_module: excess in thousandths of a request, time in
// whole milliseconds, the excess of refused requests not kept). It is the
// reference the limiter is compared with.
type nginxLimitReq struct {
	rate   int64 // requests per second × 1000 (r/m: × 1000 / 60)
	burst  int64 // × 1000
	seen   bool
	excess int64
	last   int64 // ms
}

func (n *nginxLimitReq) request(ms int64) bool {
	if !n.seen {
		n.seen, n.excess, n.last = true, 0, ms
		return true
	}
	elapsed := ms - n.last
	excess := n.excess - n.rate*elapsed/1000 + 1000
	if excess < 0 {
		excess = 0
	}
	if excess > n.burst {
		return false
	}
	n.excess, n.last = excess, ms
	return true
}

// TestLimiterNginxSequence: 10r/s with burst 5, twenty requests at t=0:
// six pass (1 + 5), then one more every 100 ms, as Nginx counts.
func TestLimiterNginxSequence(t *testing.T) {
	c := newClock()
	l := newLimiter(route.Limit{Rate: rate10, Burst: 5}, c.Now())
	key := limitKey(netip.MustParseAddr("192.0.2.1"))
	passed := 0
	for i := range 20 {
		_, ok, retry := l.admit(key, c.Now())
		if ok {
			passed++
		} else if retry != 100*time.Millisecond {
			t.Fatalf("request %d: retry %s, want 100ms", i, retry)
		}
	}
	if passed != 6 {
		t.Fatalf("%d of 20 passed at t=0, want 6", passed)
	}
	for step := range 10 {
		c.Add(50 * time.Millisecond)
		if _, ok, retry := l.admit(key, c.Now()); ok || retry != 50*time.Millisecond {
			t.Fatalf("step %d: +50ms passed=%t retry %s, want refused, 50ms", step, ok, retry)
		}
		c.Add(50 * time.Millisecond)
		if _, ok, _ := l.admit(key, c.Now()); !ok {
			t.Fatalf("step %d: +100ms refused", step)
		}
		if _, ok, _ := l.admit(key, c.Now()); ok {
			t.Fatalf("step %d: a second request in the same 100ms passed", step)
		}
	}
	// After a pause of burst × interval the full burst is back.
	c.Add(time.Second)
	passed = 0
	for range 20 {
		if _, ok, _ := l.admit(key, c.Now()); ok {
			passed++
		}
	}
	if passed != 6 {
		t.Fatalf("%d passed after a pause, want 6", passed)
	}
}

// TestLimiterMatchesNginx compares the limiter with Nginx's limit_req
// computation on random arrival schedules (whole milliseconds, as Nginx
// counts time), for several rates and bursts.
func TestLimiterMatchesNginx(t *testing.T) {
	for _, tc := range []struct {
		rate  route.Rate
		burst int
	}{
		{rate10, 5}, {rate10, 0}, {route.Rate{N: 600, Per: time.Minute}, 5},
		{route.Rate{N: 1, Per: time.Second}, 3}, {route.Rate{N: 50, Per: time.Second}, 20},
		{route.Rate{N: 120, Per: time.Minute}, 1},
	} {
		t.Run(fmt.Sprintf("%s_burst%d", tc.rate, tc.burst), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.rate.N*1000+tc.burst)))
			c := newClock()
			l := newLimiter(route.Limit{Rate: tc.rate, Burst: tc.burst}, c.Now())
			ref := &nginxLimitReq{rate: int64(tc.rate.N) * 1000 * int64(time.Second) / int64(tc.rate.Per), burst: int64(tc.burst) * 1000}
			key := limitKey(netip.MustParseAddr("198.51.100.7"))
			ms, accepted := int64(0), 0
			meanGap := int64(tc.rate.Interval()/time.Millisecond) * 2 / 3 // a bit over the rate
			for i := range 5000 {
				if rng.IntN(10) > 0 { // some requests arrive together
					ms += rng.Int64N(2*meanGap + 1)
				}
				at := time.Duration(ms) * time.Millisecond
				_, got, _ := l.admit(key, c.t.Add(at))
				if want := ref.request(ms); got != want {
					t.Fatalf("request %d at %dms: limiter %t, Nginx %t", i, ms, got, want)
				}
				if got {
					accepted++
				}
			}
			if accepted == 0 || accepted == 5000 {
				t.Fatalf("the schedule never tested the limit: %d accepted", accepted)
			}
		})
	}
}

// TestLimiterMemoryBound: two million distinct addresses (200,000 under
// the race detector) (and IPv6
// addresses of one /64, which count as one) keep the limiter within
// limitTableBytes by its own accounting, and the Go heap agrees.
func TestLimiterMemoryBound(t *testing.T) {
	if unsafe.Sizeof(limitEntry{}) != 32 {
		t.Fatalf("limitEntry is %d bytes; the documented bound assumes 32", unsafe.Sizeof(limitEntry{}))
	}
	const bound = limitTableBytes + limitShards*int(unsafe.Sizeof(limitShard{})) + 4096
	t.Logf("bound %d bytes (%d entries × %d bytes + shard headers)", bound, limitEntries, unsafe.Sizeof(limitEntry{}))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	c := newClock()
	l := newLimiter(route.Limit{Rate: rate10, Burst: 5, Conn: 10}, c.Now())
	held, addresses := 0, 2_000_000
	if raceEnabled {
		addresses = 200_000 // still three times what the table holds; the 2 million run is without -race
	}
	for i := range addresses {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		e, ok, _ := l.admit(limitKey(a), c.Now())
		if !ok {
			t.Fatalf("address %d refused: every address is new", i)
		}
		if i%1000 == 0 {
			held++ // keep a request in progress: its entry may not be evicted
		} else {
			l.release(e)
		}
		if i%100 == 0 {
			c.Add(time.Millisecond)
		}
	}
	for i := range 1000 {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		e, ok, _ := l.admit(limitKey(a), c.Now())
		l.release(e)
		if !ok && i < 6 {
			t.Fatalf("IPv6 request %d refused", i)
		} else if ok && i >= 6 {
			t.Fatalf("IPv6 request %d of one /64 passed: the /64 is one client (burst 5)", i)
		}
	}
	bytes, entries := l.size()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d addresses: table %d bytes, %d entries tracked (max %d); heap delta %d bytes", addresses, bytes, entries, limitEntries, heap)
	if bytes > bound || entries > limitEntries {
		t.Fatalf("table %d bytes, %d entries: over the bound %d bytes, %d entries", bytes, entries, bound, limitEntries)
	}
	if heap > int64(bound)*3/2 {
		t.Fatalf("heap grew by %d bytes, over 1.5 × the bound %d", heap, bound)
	}
	// The addresses still holding a request were never evicted.
	conns := 0
	for i := range l.shards {
		for s := range l.shards[i].sets {
			for w := range l.shards[i].sets[s] {
				conns += int(l.shards[i].sets[s][w].conns)
			}
		}
	}
	if conns != held {
		t.Fatalf("%d requests in progress counted, want %d: an entry in use was evicted", conns, held)
	}
}

// TestLimiterSetEviction: a new address takes a free entry first, then the
// most recovered one without a request in progress; a set whose entries all
// hold requests has no room.
func TestLimiterSetEviction(t *testing.T) {
	l := newLimiter(route.Limit{Rate: rate10, Conn: 1}, time.Time{})
	var set [limitWays]limitEntry
	for i := range set {
		set[i] = limitEntry{key: [16]byte{byte(i + 1)}, tat: int64(100 + i), live: true, conns: 1}
	}
	if e := l.find(&set, [16]byte{99}, 0); e != nil {
		t.Fatal("a set full of requests in progress took another address")
	}
	set[5].conns, set[3].conns = 0, 0
	if e := l.find(&set, [16]byte{99}, 7); e != &set[3] || e.tat != 7 || e.conns != 0 {
		t.Fatalf("took %+v, want entry 3 (oldest tat without a request)", e)
	}
	set[6].live = false
	if e := l.find(&set, [16]byte{98}, 8); e != &set[6] {
		t.Fatal("a free entry was not taken first")
	}
	if e := l.find(&set, [16]byte{99}, 9); e != &set[3] || e.tat != 7 {
		t.Fatal("a known address was not found")
	}
}

// TestRateLimitThroughProxy: 10r/s with burst 5 from one client address,
// on the proxy's injected clock: six of twenty pass at t=0, the others get
// 429 with Retry-After 1 and never reach the upstream; one more passes each
// 100 ms. Another address (behind a trusted proxy) has its own allowance;
// an untrusted client's X-Forwarded-For changes nothing.
func TestRateLimitThroughProxy(t *testing.T) {
	var mu sync.Mutex
	reached := 0
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		w.Write([]byte("ok"))
	})
	c := newClock()
	rt := testRoute("a.test", addrOf(t, up))
	rt.Limit = route.Limit{Rate: rate10, Burst: 5}
	rt.Headers = []route.Header{{Name: "X-Route", Value: "a"}}
	f := newFixture(t, Config{Now: c.Now, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, table(rt))

	send := func(xff string) *http.Response {
		req := f.newRequest(t, "GET", "a.test", "/", nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res := f.do(t, req)
		readAll(t, res.Body)
		return res
	}
	count := func(n int, xff string) (ok int) {
		for range n {
			res := send(xff)
			switch res.StatusCode {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				if ra := res.Header.Get("Retry-After"); ra != "1" || res.Header.Get("X-Route") != "a" {
					t.Fatalf("429 with Retry-After %q, X-Route %q", ra, res.Header.Get("X-Route"))
				}
			default:
				t.Fatalf("status %d", res.StatusCode)
			}
		}
		return ok
	}
	if got := count(20, "192.0.2.1"); got != 6 {
		t.Fatalf("%d of 20 passed at t=0, want 6 (1 + burst 5)", got)
	}
	if got := count(20, "192.0.2.2"); got != 6 {
		t.Fatalf("another address: %d of 20 passed, want its own 6", got)
	}
	for step := range 5 {
		c.Add(100 * time.Millisecond)
		if got := count(3, "192.0.2.1"); got != 1 {
			t.Fatalf("step %d: %d of 3 passed 100ms later, want 1", step, got)
		}
	}
	mu.Lock()
	if reached != 6+6+5 {
		t.Errorf("upstream reached %d times, want 17", reached)
	}
	mu.Unlock()

	// A client that is not a trusted proxy is limited by its own address
	// whatever X-Forwarded-For it sends.
	f2 := newFixture(t, Config{Now: c.Now}, table(rt))
	ok := 0
	for i := range 20 {
		req := f2.newRequest(t, "GET", "a.test", "/", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		if res := f2.do(t, req); res.StatusCode == http.StatusOK {
			ok++
		}
	}
	if ok != 6 {
		t.Fatalf("an untrusted client with varying X-Forwarded-For: %d passed, want 6", ok)
	}
}

// TestRateLimitRetryAfter: Retry-After is the whole seconds until a request
// would pass, rounded up.
func TestRateLimitRetryAfter(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClock()
	rt := testRoute("a.test", addrOf(t, up))
	rt.Limit = route.Limit{Rate: route.Rate{N: 6, Per: time.Minute}, Burst: 1} // one per 10s
	f := newFixture(t, Config{Now: c.Now}, table(rt))
	want := []string{"", "", "10", "10"}
	for i, w := range want {
		res := f.do(t, f.newRequest(t, "GET", "a.test", "/", nil))
		if got := res.Header.Get("Retry-After"); got != w || (w == "") != (res.StatusCode == 200) {
			t.Fatalf("request %d: status %d Retry-After %q, want %q", i, res.StatusCode, got, w)
		}
	}
	c.Add(7500 * time.Millisecond)
	if res := f.do(t, f.newRequest(t, "GET", "a.test", "/", nil)); res.Header.Get("Retry-After") != "3" {
		t.Fatalf("7.5s later: Retry-After %q, want 3 (2.5s rounded up)", res.Header.Get("Retry-After"))
	}
	// A table swap with the same limits keeps the addresses' state.
	f.h.SetTable(table(rt))
	if res := f.do(t, f.newRequest(t, "GET", "a.test", "/", nil)); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after a table swap: status %d, want 429 (state kept)", res.StatusCode)
	}
}

// TestConnLimitThroughProxy: limit.conn=2 lets two requests of one address
// be in progress; the third gets 429 until one ends.
func TestConnLimitThroughProxy(t *testing.T) {
	entered := make(chan struct{})
	proceed := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-proceed
		}
		w.Write([]byte("ok"))
	})
	rt := testRoute("a.test", addrOf(t, up))
	rt.Limit = route.Limit{Conn: 2}
	f := newFixture(t, Config{}, table(rt))
	done := make(chan int, 2)
	for range 2 {
		go func() {
			res, err := f.front.Client().Do(newRequest(t, "GET", f.front.URL+"/hold", "a.test", nil))
			if err != nil {
				done <- 0
				return
			}
			readAll(t, res.Body)
			res.Body.Close()
			done <- res.StatusCode
		}()
		<-entered
	}
	res := f.do(t, f.newRequest(t, "GET", "a.test", "/", nil))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("third request in progress: status %d Retry-After %q, want 429, 1", res.StatusCode, res.Header.Get("Retry-After"))
	}
	proceed <- struct{}{}
	if code := <-done; code != http.StatusOK {
		t.Fatalf("held request: %d", code)
	}
	// The finished request's slot is free once it is recorded, which the
	// handler does before the client reads the end of the response on
	// HTTP/1.1; wait for it without sleeping: poll the limiter's count.
	waitFor(t, func() bool { return connsOf(f, rt) == 1 })
	if res := f.do(t, f.newRequest(t, "GET", "a.test", "/", nil)); res.StatusCode != http.StatusOK {
		t.Fatalf("after one ended: status %d, want 200", res.StatusCode)
	}
	proceed <- struct{}{}
	<-done
	waitFor(t, func() bool { return connsOf(f, rt) == 0 })
}

// connsOf is the requests in progress the route's limiter counts.
func connsOf(f *fixture, rt *route.Route) int {
	l := f.h.state.Load().routes[rt].limit
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		if sh.sets != nil {
			for s := range sh.sets {
				for w := range sh.sets[s] {
					n += int(sh.sets[s][w].conns)
				}
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// waitFor polls cond until it holds; waitLimit is a hang guard, not a
// measurement.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}
