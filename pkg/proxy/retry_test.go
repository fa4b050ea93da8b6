package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// recorder is an upstream that remembers the X-Id of every request it saw
// and either answers (echoing the body) or breaks the connection without a
// response, like a task killed with requests in flight.
type recorder struct {
	mu     sync.Mutex
	seen   map[string]string // X-Id -> body
	break_ bool
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen[r.Header.Get("X-Id")] = string(body)
	rec.mu.Unlock()
	if rec.break_ {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	_, _ = w.Write(body)
}

func (rec *recorder) saw(id string) (string, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	b, ok := rec.seen[id]
	return b, ok
}

func startRecorder(t *testing.T, broken bool) (*recorder, netip.AddrPort) {
	rec := &recorder{seen: map[string]string{}, break_: broken}
	s := httptest.NewServer(rec)
	t.Cleanup(s.Close)
	return rec, addrOf(t, s)
}

// TestRetryOnRefusedTask: one of two tasks refuses connections (it is dead
// or not listening yet); every request still succeeds, bodies included.
func TestRetryOnRefusedTask(t *testing.T) {
	live, liveAddr := startRecorder(t, false)
	f := newFixture(t, Config{}, table(testRoute("app.test", deadAddr(t), liveAddr)))
	for i := range 20 {
		id := strconv.Itoa(i)
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", "payload "+id // a body is replayable while unread
		}
		req := f.newRequest(t, method, "app.test", "/", strings.NewReader(body))
		req.Header.Set("X-Id", id)
		res := f.do(t, req)
		if got := readAll(t, res.Body); res.StatusCode != 200 || got != body {
			t.Fatalf("request %d: %d %q, want 200 %q", i, res.StatusCode, got, body)
		}
		if got, ok := live.saw(id); !ok || got != body {
			t.Fatalf("request %d: live task saw %q (%v), want %q", i, got, ok, body)
		}
	}
	retried := metricValue(t, f.h.metrics.upstreamErrors.WithLabelValues("svc/default", kindDial))
	if retried < 1 {
		t.Fatalf("no attempt hit the dead task in 20 requests (dial errors %v): the retry was not exercised", retried)
	}
}

// TestRetryOnBrokenConnection: a task that drops requests after reading
// them. Idempotent requests move to the other task; a POST that reached the
// broken task is not replayed and gets 502.
func TestRetryOnBrokenConnection(t *testing.T) {
	broken, brokenAddr := startRecorder(t, true)
	live, liveAddr := startRecorder(t, false)
	rt := testRoute("app.test", brokenAddr, liveAddr)
	rt.EjectAfter = -1 // keep the broken task in rotation: both cases must reach it
	f := newFixture(t, Config{}, table(rt))
	hits := map[string]int{}
	for i := range 40 {
		id := strconv.Itoa(i)
		method := "GET"
		if i%2 == 1 {
			method = "POST"
		}
		req := f.newRequest(t, method, "app.test", "/", nil)
		req.Header.Set("X-Id", id)
		res := f.do(t, req)
		readAll(t, res.Body)
		_, toBroken := broken.saw(id)
		_, toLive := live.saw(id)
		switch {
		case !toBroken:
			if res.StatusCode != 200 || !toLive {
				t.Fatalf("%s %s to the live task: %d", method, id, res.StatusCode)
			}
		case method == "GET":
			hits[method]++
			if res.StatusCode != 200 || !toLive {
				t.Fatalf("GET %s broke on the first task: got %d, live saw it %v; want a retry and 200", id, res.StatusCode, toLive)
			}
		default:
			hits[method]++
			if res.StatusCode != http.StatusBadGateway || toLive {
				t.Fatalf("POST %s reached the broken task: got %d, replayed %v; want 502 and no replay", id, res.StatusCode, toLive)
			}
		}
	}
	if hits["GET"] == 0 || hits["POST"] == 0 {
		t.Fatalf("the broken task got %v in 40 requests: both cases must be exercised", hits)
	}
}

// staleUpstream answers the first request on each connection (keep-alive)
// and closes the connection unanswered when the second one arrives: its
// keep-alive ended while the connection sat in the ingress's pool, which
// only a request written to it finds out. It counts connections.
func staleUpstream(t *testing.T) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				_, _ = http.ReadRequest(br) // the second request: closed unanswered
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), &conns
}

// TestStaleConnectionResentOnce: a request that fails on a pooled
// connection the upstream closed, before any response byte, is sent again
// on a new connection if it is idempotent and has no body (outbound.go, the
// one retry policy; the HTTP/1.1 client never retries); a POST is not.
func TestStaleConnectionResentOnce(t *testing.T) {
	up, conns := staleUpstream(t)
	f := newFixture(t, Config{}, table(testRoute("app.test", up))) // one upstream: no retry elsewhere
	for i, step := range []struct {
		method string
		code   int
		conns  int64
	}{
		{"GET", 200, 1},  // a new connection, pooled
		{"GET", 200, 2},  // the pooled one is stale: resent on a new one
		{"POST", 502, 2}, // the pooled one is stale: not resent
		{"GET", 200, 3},
	} {
		res := f.do(t, f.newRequest(t, step.method, "app.test", "/", nil))
		readAll(t, res.Body)
		if res.StatusCode != step.code || conns.Load() != step.conns {
			t.Fatalf("request %d (%s): %d with %d upstream connections, want %d with %d",
				i, step.method, res.StatusCode, conns.Load(), step.code, step.conns)
		}
	}
}

// TestDeadPeerRetried: a connection the kernel gave up on (ETIMEDOUT, as
// TCP_USER_TIMEOUT reports an upstream whose node was cut off) is a broken
// connection, not a timeout of ours: an idempotent body-less request is
// retried on another upstream, a POST is not, and an answer is 502, not 504.
func TestDeadPeerRetried(t *testing.T) {
	dead := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}
	if k := kindOf(dead); k != kindBroken {
		t.Errorf("kindOf(%v) = %q, want %q", dead, k, kindBroken)
	}
	if c := statusOf(kindOf(dead)); c != http.StatusBadGateway {
		t.Errorf("status for %v = %d, want 502", dead, c)
	}
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	if !retryable(get, nil, dead) {
		t.Errorf("GET on a dead peer is not retried")
	}
	post := httptest.NewRequest(http.MethodPost, "/", nil)
	if retryable(post, nil, dead) {
		t.Errorf("POST on a dead peer is retried; it may have reached the upstream")
	}
	// Our own bound stays a timeout.
	if k := kindOf(os.ErrDeadlineExceeded); k != kindTimeout {
		t.Errorf("kindOf(deadline exceeded) = %q, want %q", k, kindTimeout)
	}
}
