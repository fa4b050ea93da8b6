package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// fakeClock is the health clock of a test: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// flaky is an upstream that answers 200, or fail (e.g. 500) while failing
// is set, and counts what it answered.
type flaky struct {
	fail    atomic.Int32 // status to answer; 0: 200
	hits    atomic.Int64
	healthz atomic.Int32 // status of /healthz; 0: 200
	addr    netip.AddrPort
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	s := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if code := f.healthz.Load(); code != 0 {
				w.WriteHeader(int(code))
			}
			return
		}
		f.hits.Add(1)
		if code := f.fail.Load(); code != 0 {
			w.WriteHeader(int(code))
		}
	})
	f.addr = addrOf(t, s)
	return f
}

// healthFixture serves rt with a fake health clock.
func healthFixture(t *testing.T, rt *route.Route) (*fixture, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, Config{}, nil)
	t.Cleanup(func() { f.h.Close() })
	f.h.health.now = clock.now
	f.h.SetTable(table(rt))
	return f, clock
}

// get sends one GET and returns its status.
func (f *fixture) get(t *testing.T, host string) int {
	t.Helper()
	res := f.do(t, f.newRequest(t, http.MethodGet, host, "/", nil))
	readAll(t, res.Body)
	return res.StatusCode
}

// getUntilHit sends GETs until up has answered one more request, at most
// limit of them, and returns the statuses of all.
func (f *fixture) getUntilHit(t *testing.T, host string, up *flaky, limit int) []int {
	t.Helper()
	before := up.hits.Load()
	var codes []int
	for range limit {
		codes = append(codes, f.get(t, host))
		if up.hits.Load() > before {
			return codes
		}
	}
	t.Fatalf("%d requests and none reached %s", limit, up.addr)
	return nil
}

// upstreamState returns the /api/routes view of one upstream.
func upstreamState(t *testing.T, h *Handler, tbl *route.Table, a netip.AddrPort) route.UpstreamHealth {
	t.Helper()
	v := tbl.View()
	h.AnnotateView(&v)
	for _, rv := range v.Routes {
		for _, u := range rv.UpstreamHealth {
			if u.Upstream == a.String() {
				return u
			}
		}
	}
	t.Fatalf("no upstream_health for %s in %+v", a, v.Routes)
	return route.UpstreamHealth{}
}

func currentTable(h *Handler) *route.Table { return h.state.Load().table }

// TestEjectAfterConsecutive5xx: an upstream answering 500 leaves the
// rotation at its eject.after-th failure (not before), no request reaches
// it while ejected, and metrics and the API say so.
func TestEjectAfterConsecutive5xx(t *testing.T) {
	bad, good := newFlaky(t), newFlaky(t)
	rt := testRoute("app.test", bad.addr, good.addr)
	rt.EjectAfter = 3
	f, _ := healthFixture(t, rt)
	bad.fail.Store(500)

	for i := 1; i <= 3; i++ {
		f.getUntilHit(t, "app.test", bad, 200)
		st := upstreamState(t, f.h, currentTable(f.h), bad.addr)
		if i < 3 && (st.State != "up" || st.ConsecutiveFailures != i) {
			t.Fatalf("after %d failures: %+v, want up with %d failures", i, st, i)
		}
		if i == 3 && (st.State != "ejected" || st.Reason != reasonStatus || st.ConsecutiveFailures != 3 || st.EjectedUntil == nil) {
			t.Fatalf("after 3 failures: %+v, want ejected for status", st)
		}
	}
	hits := bad.hits.Load()
	for range 50 {
		if code := f.get(t, "app.test"); code != http.StatusOK {
			t.Fatalf("status %d while the failing upstream is ejected", code)
		}
	}
	if got := bad.hits.Load(); got != hits {
		t.Fatalf("the ejected upstream got %d more requests", got-hits)
	}
	if v, _ := gathered(t, f, "ingress_upstream_ejections_total", map[string]string{"route": "svc/default", "reason": reasonStatus}); v != 1 {
		t.Fatalf("ejections_total = %v, want 1", v)
	}
	if v, _ := gathered(t, f, "ingress_upstreams_ejected", map[string]string{"route": "svc/default"}); v != 1 {
		t.Fatalf("upstreams_ejected = %v, want 1", v)
	}
}

