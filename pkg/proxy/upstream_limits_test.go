package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
)

// TestUpstreamResponseHeadLimit: a response head over maxResponseHead is a
// 502 with a short body and an access log line naming the cause; a large
// one under the limit passes.
func TestUpstreamResponseHeadLimit(t *testing.T) {
	const chunk = 32 << 10
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		n := 0
		switch r.URL.Path {
		case "/huge":
			n = 2 * maxResponseHead / chunk // 2 MiB of headers
		case "/large":
			n = maxResponseHead / 2 / chunk // 512 KiB
		}
		for i := range n {
			w.Header().Set("X-Big-"+strings.Repeat("a", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", chunk))
		}
		_, _ = io.WriteString(w, "ok")
	})
	var logs syncbuf.Buffer
	f := newFixture(t, Config{Logger: newLogger(&logs)}, table(testRoute("app.test", addrOf(t, up))))

	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string
	}{
		{name: "2 MiB of headers", path: "/huge", wantCode: http.StatusBadGateway, wantBody: "Bad Gateway\n"},
		{name: "512 KiB of headers", path: "/large", wantCode: http.StatusOK, wantBody: "ok"},
		{name: "small after huge", path: "/small", wantCode: http.StatusOK, wantBody: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, f.newRequest(t, "GET", "app.test", tt.path, nil))
			if got := readAll(t, res.Body); res.StatusCode != tt.wantCode || got != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, got, tt.wantCode, tt.wantBody)
			}
		})
	}
	if !strings.Contains(logs.String(), h1.ErrHeadTooLarge.Error()) {
		t.Errorf("access log does not name the cause %q:\n%s", h1.ErrHeadTooLarge, logs.String())
	}
}

// rawUpstream accepts connections on loopback, reads one request head from
// each, answers with the bytes of the path's entry in answers and closes.
func rawUpstream(t *testing.T, answers map[string]string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, answers[req.URL.Path])
			})
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestUpstreamGarbage: whatever an upstream sends instead of a response
// head, the client gets a 502 and the proxy keeps serving.
func TestUpstreamGarbage(t *testing.T) {
	answers := map[string]string{
		"/not-http":       "garbage\r\n\r\n",
		"/bad-status":     "HTTP/1.1 2000 OK\r\n\r\n",
		"/no-colon":       "HTTP/1.1 200 OK\r\nFoo\r\n\r\n",
		"/bad-length":     "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
		"/two-lengths":    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
		"/truncated-head": "HTTP/1.1 200 OK\r\nX-A: b",
		"/nothing":        "",
		"/endless-line":   "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 2*maxResponseHead),
		"/many-headers":   "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", maxResponseHead/6+1) + "\r\n",
		"/fine":           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	}
	f := newFixture(t, Config{}, table(testRoute("app.test", rawUpstream(t, answers))))
	for path := range answers {
		t.Run(path, func(t *testing.T) {
			want, wantBody := http.StatusBadGateway, "Bad Gateway\n"
			if path == "/fine" {
				want, wantBody = http.StatusOK, "ok"
			}
			res := f.do(t, f.newRequest(t, "GET", "app.test", path, nil))
			if got := readAll(t, res.Body); res.StatusCode != want || got != wantBody {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, got, want, wantBody)
			}
		})
	}
}
