package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// named starts a backend that answers its name.
func named(t testing.TB, name string) (netip.AddrPort, *namedCount) {
	t.Helper()
	c := &namedCount{}
	s := backend(t, func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
		fmt.Fprint(w, name)
	})
	return addrOf(t, s), c
}

type namedCount struct {
	mu sync.Mutex
	n  int
}

func member(service string, weight int, weighted bool, ups ...netip.AddrPort) *route.Route {
	r := testRoute("shop.test", ups...)
	r.Service, r.Weight, r.Weighted = service, weight, weighted
	return r
}

// hit sends one GET with the cookies given and returns the body and the
// Set-Cookie values. Any status but 200 fails the test.
func hit(t testing.TB, f *fixture, host string, cookies ...*http.Cookie) (string, []*http.Cookie) {
	t.Helper()
	req := f.newRequest(t, http.MethodGet, host, "/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := f.front.Client().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer res.Body.Close()
	body := readAll(t, res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d %q", res.StatusCode, body)
	}
	return body, res.Cookies()
}

// TestSplitWeights: two services 90/10 on one host and path get exactly
// 1,800 and 200 of 2,000 requests (smooth weighted round robin is
// deterministic); a weight-0 member and a member without upstreams get
// nothing; with no member able to serve, 503.
func TestSplitWeights(t *testing.T) {
	blue, _ := named(t, "blue")
	green, _ := named(t, "green")
	zero, _ := named(t, "zero")
	tbl := table(
		member("blue", 90, true, blue),
		member("green", 10, true, green),
		member("zero", 0, true, zero),
		member("empty", 0, false), // DefaultWeight, but no upstream
	)
	if _, s := tbl.Lookup("shop.test", "/"); s == nil || len(s.Routes) != 4 {
		t.Fatalf("the four routes must form one split: %+v", s)
	}
	f := newFixture(t, Config{}, tbl)
	counts := map[string]int{}
	for range 2000 {
		body, _ := hit(t, f, "shop.test")
		counts[body]++
	}
	if counts["blue"] != 1800 || counts["green"] != 200 || len(counts) != 2 {
		t.Fatalf("2,000 requests split %v, want blue 1800 green 200 (90/10)", counts)
	}

	f.h.SetTable(table(member("zero", 0, true, zero), member("empty", 50, true)))
	res := f.do(t, f.newRequest(t, http.MethodGet, "shop.test", "/", nil))
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("no member with a weight and an upstream: status %d, want 503", res.StatusCode)
	}
}

