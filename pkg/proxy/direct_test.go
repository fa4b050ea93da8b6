package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestHopByHopHeaders: hop-by-hop headers, and those the Connection header
// names, are dropped in both directions (RFC 9110 section 7.6.1); the
// rest passes. scheme=http takes the direct path for plain requests and
// ReverseProxy for the rest; scheme=https always ReverseProxy: each case
// must come out the same on both.
func TestHopByHopHeaders(t *testing.T) {
	seen := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Up-Secret")
		h.Set("X-Up-Secret", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Up-Keep", "yes")
		got := map[string]string{"query": r.URL.RawQuery}
		for k, v := range r.Header {
			got[k] = strings.Join(v, "|")
		}
		_ = json.NewEncoder(w).Encode(got)
	}
	ups := map[string]*httptest.Server{
		route.SchemeHTTP:  httptest.NewServer(http.HandlerFunc(seen)),
		route.SchemeHTTPS: httptest.NewTLSServer(http.HandlerFunc(seen)),
	}
	for _, s := range ups {
		t.Cleanup(s.Close)
	}
	tests := []struct {
		name    string
		query   string
		in      map[string]string
		want    map[string]string // "" means absent
		wantRes map[string]string
	}{
		{
			name: "hop-by-hop and Connection-named dropped",
			in: map[string]string{"Connection": "X-Secret, keep-alive", "X-Secret": "1", "Keep-Alive": "300",
				"Proxy-Authorization": "Basic eA==", "Proxy-Connection": "keep-alive", "X-Keep": "yes", "User-Agent": "test/1"},
			want: map[string]string{"X-Secret": "", "Keep-Alive": "", "Proxy-Authorization": "", "Proxy-Connection": "",
				"Connection": "", "X-Keep": "yes", "User-Agent": "test/1", "X-Forwarded-Proto": "http"},
			wantRes: map[string]string{"X-Up-Secret": "", "Keep-Alive": "", "Proxy-Authenticate": "", "X-Up-Keep": "yes"},
		},
		{
			name:    "no User-Agent stays none",
			in:      map[string]string{"User-Agent": ""},
			want:    map[string]string{"User-Agent": ""},
			wantRes: map[string]string{"X-Up-Keep": "yes"},
		},
		{
			name:    "TE and Upgrade without an upgrade dropped",
			in:      map[string]string{"Te": "trailers", "Upgrade": "h2c"},
			want:    map[string]string{"Te": "trailers", "Upgrade": ""},
			wantRes: map[string]string{"X-Up-Keep": "yes"},
		},
		{
			name:    "plain query unchanged",
			query:   "a=1&b=%2F&c",
			want:    map[string]string{"query": "a=1&b=%2F&c"},
			wantRes: map[string]string{"X-Up-Keep": "yes"},
		},
		{
			name:    "semicolon query re-encoded",
			query:   "a=1;b=2&c=3",
			want:    map[string]string{"query": "c=3"},
			wantRes: map[string]string{"X-Up-Keep": "yes"},
		},
	}
	for scheme, up := range ups {
		rt := testRoute("app.test", addrOf(t, up))
		rt.Scheme = scheme
		f := newFixture(t, Config{}, table(rt))
		for _, tt := range tests {
			t.Run(scheme+"/"+tt.name, func(t *testing.T) {
				target := "/"
				if tt.query != "" {
					target += "?" + tt.query
				}
				req := f.newRequest(t, "GET", "app.test", target, nil)
				for k, v := range tt.in {
					req.Header[k] = []string{v}
				}
				res := f.do(t, req)
				var got map[string]string
				if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
					t.Fatalf("status %d: %v", res.StatusCode, err)
				}
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("upstream saw %s = %q, want %q", k, got[k], v)
					}
				}
				for k, v := range tt.wantRes {
					if g := res.Header.Get(k); g != v {
						t.Errorf("client got %s = %q, want %q", k, g, v)
					}
				}
			})
		}
	}
}

// TestCutResponseAborted: an upstream that dies mid-body must not look like
// a complete response to the client: the client sees an error, before or
// after the head.
func TestCutResponseAborted(t *testing.T) {
	up := rawUpstream(t, map[string]string{
		"/cut":     "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
		"/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nshort\r\n",
	})
	f := newFixture(t, Config{}, table(testRoute("app.test", up)))
	for _, path := range []string{"/cut", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			res, err := f.front.Client().Do(f.newRequest(t, "GET", "app.test", path, nil))
			if err != nil {
				return // aborted before the head: an error too
			}
			defer res.Body.Close()
			if b, err := io.ReadAll(res.Body); err == nil {
				t.Fatalf("cut upstream body read as complete: %d %q", res.StatusCode, b)
			}
		})
	}
}

// TestStreamBulkIntact: a stream whose writes outgrow the small first copy
// buffer arrives byte for byte.
func TestStreamBulkIntact(t *testing.T) {
	var want bytes.Buffer
	for i := range 300 {
		want.WriteString(strings.Repeat(string(rune('a'+i%26)), i*7) + "\n")
	}
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for line := range strings.Lines(want.String()) {
			_, _ = io.WriteString(w, line)
			w.(http.Flusher).Flush()
		}
	})
	f := newFixture(t, Config{}, table(testRoute("app.test", addrOf(t, up))))
	res := f.do(t, f.newRequest(t, "GET", "app.test", "/", nil))
	if got := readAll(t, res.Body); got != want.String() {
		t.Fatalf("got %d bytes, want %d identical ones", len(got), want.Len())
	}
}
