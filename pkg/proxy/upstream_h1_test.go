package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend is an upstream that counts the connections it accepted.
func countingBackend(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func TestUpstreamConnectionReuse(t *testing.T) {
	up, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
	f := newFixture(t, Config{}, table(testRoute("app.test", addrOf(t, up))))
	for i := range 10 {
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", "some body"
		}
		res := f.do(t, f.newRequest(t, method, "app.test", "/", strings.NewReader(body)))
		if got := readAll(t, res.Body); res.StatusCode != 200 || got != "ok" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, got)
		}
		res.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("10 sequential requests used %d upstream connections, want 1 (kept alive)", n)
	}
}

// TestUpstreamClosedIdleConnection: the upstream closed the pooled
// connection (its keep-alive timeout); the next request, even a POST, must
// not fail on it.
func TestUpstreamClosedIdleConnection(t *testing.T) {
	up, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Method) })
	f := newFixture(t, Config{}, table(testRoute("app.test", addrOf(t, up))))
	for i, method := range []string{"GET", "GET", "POST", "POST"} {
		res := f.do(t, f.newRequest(t, method, "app.test", "/", nil))
		if got := readAll(t, res.Body); res.StatusCode != 200 || got != method {
			t.Fatalf("%s #%d after the upstream closed idle connections: %d %q", method, i, res.StatusCode, got)
		}
		res.Body.Close()
		up.CloseClientConnections()
	}
	if n := conns.Load(); n != 4 {
		t.Fatalf("%d upstream connections, want 4 (a new one after each close)", n)
	}
}

func TestHeadTrailersAndEarlyHints(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1000")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "final")
		}
	})
	f := newFixture(t, Config{}, table(testRoute("app.test", addrOf(t, up))))

	res := f.do(t, f.newRequest(t, "HEAD", "app.test", "/head", nil))
	if got := readAll(t, res.Body); res.StatusCode != 200 || got != "" || res.ContentLength != 1000 {
		t.Errorf("HEAD: %d %q length %d, want 200, no body, length 1000", res.StatusCode, got, res.ContentLength)
	}

	res = f.do(t, f.newRequest(t, "GET", "app.test", "/trailer", nil))
	if got := readAll(t, res.Body); got != "body" || res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer: body %q trailer %v, want body and X-Sum 42", got, res.Trailer)
	}

	var hints []string
	req := f.newRequest(t, "GET", "app.test", "/hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h.Get("Link"))
			return nil
		},
	}))
	res = f.do(t, req)
	if got := readAll(t, res.Body); got != "final" || len(hints) != 1 || hints[0] != "</a.css>; rel=preload" {
		t.Errorf("early hints: body %q hints %q, want final and one Link", got, hints)
	}
}

// TestUpstreamAnswersBeforeReadingBody: an upstream may refuse a body it
// has not read; its answer reaches the client.
func TestUpstreamAnswersBeforeReadingBody(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too big for me", http.StatusRequestEntityTooLarge)
	})
	f := newFixture(t, Config{}, table(testRoute("app.test", addrOf(t, up))))
	// Chunked, 128 KiB: more than the upstream reads (nothing), less than
	// net/http's server drains after a response (256 KiB). With more, the
	// server closes on a client still sending, and a client slower than the
	// server's 500 ms linger (a CPU hog) gets a reset instead of the answer.
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 128<<10)))
	res := f.do(t, f.newRequest(t, "POST", "app.test", "/", body))
	if got := readAll(t, res.Body); res.StatusCode != http.StatusRequestEntityTooLarge || got != "too big for me\n" {
		t.Fatalf("got %d %q, want the upstream's 413", res.StatusCode, got)
	}
}

// TestHeaderTimeoutStartsAfterUpload: the route timeout bounds the wait for
// the response head once the request is sent, not the upload itself. The
// pause below is the condition under test (an upload longer than the
// timeout), not synchronisation. The timeout is generous (1s) because the
// upstream must still answer within it once the upload is done, on a
// machine whose cores a CPU hog may saturate.
func TestHeaderTimeoutStartsAfterUpload(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	got := make(chan string, 1)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		_, _ = io.WriteString(w, "received")
	})
	rt := testRoute("app.test", addrOf(t, up))
	rt.Timeout = timeout
	f := newFixture(t, Config{}, table(rt))

	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "first half, ")
		time.Sleep(timeout + timeout/2)
		_, _ = io.WriteString(pw, "second half")
		pw.Close()
	}()
	res := f.do(t, f.newRequest(t, "POST", "app.test", "/", pr))
	if body := readAll(t, res.Body); res.StatusCode != 200 || body != "received" {
		t.Fatalf("slow upload: %d %q, want 200 received", res.StatusCode, body)
	}
	if b := <-got; b != "first half, second half" {
		t.Fatalf("upstream got %q", b)
	}
}

// TestStaleHeaderDeadline: a small response leaves its header deadline on
// the pooled connection; a later request with a body must not trip over
// it. The pause after each GET is the condition under test (the deadline it
// left has passed), not synchronisation. The timeout is generous (1s): every
// upstream must still answer within it under a CPU hog.
func TestStaleHeaderDeadline(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	up, conns := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+string(b))
	})
	rt := testRoute("app.test", addrOf(t, up))
	rt.Timeout = timeout
	f := newFixture(t, Config{}, table(rt))
	for i, method := range []string{"GET", "POST", "GET", "PUT", "GET"} {
		body := ""
		if method != "GET" {
			body = "payload"
		}
		res := f.do(t, f.newRequest(t, method, "app.test", "/", strings.NewReader(body)))
		if got, want := readAll(t, res.Body), method+" "+body; res.StatusCode != 200 || got != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, res.StatusCode, got, want)
		}
		res.Body.Close()
		if method == "GET" && i < 4 {
			time.Sleep(timeout + timeout/5)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections, want 1 (kept alive)", n)
	}
}