// TestSticky: the first response sets the cookie; 200 requests that bring
// it back all reach the same task and set nothing; when that task leaves the
// table, or its address refuses connections, the next request succeeds on
// another task and resets the cookie. A forged cookie is ignored.
func TestSticky(t *testing.T) {
	names := map[netip.AddrPort]string{}
	var ups []netip.AddrPort
	for _, n := range []string{"t1", "t2", "t3"} {
		a, _ := named(t, n)
		names[a] = n
		ups = append(ups, a)
	}
	r := testRoute("app.test", ups...)
	r.Sticky = "SESSION"
	f := newFixture(t, Config{}, table(r))

	first, set := hit(t, f, "app.test")
	if len(set) != 1 || set[0].Name != "SESSION" || !set[0].HttpOnly || set[0].Path != "/" || set[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("first response cookies = %+v", set)
	}
	// The proxy knows the upstreams by address only; the backends' names
	// ("t1") are too short to look for in a random-looking value.
	for a := range names {
		if strings.Contains(set[0].Value, a.String()) {
			t.Fatalf("the cookie %q reveals the upstream", set[0].Value)
		}
	}
	cookie := &http.Cookie{Name: "SESSION", Value: set[0].Value}
	for i := range 200 {
		body, again := hit(t, f, "app.test", cookie, &http.Cookie{Name: "other", Value: "x"})
		if body != first || len(again) != 0 {
			t.Fatalf("request %d: reached %s (want %s), cookies %+v", i, body, first, again)
		}
	}

	// The task is gone from the table: another one, and a new cookie.
	var rest []netip.AddrPort
	for _, a := range ups {
		if names[a] != first {
			rest = append(rest, a)
		}
	}
	r2 := testRoute("app.test", rest...)
	r2.Sticky = "SESSION"
	f.h.SetTable(table(r2))
	body, set := hit(t, f, "app.test", cookie)
	if body == first || len(set) != 1 || set[0].Value == cookie.Value {
		t.Fatalf("after removal: reached %s, cookies %+v; want another task and a new cookie", body, set)
	}
	second := body
	cookie = &http.Cookie{Name: "SESSION", Value: set[0].Value}
	for range 50 {
		if body, again := hit(t, f, "app.test", cookie); body != second || len(again) != 0 {
			t.Fatalf("the new cookie does not stick: %s %+v", body, again)
		}
	}

	// The task's address still in the table but refusing connections: the
	// request is retried on another task, with no error, and the cookie reset.
	dead := deadAddr(t)
	r3 := testRoute("app.test", append([]netip.AddrPort{dead}, rest...)...)
	r3.Sticky = "SESSION"
	f.h.SetTable(table(r3))
	deadCookie := &http.Cookie{Name: "SESSION", Value: f.h.state.Load().routes[f.h.state.Load().table.Routes[0]].sticky.values[0]}
	body, set = hit(t, f, "app.test", deadCookie)
	if body == "" || len(set) != 1 || set[0].Value == deadCookie.Value {
		t.Fatalf("dead task: reached %q, cookies %+v; want a live task and a new cookie", body, set)
	}

	// A forged value is a request without a cookie.
	if _, set := hit(t, f, "app.test", &http.Cookie{Name: "SESSION", Value: "forged"}); len(set) != 1 {
		t.Fatalf("a forged cookie must be replaced: %+v", set)
	}
}

// TestStickyAcrossHandlers: two handlers with the same key (two edges
// deriving it from the control secret) honour each other's cookies; a
// handler with another key does not.
func TestStickyAcrossHandlers(t *testing.T) {
	var ups []netip.AddrPort
	for _, n := range []string{"a", "b", "c", "d"} {
		a, _ := named(t, n)
		ups = append(ups, a)
	}
	r := testRoute("app.test", ups...)
	r.Sticky = "ingress_sticky"
	key := []byte("0123456789abcdef0123456789abcdef")
	e1 := newFixture(t, Config{StickyKey: key}, table(r))
	e2 := newFixture(t, Config{StickyKey: key}, table(r))
	other := newFixture(t, Config{}, table(r))
	first, set := hit(t, e1, "app.test")
	c := &http.Cookie{Name: set[0].Name, Value: set[0].Value}
	for i := range 40 {
		f := e1
		if i%2 == 1 {
			f = e2
		}
		if body, again := hit(t, f, "app.test", c); body != first || len(again) != 0 {
			t.Fatalf("request %d on edge %d: reached %s (want %s), cookies %+v", i, i%2+1, body, first, again)
		}
	}
	if _, again := hit(t, other, "app.test", c); len(again) != 1 {
		t.Fatal("a handler with another key must not accept the cookie")
	}
}

