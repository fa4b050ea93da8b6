package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

func TestStatusCodes(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Frame-Options", "from-upstream")
		_, _ = io.WriteString(w, "upstream "+r.URL.RequestURI())
	})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	plain := testRoute("app.test", addrOf(t, ok))
	api := testRoute("app.test", addrOf(t, ok))
	api.Name, api.Path, api.StripPrefix = "api", "/api", true
	dead := testRoute("dead.test", deadAddr(t))
	empty := testRoute("empty.test")
	timeout := testRoute("slow.test", addrOf(t, slow))
	timeout.Timeout = 50 * time.Millisecond
	limited := testRoute("small.test", addrOf(t, ok))
	limited.MaxBody = 1024
	authed := testRoute("auth.test", addrOf(t, ok))
	authed.BasicAuth = []route.BasicUser{{User: "alice", Hash: hash}}
	walled := testRoute("wall.test", addrOf(t, ok))
	walled.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	open := testRoute("open.test", addrOf(t, ok))
	open.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	secure := testRoute("secure.test", addrOf(t, ok))
	secure.TLS, secure.Redirect = route.TLSAuto, true
	noRedirect := testRoute("plain.test", addrOf(t, ok))
	noRedirect.TLS, noRedirect.Redirect = route.TLSAuto, false
	headers := testRoute("headers.test", addrOf(t, ok))
	headers.Headers = []route.Header{{Name: "Strict-Transport-Security", Value: "max-age=60"}, {Name: "X-Frame-Options", Value: "DENY"}}

	deadHeaders := testRoute("deadheaders.test", deadAddr(t))
	deadHeaders.Service, deadHeaders.Headers = "svc2", headers.Headers

	f := newFixture(t, Config{}, table(plain, api, dead, empty, timeout, limited, authed, walled, open, secure, noRedirect, headers, deadHeaders))

	big := strings.Repeat("x", 2048)
	tests := []struct {
		name       string
		method     string
		host       string
		target     string
		body       io.Reader
		user, pass string
		wantCode   int
		wantBody   string            // exact body, when set
		wantHeader map[string]string // exact header values, when set
	}{
		{name: "routed", host: "app.test", target: "/x?q=1", wantCode: 200, wantBody: "upstream /x?q=1"},
		{name: "host case and port ignored", host: "APP.test:8080", target: "/", wantCode: 200, wantBody: "upstream /"},
		{name: "strip prefix", host: "app.test", target: "/api/v1?a=b", wantCode: 200, wantBody: "upstream /v1?a=b"},
		{name: "strip prefix to root", host: "app.test", target: "/api", wantCode: 200, wantBody: "upstream /"},
		{name: "prefix on segment boundary", host: "app.test", target: "/apix", wantCode: 200, wantBody: "upstream /apix"},
		{name: "dot segments cleaned before matching", host: "app.test", target: "/x/../api/v2", wantCode: 200, wantBody: "upstream /v2"},
		{name: "unknown host", host: "nope.test", target: "/", wantCode: 404, wantBody: "Not Found\n"},
		{name: "refused upstream", host: "dead.test", target: "/", wantCode: 502, wantBody: "Bad Gateway\n"},
		{name: "no upstream", host: "empty.test", target: "/", wantCode: 502, wantBody: "Bad Gateway\n"},
		{name: "header timeout", host: "slow.test", target: "/", wantCode: 504, wantBody: "Gateway Timeout\n"},
		{name: "body under limit", method: "POST", host: "small.test", target: "/", body: strings.NewReader("small"), wantCode: 200},
		{name: "content-length over limit", method: "POST", host: "small.test", target: "/", body: strings.NewReader(big), wantCode: 413, wantBody: "Request Entity Too Large\n"},
		{name: "chunked over limit", method: "POST", host: "small.test", target: "/", body: io.MultiReader(strings.NewReader(big)), wantCode: 413, wantBody: "Request Entity Too Large\n"},
		{name: "no credentials", host: "auth.test", target: "/", wantCode: 401,
			wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="svc", charset="UTF-8"`}},
		{name: "wrong password", host: "auth.test", target: "/", user: "alice", pass: "guess", wantCode: 401},
		{name: "unknown user", host: "auth.test", target: "/", user: "bob", pass: "s3cret", wantCode: 401},
		{name: "right password", host: "auth.test", target: "/", user: "alice", pass: "s3cret", wantCode: 200},
		{name: "right password again (cached)", host: "auth.test", target: "/", user: "alice", pass: "s3cret", wantCode: 200},
		{name: "wrong password after success", host: "auth.test", target: "/", user: "alice", pass: "s3cret!", wantCode: 401},
		{name: "client not allowed", host: "wall.test", target: "/", wantCode: 403, wantBody: "Forbidden\n"},
		{name: "client allowed", host: "open.test", target: "/", wantCode: 200},
		{name: "redirect to https", host: "secure.test:80", target: "/a/b?c=d&e", wantCode: 308,
			wantHeader: map[string]string{"Location": "https://secure.test/a/b?c=d&e"}},
		{name: "tls auto without redirect", host: "plain.test", target: "/", wantCode: 200},
		{name: "route headers override upstream", host: "headers.test", target: "/", wantCode: 200,
			wantHeader: map[string]string{"Strict-Transport-Security": "max-age=60", "X-Frame-Options": "DENY"}},
		{name: "route headers on errors too", host: "deadheaders.test", target: "/", wantCode: 502,
			wantHeader: map[string]string{"X-Frame-Options": "DENY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := f.newRequest(t, method, tt.host, tt.target, tt.body)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			client := *f.front.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body := readAll(t, res.Body)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d (body %q)", res.StatusCode, tt.wantCode, body)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := res.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s = %q, want exactly %q", k, got, v)
				}
			}
		})
	}
}

// TestForwardedHeaders checks X-Forwarded-* with and without a trusted
// proxy in front. The test client connects from 127.0.0.1.
func TestForwardedHeaders(t *testing.T) {
	echo := backend(t, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"xff": strings.Join(r.Header.Values("X-Forwarded-For"), "|"), "proto": r.Header.Get("X-Forwarded-Proto"),
			"host": r.Header.Get("X-Forwarded-Host"), "forwarded": r.Header.Get("Forwarded"), "hostHeader": r.Host,
		})
	})
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		in      map[string]string
		want    map[string]string
	}{
		{name: "untrusted, nothing sent", want: map[string]string{"xff": "127.0.0.1", "proto": "http", "host": "app.test", "hostHeader": "app.test"}},
		{name: "untrusted, spoofed values dropped",
			in:   map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test", "Forwarded": "for=6.6.6.6"},
			want: map[string]string{"xff": "127.0.0.1", "proto": "http", "host": "app.test", "forwarded": ""}},
		{name: "trusted, values kept and extended", trusted: loopback,
			in:   map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.test"},
			want: map[string]string{"xff": "203.0.113.7, 127.0.0.1", "proto": "https", "host": "public.test", "hostHeader": "app.test"}},
		{name: "trusted, nothing sent", trusted: loopback, want: map[string]string{"xff": "127.0.0.1", "proto": "http", "host": "app.test"}},
		{name: "other network trusted", trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			in:   map[string]string{"X-Forwarded-For": "203.0.113.7"},
			want: map[string]string{"xff": "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{TrustedProxies: tt.trusted}, table(testRoute("app.test", addrOf(t, echo))))
			req := f.newRequest(t, "GET", "app.test", "/", nil)
			for k, v := range tt.in {
				req.Header.Set(k, v)
			}
			res := f.do(t, req)
			var got map[string]string
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestAllowBehindTrustedProxy checks that allow uses X-Forwarded-For only
// when the peer is a trusted proxy.
func TestAllowBehindTrustedProxy(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	rt := testRoute("app.test", addrOf(t, ok))
	rt.Allow = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     []string
		want    int
	}{
		{name: "untrusted peer, allowed address claimed", xff: []string{"203.0.113.9"}, want: 403},
		{name: "trusted peer, allowed client", trusted: loopback, xff: []string{"203.0.113.9"}, want: 200},
		{name: "trusted peer, other client", trusted: loopback, xff: []string{"198.51.100.1"}, want: 403},
		{name: "trusted peer, spoofed left-most entry", trusted: loopback, xff: []string{"203.0.113.9, 198.51.100.1"}, want: 403},
		{name: "trusted chain skipped", trusted: append(loopback, netip.MustParsePrefix("10.0.0.0/8")), xff: []string{"203.0.113.9", "10.1.2.3"}, want: 200},
		{name: "garbage entry", trusted: loopback, xff: []string{"203.0.113.9, nonsense"}, want: 403},
		{name: "trusted peer, no header", trusted: loopback, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{TrustedProxies: tt.trusted}, table(rt))
			req := f.newRequest(t, "GET", "app.test", "/", nil)
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if res := f.do(t, req); res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}

// TestRedirectBehindTLSProxy: a trusted proxy that terminated TLS says so,
// and the route must not redirect again (a loop).
func TestRedirectBehindTLSProxy(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	rt := testRoute("app.test", addrOf(t, ok))
	rt.TLS, rt.Redirect = route.TLSAuto, true
	f := newFixture(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, table(rt))
	req := f.newRequest(t, "GET", "app.test", "/", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	if res := f.do(t, req); res.StatusCode != 200 {
		t.Fatalf("status %d, want 200", res.StatusCode)
	}
}

// TestAccessLog checks one line per request with the route, status, bytes
// and upstream, and neither the query nor the credentials.
func TestAccessLog(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	rt := testRoute("app.test", addrOf(t, ok))
	rt.BasicAuth = []route.BasicUser{{User: "u", Hash: hash}}
	var buf syncbuf.Buffer
	f := newFixture(t, Config{Logger: newLogger(&buf)}, table(rt))
	req := f.newRequest(t, "GET", "app.test", "/p?token=topsecret", nil)
	req.SetBasicAuth("u", "pw")
	res := f.do(t, req)
	readAll(t, res.Body)
	res.Body.Close()
	f.front.Close() // waits for the handler, so the line is written

	line := buf.String()
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	want := map[string]any{"route": "svc/default", "status": float64(200), "bytes": float64(5), "upstream": addrOf(t, ok).String(),
		"method": "GET", "host": "app.test", "path": "/p", "remote": "127.0.0.1", "message": "request"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, secret := range []string{"topsecret", "pw\"", "Basic "} {
		if strings.Contains(line, secret) {
			t.Errorf("log line contains %q: %s", secret, line)
		}
	}
	if n := bytes.Count([]byte(line), []byte("\n")); n != 1 {
		t.Errorf("%d log lines, want 1: %s", n, line)
	}
}

// TestNoRedirectOverTLS: a request that arrived over TLS is served, not
// redirected.
func TestNoRedirectOverTLS(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "secure") })
	rt := testRoute("app.test", addrOf(t, ok))
	rt.TLS, rt.Redirect = route.TLSAuto, true
	h := New(Config{})
	h.SetTable(table(rt))
	front := httptest.NewTLSServer(h)
	t.Cleanup(front.Close)
	res, err := front.Client().Do(newRequest(t, "GET", front.URL+"/", "app.test", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if body := readAll(t, res.Body); res.StatusCode != 200 || body != "secure" {
		t.Fatalf("got %d %q, want 200 secure", res.StatusCode, body)
	}
}

// TestForwardingHeadersOnlyFromTrustedProxies checks that the forwarding
// headers the ingress does not set itself (Forwarded, X-Real-IP,
// X-Forwarded-Port, underscore spellings that CGI-style backends read as
// HTTP_X_FORWARDED_FOR) reach the backend only from a trusted proxy, on the
// direct path and through ReverseProxy (a query with ';' takes that path).
func TestForwardingHeadersOnlyFromTrustedProxies(t *testing.T) {
	echo := backend(t, func(w http.ResponseWriter, r *http.Request) {
		got := map[string]string{}
		for k, vv := range r.Header {
			got[k] = strings.Join(vv, "|")
		}
		_ = json.NewEncoder(w).Encode(got)
	})
	spoofed := map[string]string{
		"Forwarded":         "for=6.6.6.6",
		"X-Real-IP":         "6.6.6.6",
		"X-Client-IP":       "6.6.6.6",
		"X-Forwarded-Port":  "443",
		"X-Forwarded-Ssl":   "on",
		"X_Forwarded_For":   "6.6.6.6",
		"X_Real_IP":         "6.6.6.6",
		"x_forwarded_proto": "https",
	}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, target := range []string{"/", "/?a=1;b=2"} {
		for _, trusted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s trusted=%v", target, trusted), func(t *testing.T) {
				cfg := Config{}
				if trusted {
					cfg.TrustedProxies = loopback
				}
				f := newFixture(t, cfg, table(testRoute("app.test", addrOf(t, echo))))
				req := f.newRequest(t, "GET", "app.test", target, nil)
				for k, v := range spoofed {
					req.Header[k] = []string{v} // as written: no canonical form
				}
				res := f.do(t, req)
				var got map[string]string
				if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
					t.Fatal(err)
				}
				for k := range spoofed {
					v, ok := got[http.CanonicalHeaderKey(k)]
					if !trusted && ok {
						t.Errorf("untrusted client's %s reached the backend: %q", k, v)
					}
					if trusted && !ok && !strings.Contains(k, "_") {
						t.Errorf("trusted proxy's %s was dropped", k)
					}
				}
				if got["X-Forwarded-For"] == "" || strings.Contains(got["X-Forwarded-For"], "6.6.6.6") {
					t.Errorf("X-Forwarded-For = %q, want the ingress's own value", got["X-Forwarded-For"])
				}
			})
		}
	}
}

// TestNoRouteBeforeFirstCompleteTable: before any table, and while the table
// is partial (routes file only, Swarm not read yet), a request without a
// route gets 503 with Retry-After, never 404; a partial table's routes are
// served; a complete table answers 404 for what it does not route.
func TestNoRouteBeforeFirstCompleteTable(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "static") })
	static := testRoute("static.test", addrOf(t, up))
	f := newFixture(t, Config{}, nil)
	tests := []struct {
		name       string
		table      *route.Table
		host       string
		wantStatus int
		wantRetry  bool
	}{
		{name: "no table yet", host: "app.test", wantStatus: http.StatusServiceUnavailable, wantRetry: true},
		{name: "partial table, unknown host", table: route.New(route.Snapshot{Routes: []*route.Route{static}, Partial: true}),
			host: "app.test", wantStatus: http.StatusServiceUnavailable, wantRetry: true},
		{name: "partial table, static route", table: route.New(route.Snapshot{Routes: []*route.Route{static}, Partial: true}),
			host: "static.test", wantStatus: http.StatusOK},
		{name: "complete table, unknown host", table: table(static), host: "app.test", wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.h.SetTable(tt.table)
			res := f.do(t, f.newRequest(t, "GET", tt.host, "/", nil))
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("Retry-After"); (got != "") != tt.wantRetry {
				t.Fatalf("Retry-After %q, want one: %v", got, tt.wantRetry)
			}
		})
	}
}