// TestSuccessResetsFailures: failures must be consecutive.
func TestSuccessResetsFailures(t *testing.T) {
	bad, good := newFlaky(t), newFlaky(t)
	f, _ := healthFixture(t, testRoute("app.test", bad.addr, good.addr)) // eject.after: default 3
	for range 5 {
		bad.fail.Store(503)
		f.getUntilHit(t, "app.test", bad, 200)
		f.getUntilHit(t, "app.test", bad, 200)
		bad.fail.Store(0)
		f.getUntilHit(t, "app.test", bad, 200)
	}
	if st := upstreamState(t, f.h, currentTable(f.h), bad.addr); st.State != "up" || st.ConsecutiveFailures != 0 {
		t.Fatalf("two failures then a success, five times: %+v, want up", st)
	}
}

// TestEjectOnConnectRefused: one refused connection ejects at once; the
// request is retried on the other upstream, and the dead one is not dialled
// again while ejected.
func TestEjectOnConnectRefused(t *testing.T) {
	good := newFlaky(t)
	dead := refusedAddr(t)
	f, _ := healthFixture(t, testRoute("app.test", dead, good.addr))
	for range 40 {
		if code := f.get(t, "app.test"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if v, _ := gathered(t, f, "ingress_upstream_errors_total", map[string]string{"route": "svc/default", "kind": kindDial}); v != 1 {
		t.Fatalf("dial errors = %v, want exactly 1 (ejected after the first)", v)
	}
	st := upstreamState(t, f.h, currentTable(f.h), dead)
	if st.State != "ejected" || st.Reason != reasonConnect || st.ConsecutiveFailures != 1 {
		t.Fatalf("refused upstream: %+v, want ejected for connect", st)
	}
	if v, _ := gathered(t, f, "ingress_upstream_ejections_total", map[string]string{"reason": reasonConnect}); v != 1 {
		t.Fatalf("ejections_total{connect} = %v, want 1", v)
	}
}

// TestEjectionBackoffAndRecovery: when the ejection is over one trial
// request decides: a failing trial ejects again for twice as long (up to
// the cap), a passing one puts the upstream back and resets the backoff.
func TestEjectionBackoffAndRecovery(t *testing.T) {
	bad, good := newFlaky(t), newFlaky(t)
	rt := testRoute("app.test", bad.addr, good.addr)
	rt.EjectAfter, rt.EjectFor = 2, 10*time.Second
	f, clock := healthFixture(t, rt)
	bad.fail.Store(502)
	f.getUntilHit(t, "app.test", bad, 200)
	f.getUntilHit(t, "app.test", bad, 200)

	wantFor := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, want := range wantFor {
		st := upstreamState(t, f.h, currentTable(f.h), bad.addr)
		if st.State != "ejected" || st.EjectedUntil == nil || st.EjectedUntil.Sub(clock.now()) != want {
			t.Fatalf("ejection %d: %+v, want ejected for %s from now (%s)", i+1, st, want, clock.now())
		}
		clock.add(want - time.Millisecond)
		hits := bad.hits.Load()
		for range 20 {
			f.get(t, "app.test")
		}
		if bad.hits.Load() != hits {
			t.Fatalf("ejection %d: a request reached the upstream before the end of its ejection", i+1)
		}
		clock.add(time.Millisecond)
		if st := upstreamState(t, f.h, currentTable(f.h), bad.addr); st.State != "trial" {
			t.Fatalf("ejection %d over: %+v, want trial", i+1, st)
		}
		codes := f.getUntilHit(t, "app.test", bad, 200) // the trial fails
		if codes[len(codes)-1] != http.StatusBadGateway {
			t.Fatalf("the trial got %d, want the upstream's 502", codes[len(codes)-1])
		}
	}

	// Recovery: the next trial passes and the upstream is back.
	bad.fail.Store(0)
	clock.add(time.Minute)
	f.getUntilHit(t, "app.test", bad, 200)
	st := upstreamState(t, f.h, currentTable(f.h), bad.addr)
	if st.State != "up" || st.ConsecutiveFailures != 0 || st.EjectedUntil != nil {
		t.Fatalf("after a passing trial: %+v, want up", st)
	}
	f.getUntilHit(t, "app.test", bad, 200) // in rotation again
	if v, _ := gathered(t, f, "ingress_upstreams_ejected", nil); v != 0 {
		t.Fatalf("upstreams_ejected = %v, want 0", v)
	}
	// The backoff starts again from eject.for.
	bad.fail.Store(502)
	f.getUntilHit(t, "app.test", bad, 200)
	f.getUntilHit(t, "app.test", bad, 200)
	st = upstreamState(t, f.h, currentTable(f.h), bad.addr)
	if st.State != "ejected" || st.EjectedUntil.Sub(clock.now()) != 10*time.Second {
		t.Fatalf("ejected again after a recovery: %+v, want 10s", st)
	}
}

// TestOneTrialAtATime: while the trial request is in flight, the other
// requests avoid the upstream.
func TestOneTrialAtATime(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var slow atomic.Bool
	var badHits atomic.Int64
	bs := backend(t, func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		if slow.Load() {
			entered <- struct{}{}
			<-release
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	good := newFlaky(t)
	bad := addrOf(t, bs)
	rt := testRoute("app.test", bad, good.addr)
	rt.EjectAfter = 1
	f, clock := healthFixture(t, rt)
	for badHits.Load() == 0 {
		f.get(t, "app.test")
	}
	if st := upstreamState(t, f.h, currentTable(f.h), bad); st.State != "ejected" {
		t.Fatalf("%+v, want ejected", st)
	}
	slow.Store(true)
	clock.add(route.DefaultEjectFor)
	// Requests in parallel until one is the trial (held by the upstream).
	trialDone := make(chan int, 1)
	go func() {
		for {
			res, err := f.front.Client().Do(newRequest(t, http.MethodGet, f.front.URL, "app.test", nil))
			if err != nil {
				trialDone <- 0
				return
			}
			res.Body.Close()
			if badHits.Load() > 1 {
				trialDone <- res.StatusCode
				return
			}
		}
	}()
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("no trial request reached the upstream")
	}
	for range 20 {
		if code := f.get(t, "app.test"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if n := badHits.Load(); n != 2 {
		t.Fatalf("the upstream on trial got %d requests, want 1 besides the first failure", n-1)
	}
	close(release)
	if code := <-trialDone; code != http.StatusOK {
		t.Fatalf("trial answered %d", code)
	}
	if st := upstreamState(t, f.h, currentTable(f.h), bad); st.State != "up" {
		t.Fatalf("after a passing trial: %+v, want up", st)
	}
}

// TestNeverEjectLast: when every upstream fails, the last one in rotation
// stays (kept) and keeps getting the requests; a route with one upstream
// never ejects it.
func TestNeverEjectLast(t *testing.T) {
	a, b := newFlaky(t), newFlaky(t)
	f, _ := healthFixture(t, testRoute("app.test", a.addr, b.addr))
	a.fail.Store(500)
	b.fail.Store(500)
	for a.hits.Load() < 3 || b.hits.Load() < 3 {
		f.get(t, "app.test")
	}
	tbl := currentTable(f.h)
	sa, sb := upstreamState(t, f.h, tbl, a.addr), upstreamState(t, f.h, tbl, b.addr)
	ejected, kept := sa, sb
	if sb.State == "ejected" {
		ejected, kept = sb, sa
	}
	if ejected.State != "ejected" || kept.State != "kept" {
		t.Fatalf("states %+v and %+v, want one ejected, one kept", sa, sb)
	}
	keptUp := a
	if kept.Upstream == b.addr.String() {
		keptUp = b
	}
	hits := keptUp.hits.Load()
	for range 10 {
		if code := f.get(t, "app.test"); code != http.StatusInternalServerError {
			t.Fatalf("status %d, want the kept upstream's 500", code)
		}
	}
	if keptUp.hits.Load() != hits+10 {
		t.Fatal("the kept upstream did not get the requests")
	}

	// One upstream only: never ejected, whatever it answers.
	single := newFlaky(t)
	single.fail.Store(503)
	f2, _ := healthFixture(t, testRoute("one.test", single.addr))
	for range 10 {
		if code := f2.get(t, "one.test"); code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", code)
		}
	}
	if st := upstreamState(t, f2.h, currentTable(f2.h), single.addr); st.State != "up" && st.State != "kept" || st.ConsecutiveFailures != 10 {
		t.Fatalf("single upstream: %+v", st)
	}
}

// TestEjectAfterZero: eject.after=0 never ejects for answers, but a
// connect error still does.
func TestEjectAfterZero(t *testing.T) {
	bad, good := newFlaky(t), newFlaky(t)
	dead := refusedAddr(t)
	rt := testRoute("app.test", bad.addr, good.addr, dead)
	rt.EjectAfter = -1 // the label's 0
	f, _ := healthFixture(t, rt)
	bad.fail.Store(500)
	for bad.hits.Load() < 10 {
		f.get(t, "app.test")
	}
	tbl := currentTable(f.h)
	if st := upstreamState(t, f.h, tbl, bad.addr); st.State != "up" || st.ConsecutiveFailures < 10 {
		t.Fatalf("500s with eject.after=0: %+v, want up", st)
	}
	if st := upstreamState(t, f.h, tbl, dead); st.State != "ejected" || st.Reason != reasonConnect {
		t.Fatalf("refused with eject.after=0: %+v, want ejected", st)
	}
}

// TestOutcome classifies attempt results.
func TestOutcome(t *testing.T) {
	live := httpRequest(t, context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httpRequest(t, ctx)
	tests := []struct {
		name   string
		req    *http.Request
		status int
		err    error
		reason string
		failed bool
	}{
		{"200", live, 200, nil, "", false},
		{"404", live, 404, nil, "", false},
		{"500", live, 500, nil, reasonStatus, true},
		{"501", live, 501, nil, "", false},
		{"503", live, 503, nil, reasonStatus, true},
		{"505", live, 505, nil, "", false},
		{"refused", live, 0, syscall.ECONNREFUSED, reasonConnect, true},
		{"header timeout", live, 0, h1.ErrHeaderTimeout, reasonTimeout, true},
		{"reset", live, 0, syscall.ECONNRESET, reasonBroken, true},
		{"client gone", gone, 0, syscall.ECONNRESET, neutral, false},
		{"other", live, 0, errors.New("malformed"), neutral, false},
	}
	for _, tc := range tests {
		var res *http.Response
		if tc.err == nil {
			res = &http.Response{StatusCode: tc.status}
		}
		reason, failed := outcome(tc.req, res, tc.err)
		if reason != tc.reason || failed != tc.failed {
			t.Errorf("%s: outcome %q %t, want %q %t", tc.name, reason, failed, tc.reason, tc.failed)
		}
	}
}

func httpRequest(t *testing.T, ctx context.Context) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://x/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// checkRig runs a Handler's active checks in lockstep: after each check a
// checker parks (reports its address on parked) and waits for a step of its
// own, so that a round checks each upstream exactly once, and every checker
// is parked, its result recorded, when a round returns.
type checkRig struct {
	mu     sync.Mutex
	steps  map[netip.AddrPort]chan struct{}
	parked chan netip.AddrPort
	exited chan struct{} // a parked checker stopped
}

func newCheckRig(h *Handler) *checkRig {
	r := &checkRig{steps: map[netip.AddrPort]chan struct{}{}, parked: make(chan netip.AddrPort, 16), exited: make(chan struct{}, 16)}
	h.health.checks.tick = func(ctx context.Context, c *checker, _ time.Duration) bool {
		step := r.step(c.key.addr)
		r.parked <- c.key.addr
		select {
		case <-step:
			return true
		case <-ctx.Done():
			r.exited <- struct{}{}
			return false
		}
	}
	return r
}

// step is the channel that lets the checker of addr check once more.
func (r *checkRig) step(addr netip.AddrPort) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.steps[addr] == nil {
		r.steps[addr] = make(chan struct{})
	}
	return r.steps[addr]
}

// round lets the checkers of addrs check once more (or, first, waits for
// their first checks) and waits until each has checked and parked again.
func (r *checkRig) round(t *testing.T, addrs []netip.AddrPort, first bool) {
	t.Helper()
	if !first {
		for _, a := range addrs {
			select {
			case r.step(a) <- struct{}{}:
			case <-time.After(waitLimit):
				t.Fatalf("the checker of %s does not wait for its next check", a)
			}
		}
	}
	left := map[netip.AddrPort]bool{}
	for _, a := range addrs {
		left[a] = true
	}
	for len(left) > 0 {
		select {
		case a := <-r.parked:
			if !left[a] {
				t.Fatalf("the checker of %s checked twice in one round", a)
			}
			delete(left, a)
		case <-time.After(waitLimit):
			t.Fatalf("no check reported by the checkers of %v", left)
		}
	}
}

// TestActiveChecks: an upstream whose check fails leaves the rotation and
// comes back when it passes; the API and the gauge say so; the checkers
// stop when their route leaves the table, and Close waits for them.
func TestActiveChecks(t *testing.T) {
	a, b := newFlaky(t), newFlaky(t)
	rt := testRoute("app.test", a.addr, b.addr)
	rt.HealthCheck = &route.HealthCheck{Path: "/healthz", StatusMin: 200, StatusMax: 200}
	ups := []netip.AddrPort{a.addr, b.addr}
	f := newFixture(t, Config{}, nil)
	rig := newCheckRig(f.h)
	f.h.SetTable(table(rt))
	rig.round(t, ups, true)

	f.getUntilHit(t, "app.test", a, 200)
	f.getUntilHit(t, "app.test", b, 200)

	a.healthz.Store(503)
	rig.round(t, ups, false)
	st := upstreamState(t, f.h, currentTable(f.h), a.addr)
	if st.State != "failing_check" || st.Check != checkFailing || !strings.Contains(st.CheckError, "503") {
		t.Fatalf("failing check: %+v", st)
	}
	if v, _ := gathered(t, f, "ingress_upstreams_failing_check", map[string]string{"route": "svc/default"}); v != 1 {
		t.Fatalf("upstreams_failing_check = %v, want 1", v)
	}
	hits := a.hits.Load()
	for range 30 {
		if code := f.get(t, "app.test"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if a.hits.Load() != hits {
		t.Fatal("a request reached the upstream failing its check")
	}

	// Both failing: neither is taken out (the route keeps its upstreams).
	b.healthz.Store(500)
	rig.round(t, ups, false)
	f.getUntilHit(t, "app.test", a, 200)
	f.getUntilHit(t, "app.test", b, 200)

	// Passing again: back in rotation.
	a.healthz.Store(0)
	b.healthz.Store(0)
	rig.round(t, ups, false)
	if st := upstreamState(t, f.h, currentTable(f.h), a.addr); st.State != "up" || st.Check != checkPassing {
		t.Fatalf("passing again: %+v", st)
	}
	f.getUntilHit(t, "app.test", a, 200)

	// The route without its check: both checkers end.
	plain := testRoute("app.test", a.addr, b.addr)
	f.h.SetTable(table(plain))
	for range 2 {
		select {
		case <-rig.exited:
		case <-time.After(waitLimit):
			t.Fatal("a checker still runs after its route lost the check")
		}
	}
	f.h.mu.Lock()
	n := len(f.h.health.checks.all)
	f.h.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d checkers left", n)
	}
	if st := upstreamState(t, f.h, currentTable(f.h), a.addr); st.Check != "" {
		t.Fatalf("without a check: %+v", st)
	}

	// Close waits for the checkers of the table in use.
	f.h.SetTable(table(rt))
	rig.round(t, ups, true)
	closed := make(chan struct{})
	go func() { f.h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("Close did not return: checkers still run")
	}
}

// TestStickyAvoidsEjected: a sticky cookie naming an ejected upstream goes
// to another one (and gets a new cookie) instead of to the failing task.
func TestStickyAvoidsEjected(t *testing.T) {
	bad, good := newFlaky(t), newFlaky(t)
	rt := testRoute("app.test", bad.addr, good.addr)
	rt.Sticky, rt.EjectAfter = "SESSION", 1
	f, _ := healthFixture(t, rt)
	bad.fail.Store(500)
	f.getUntilHit(t, "app.test", bad, 200) // ejected at its first 500
	st := f.h.state.Load()
	rs := st.routes[st.table.Routes[0]]
	idx := 0
	if rs.ups[1].addr == bad.addr {
		idx = 1
	}
	cookie := &http.Cookie{Name: "SESSION", Value: rs.sticky.values[idx]}
	hits := bad.hits.Load()
	for i := range 20 {
		req := f.newRequest(t, http.MethodGet, "app.test", "/", nil)
		req.AddCookie(cookie)
		res := f.do(t, req)
		readAll(t, res.Body)
		if res.StatusCode != http.StatusOK || i == 0 && len(res.Cookies()) != 1 {
			t.Fatalf("request %d with the ejected task's cookie: %d, cookies %v", i, res.StatusCode, res.Cookies())
		}
	}
	if bad.hits.Load() != hits {
		t.Fatal("a sticky request reached the ejected upstream")
	}
}