// TestStickySplit: on a split whose members are sticky, a client keeps its
// member and its task for 200 requests.
func TestStickySplit(t *testing.T) {
	b1, _ := named(t, "blue-1")
	b2, _ := named(t, "blue-2")
	g1, _ := named(t, "green-1")
	g2, _ := named(t, "green-2")
	blue := member("blue", 50, true, b1, b2)
	green := member("green", 50, true, g1, g2)
	blue.Sticky, green.Sticky = "ingress_sticky", "ingress_sticky"
	f := newFixture(t, Config{}, table(blue, green))
	seen := map[string]bool{}
	for range 4 { // new clients land on both members
		first, set := hit(t, f, "shop.test")
		seen[strings.Split(first, "-")[0]] = true
		c := &http.Cookie{Name: set[0].Name, Value: set[0].Value}
		for i := range 200 {
			if body, again := hit(t, f, "shop.test", c); body != first || len(again) != 0 {
				t.Fatalf("request %d: reached %s (want %s), cookies %+v", i, body, first, again)
			}
		}
	}
	if !seen["blue"] || !seen["green"] {
		t.Fatalf("new clients should reach both members: %v", seen)
	}

	// Weight 0 cuts blue over: its sticky clients move to green too.
	blueCookie := &http.Cookie{Name: "ingress_sticky", Value: f.h.state.Load().routes[blue].sticky.values[0]}
	if body, _ := hit(t, f, "shop.test", blueCookie); body != "blue-1" {
		t.Fatalf("blue's cookie reached %s", body)
	}
	blue0 := member("blue", 0, true, b1, b2)
	blue0.Sticky = "ingress_sticky"
	f.h.SetTable(table(blue0, green))
	for range 20 {
		if body, again := hit(t, f, "shop.test", blueCookie); !strings.HasPrefix(body, "green") || len(again) != 1 {
			t.Fatalf("with blue at weight 0, its client reached %s (Set-Cookie %+v); want green and a new cookie", body, again)
		}
	}
}

// TestSlowStart: with an injected clock, an upstream added after the first
// table gets 10% of its weight at once, growing linearly to 100% over
// slow_start; the upstreams of the first table are never ramped.
func TestSlowStart(t *testing.T) {
	a, _ := named(t, "a")
	b, _ := named(t, "b")
	c, _ := named(t, "c")
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(d time.Duration) { mu.Lock(); now = time.Unix(1000, 0).Add(d); mu.Unlock() }

	r1 := testRoute("app.test", a, c)
	r1.SlowStart = 10 * time.Second
	f := newFixture(t, Config{Now: clock}, table(r1))
	if rs := f.h.state.Load().routes[f.h.state.Load().table.Routes[0]]; rs.ramp != nil {
		t.Fatal("the upstreams of the first table must not ramp")
	}

	r2 := testRoute("app.test", a, b)
	r2.SlowStart = 10 * time.Second
	f.h.SetTable(table(r2)) // b is new at t=0
	for _, tc := range []struct {
		at    time.Duration
		wantB int // per 1000 + wantB requests: b's ramped weight
	}{
		{0, 100},
		{2500 * time.Millisecond, 325},
		{5 * time.Second, 550},
		{7500 * time.Millisecond, 775},
	} {
		set(tc.at)
		n := 1000 + tc.wantB
		got := 0
		for range n {
			if body, _ := hit(t, f, "app.test"); body == "b" {
				got++
			}
		}
		if got < tc.wantB-2 || got > tc.wantB+2 {
			t.Fatalf("at %s: b got %d of %d requests, want %d (%.1f%%)", tc.at, got, n, tc.wantB, 100*float64(tc.wantB)/float64(n))
		}
	}
	set(10 * time.Second) // the ramp is over: balanced by requests in flight again
	got := 0
	for range 400 {
		if body, _ := hit(t, f, "app.test"); body == "b" {
			got++
		}
	}
	if got < 140 || got > 260 {
		t.Fatalf("after the ramp b got %d of 400, want about half", got)
	}
}

// TestSlowStartPartialFirst: a partial table (the routes file only, before
// Docker answers) does not count as the first table: the upstreams of the
// first complete one are not ramped.
func TestSlowStartPartialFirst(t *testing.T) {
	a, _ := named(t, "a")
	b, _ := named(t, "b")
	r := testRoute("app.test", a, b)
	r.SlowStart = time.Minute
	f := newFixture(t, Config{}, route.New(route.Snapshot{Partial: true}))
	f.h.SetTable(table(r))
	if rs := f.h.state.Load().routes[f.h.state.Load().table.Routes[0]]; rs.ramp != nil {
		t.Fatal("the first complete table must not ramp")
	}
}
