package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestHijackedStreamOverTLS: an HTTP/1.1 client over TLS (no h2 offered)
// takes the hijacked path too, and still gets each event before the next is
// written, then a clean end.
func TestHijackedStreamOverTLS(t *testing.T) {
	l := &lockstep{contentType: "text/event-stream", next: make(chan struct{}),
		chunks: []string{"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"}}
	up := httptest.NewServer(l)
	t.Cleanup(up.Close)
	h := New(Config{})
	h.SetTable(table(testRoute("sse.test", addrOf(t, up))))

	var hijacked atomic.Int32
	front := httptest.NewUnstartedServer(h)
	front.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateHijacked {
			hijacked.Add(1)
		}
	}
	front.StartTLS() // HTTP/1.1 over TLS: EnableHTTP2 is false
	t.Cleanup(front.Close)

	res, err := front.Client().Do(newRequest(t, "GET", front.URL+"/events", "sse.test", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.TLS == nil || res.ProtoMajor != 1 {
		t.Fatalf("want HTTP/1.1 over TLS, got %s (TLS %v)", res.Proto, res.TLS != nil)
	}
	readLockstep(t, res.Body, l, "\n\n")
	if rest, err := io.ReadAll(res.Body); err != nil || len(rest) > 0 {
		t.Fatalf("after the last event: %q, %v; want a clean end", rest, err)
	}
	if n := hijacked.Load(); n != 1 {
		t.Fatalf("%d connections hijacked, want 1: the TLS stream took the old path", n)
	}
}
