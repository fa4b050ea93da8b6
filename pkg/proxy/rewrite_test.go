package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/internal/syncbuf"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// noFollow is a client of the fixture that returns redirects as they are.
func (f *fixture) noFollow() *http.Client {
	c := *f.front.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// echoBackend answers with the request URI it got, keeps each request for
// the test, and sends a few headers a route may hide.
func echoBackend(t *testing.T) (*httptest.Server, chan *http.Request) {
	got := make(chan *http.Request, 64)
	srv := backend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Clone(r.Context())
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("X-Powered-By", "php")
		w.Header().Set("X-Request-Id", "from-upstream")
		_, _ = io.WriteString(w, r.URL.RequestURI())
	})
	return srv, got
}

// upstreamSaw returns the request the backend got, or fails.
func upstreamSaw(t *testing.T, got chan *http.Request) *http.Request {
	t.Helper()
	select {
	case r := <-got:
		return r
	default:
		t.Fatal("the upstream got no request")
		return nil
	}
}

func TestRedirects(t *testing.T) {
	srv, got := echoBackend(t)
	up := addrOf(t, srv)

	www := testRoute("example.test", up)
	www.Hosts = []string{"example.test", "www.example.test"}
	www.CanonicalHost = "example.test"

	wwwTLS := testRoute("secure.test", up)
	wwwTLS.Hosts = []string{"secure.test", "www.secure.test"}
	wwwTLS.TLS, wwwTLS.Redirect, wwwTLS.CanonicalHost = route.TLSAuto, true, "secure.test"

	moved := testRoute("old.test", up)
	moved.Return = route.Return{Code: 301, URL: "https://new.test$request_uri"}

	temp := testRoute("temp.test", up)
	temp.Return = route.Return{Code: 307, URL: "$scheme://$host/maintenance?from=$uri&$args"}

	rw := testRoute("rw.test", up)
	rw.Headers = []route.Header{{Name: "Strict-Transport-Security", Value: "max-age=60"}}
	rw.Rewrites = []route.Rewrite{
		{Regex: `^/old/(.*)$`, Replacement: "/new/$1", Code: 301},
		{Regex: `^/blog/(\d+)/(.*)$`, Replacement: "/posts/$2?id=$1", Code: 302},
		{Regex: `^/temp/(.*)$`, Replacement: "https://other.test/$1?", Code: 307},
		{Regex: `^/evil(.*)$`, Replacement: "/$1", Code: 302},
	}

	f := newFixture(t, Config{}, table(www, wwwTLS, moved, temp, rw))
	c := f.noFollow()
	tests := []struct {
		name, host, target string
		wantCode           int
		wantLoc            string
	}{
		{name: "www to apex keeps path and query", host: "www.example.test", target: "/a/b?x=1&y=%20z", wantCode: 301, wantLoc: "http://example.test/a/b?x=1&y=%20z"},
		{name: "www to apex drops the port", host: "www.example.test:8080", target: "/", wantCode: 301, wantLoc: "http://example.test/"},
		{name: "apex is served", host: "example.test", target: "/a?x=1", wantCode: 200},
		{name: "www to apex goes to https in one hop", host: "www.secure.test", target: "/p?q=1", wantCode: 301, wantLoc: "https://secure.test/p?q=1"},
		{name: "apex on http still goes to https", host: "secure.test", target: "/p?q=1", wantCode: 308, wantLoc: "https://secure.test/p?q=1"},
		{name: "old domain to new with $request_uri", host: "old.test", target: "/x/y?z=1", wantCode: 301, wantLoc: "https://new.test/x/y?z=1"},
		{name: "return 307 with variables", host: "temp.test", target: "/a/b?k=v", wantCode: 307, wantLoc: "http://temp.test/maintenance?from=/a/b&k=v"},
		{name: "rewrite permanent keeps the query", host: "rw.test", target: "/old/x/y?q=1", wantCode: 301, wantLoc: "/new/x/y?q=1"},
		{name: "rewrite permanent without query", host: "rw.test", target: "/old/", wantCode: 301, wantLoc: "/new/"},
		{name: "rewrite redirect with two captures appends the query", host: "rw.test", target: "/blog/42/hello?utm=x", wantCode: 302, wantLoc: "/posts/hello?id=42&utm=x"},
		{name: "rewrite 307 with ? drops the query", host: "rw.test", target: "/temp/a?q=1", wantCode: 307, wantLoc: "https://other.test/a"},
		{name: "a relative location never names another host", host: "rw.test", target: "/evil/other.test/x", wantCode: 302, wantLoc: "/other.test/x"},
		{name: "no rewrite matches", host: "rw.test", target: "/kept?q=1", wantCode: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Do(f.newRequest(t, http.MethodGet, tc.host, tc.target, nil))
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantCode || res.Header.Get("Location") != tc.wantLoc {
				t.Fatalf("got %d Location %q, want %d %q", res.StatusCode, res.Header.Get("Location"), tc.wantCode, tc.wantLoc)
			}
			if res.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-ID on the response")
			}
			if tc.wantCode != 200 {
				if len(got) != 0 {
					t.Fatalf("the upstream was asked: %s", (<-got).URL)
				}
				return
			}
			if r := upstreamSaw(t, got); body != tc.target || r.URL.RequestURI() != tc.target {
				t.Fatalf("upstream got %q (body %q), want %q", r.URL.RequestURI(), body, tc.target)
			}
		})
	}
	// Nginx's add_header applies to redirects as well.
	res, err := c.Do(f.newRequest(t, http.MethodGet, "rw.test", "/old/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Strict-Transport-Security") != "max-age=60" {
		t.Errorf("the route's headers are missing on a redirect: %v", res.Header)
	}
}

func TestInternalRewrite(t *testing.T) {
	srv, got := echoBackend(t)
	up := addrOf(t, srv)

	api := testRoute("app.test", up)
	api.Path, api.StripPrefix = "/api", true
	api.Rewrites = []route.Rewrite{
		{Regex: `^/api/v1/(.*)$`, Replacement: "/v2/$1"},                        // goes on to the next
		{Regex: `^/v2/users/(\w+)$`, Replacement: "/users?name=$1", Last: true}, // stops
		{Regex: `^/users$`, Replacement: "/never"},
		{Regex: `^/api/search/(.*)$`, Replacement: "/find?q=$1&from=$uri"},
		{Regex: `^/api/clean/(.*)$`, Replacement: "/c/$1?"},
		{Regex: `^/api/dots/(.*)$`, Replacement: "/x/../$1"},
	}
	f := newFixture(t, Config{}, table(api))
	tests := []struct {
		name, target, want string
	}{
		{name: "rewrite then the next one", target: "/api/v1/items?page=2", want: "/v2/items?page=2"},
		{name: "last stops the rewrites", target: "/api/v1/users/bob?x=1", want: "/users?name=bob&x=1"},
		{name: "captures and $uri in the query", target: "/api/search/go?lang=en", want: "/find?q=go&from=/api/search/go&lang=en"},
		{name: "? at the end drops the query", target: "/api/clean/a?secret=1", want: "/c/a"},
		{name: "the rewritten path is canonical", target: "/api/dots/y", want: "/y"},
		{name: "no rewrite: strip_prefix applies", target: "/api/other?k=v", want: "/other?k=v"},
	}
	for _, tc := range tests {
		for _, viaReverseProxy := range []bool{false, true} {
			name := tc.name + " (direct)"
			if viaReverseProxy {
				name = tc.name + " (ReverseProxy)"
			}
			t.Run(name, func(t *testing.T) {
				req := f.newRequest(t, http.MethodGet, "app.test", tc.target, nil)
				if viaReverseProxy {
					req.Header.Set("Te", "trailers") // leaves the direct path (direct.go)
				}
				res := f.do(t, req)
				if res.StatusCode != 200 {
					t.Fatalf("status %d", res.StatusCode)
				}
				if r := upstreamSaw(t, got); r.URL.RequestURI() != tc.want {
					t.Fatalf("upstream got %q, want %q", r.URL.RequestURI(), tc.want)
				}
			})
		}
	}
}

func TestRequestAndResponseHeaders(t *testing.T) {
	srv, got := echoBackend(t)
	rt := testRoute("app.test", addrOf(t, srv))
	rt.RequestHeaders = []route.Header{
		{Name: "Host", Value: "internal.test"},
		{Name: "X-Empty", Value: ""},
		{Name: "X-Real-Ip", Value: "$remote_addr"},
		{Name: "X-Original-Uri", Value: "$scheme://$host$request_uri"},
		{Name: "X-Trace", Value: "id=$request_id"},
	}
	rt.RequestHeadersAdd = []route.Header{{Name: "X-Tag", Value: "ingress"}, {Name: "X-Tag-Uri", Value: "$uri"}}
	rt.RequestHeadersRemove = []string{"Cookie", "X-Secret"}
	rt.ResponseHeadersRemove = []string{"Server", "X-Powered-By"}
	f := newFixture(t, Config{}, table(rt))

	for _, viaReverseProxy := range []bool{false, true} {
		req := f.newRequest(t, http.MethodGet, "App.Test:80", "/p?q=1", nil)
		req.Header.Set("Cookie", "session=1")
		req.Header.Set("X-Secret", "s")
		req.Header.Set("X-Empty", "from-client")
		req.Header.Add("X-Tag", "from-client")
		req.Header.Set("X-Request-Id", "client-chosen")
		if viaReverseProxy {
			req.Header.Set("Te", "trailers")
		}
		res := f.do(t, req)
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		r := upstreamSaw(t, got)
		id := res.Header.Get("X-Request-Id")
		want := map[string]string{
			"Cookie": "", "X-Secret": "", "X-Empty": "",
			"X-Real-Ip":      "127.0.0.1",
			"X-Original-Uri": "http://app.test/p?q=1",
			"X-Trace":        "id=" + id,
			"X-Tag-Uri":      "/p",
			"X-Request-Id":   id,
		}
		for k, v := range want {
			if g := r.Header.Get(k); g != v {
				t.Errorf("reverse proxy %t: upstream header %s = %q, want %q", viaReverseProxy, k, g, v)
			}
		}
		if g := r.Header.Values("X-Tag"); strings.Join(g, ",") != "from-client,ingress" {
			t.Errorf("X-Tag = %q, want the client's and the added one", g)
		}
		if r.Host != "internal.test" {
			t.Errorf("upstream Host = %q, want internal.test", r.Host)
		}
		if res.Header.Get("Server") != "" || res.Header.Get("X-Powered-By") != "" {
			t.Errorf("hidden response headers passed: %v", res.Header)
		}
		if v := res.Header.Values("X-Request-Id"); len(v) != 1 || v[0] == "client-chosen" || v[0] == "from-upstream" {
			t.Errorf("response X-Request-ID = %q, want one, ours", v)
		}
	}
}

func TestRequestID(t *testing.T) {
	srv, got := echoBackend(t)
	rt := testRoute("app.test", addrOf(t, srv))
	idRE := regexp.MustCompile(`^[0-9a-f]{32}$`)

	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		sent    string
		keep    bool
	}{
		{name: "generated"},
		{name: "kept from a trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, sent: "lb-4f2a-77", keep: true},
		{name: "replaced from an untrusted client", sent: "spoofed"},
		{name: "invalid from a trusted proxy is replaced", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, sent: "a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			f := newFixture(t, Config{Logger: newLogger(&log), TrustedProxies: tc.trusted}, table(rt))
			seen := map[string]bool{}
			for range 3 {
				req := f.newRequest(t, http.MethodGet, "app.test", "/x", nil)
				if tc.sent != "" {
					req.Header.Set("X-Request-ID", tc.sent)
				}
				res := f.do(t, req)
				readAll(t, res.Body)
				id := res.Header.Get("X-Request-Id")
				if up := upstreamSaw(t, got).Header.Values("X-Request-Id"); len(up) != 1 || up[0] != id {
					t.Fatalf("upstream got X-Request-ID %q, client %q", up, id)
				}
				if tc.keep {
					if id != tc.sent {
						t.Fatalf("id %q, want the trusted proxy's %q", id, tc.sent)
					}
				} else if !idRE.MatchString(id) || seen[id] {
					t.Fatalf("id %q: want a new 32-digit hex id per request", id)
				}
				seen[id] = true
			}
			// The 404 of an unknown host carries one too.
			res := f.do(t, f.newRequest(t, http.MethodGet, "unknown.test", "/", nil))
			if res.StatusCode != 404 || res.Header.Get("X-Request-Id") == "" {
				t.Fatalf("404: status %d, X-Request-ID %q", res.StatusCode, res.Header.Get("X-Request-Id"))
			}
			seen[res.Header.Get("X-Request-Id")] = true
			f.front.Close() // the access log lines are written
			logged := map[string]bool{}
			for line := range strings.SplitSeq(strings.TrimSpace(log.String()), "\n") {
				var entry struct {
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				logged[entry.RequestID] = true
			}
			for id := range seen {
				if !logged[id] {
					t.Errorf("request id %q not in the access log:\n%s", id, log.String())
				}
			}
		})
	}
}

// TestEditsAfterJSON: a route with rewrites crosses the control channel as
// JSON (brief rule: compiled state is rebuilt where the table is served).
func TestEditsAfterJSON(t *testing.T) {
	srv, got := echoBackend(t)
	rt := testRoute("app.test", addrOf(t, srv))
	rt.Rewrites = []route.Rewrite{{Regex: `^/a/(.*)$`, Replacement: "/b/$1"}, {Regex: `^/r/(.*)$`, Replacement: "/s/$1", Code: 308}}
	rt.RequestHeaders = []route.Header{{Name: "X-Via", Value: "$host"}}
	data, err := json.Marshal(rt)
	if err != nil {
		t.Fatal(err)
	}
	var edge route.Route
	if err := json.Unmarshal(data, &edge); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{}, table(&edge))
	res := f.do(t, f.newRequest(t, http.MethodGet, "app.test", "/a/x", nil))
	if r := upstreamSaw(t, got); res.StatusCode != 200 || r.URL.Path != "/b/x" || r.Header.Get("X-Via") != "app.test" {
		t.Fatalf("status %d, upstream got %s with X-Via %q", res.StatusCode, r.URL, r.Header.Get("X-Via"))
	}
	res, err = f.noFollow().Do(f.newRequest(t, http.MethodGet, "app.test", "/r/y", nil))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 308 || res.Header.Get("Location") != "/s/y" {
		t.Fatalf("got %d %q", res.StatusCode, res.Header.Get("Location"))
	}

	// A table that did not come from discovery may hold a bad regex: the
	// route answers 503 and never reaches the upstream.
	bad := testRoute("bad.test", addrOf(t, srv))
	bad.Rewrites = []route.Rewrite{{Regex: `(`, Replacement: "/x"}}
	f.h.SetTable(table(bad))
	res = f.do(t, f.newRequest(t, http.MethodGet, "bad.test", "/", nil))
	if res.StatusCode != 503 || len(got) != 0 {
		t.Fatalf("bad regex: status %d, upstream asked %d times", res.StatusCode, len(got))
	}
}

// TestExplainRewrites: ingress explain (GET /api/match) runs the same
// redirects and rewrites as the handler, and names the header edits and
// compression.
func TestExplainRewrites(t *testing.T) {
	site := &route.Route{Service: "site", Name: "default", Hosts: []string{"example.com", "www.example.com"}, Path: "/app",
		StripPrefix: true, Port: 80, TLS: route.TLSOff, Scheme: route.SchemeHTTP, CanonicalHost: "example.com",
		Rewrites: []route.Rewrite{
			{Regex: `^/app/old/(.*)$`, Replacement: "/app/new/$1", Code: 301},
			{Regex: `^/app/v1/(.*)$`, Replacement: "/v2/$1", Last: true},
		},
		RequestHeaders:        []route.Header{{Name: "X-Real-Ip", Value: "$remote_addr"}},
		RequestHeadersRemove:  []string{"Cookie"},
		ResponseHeadersRemove: []string{"Server"},
		Compress:              route.Compression{Encodings: []string{"zstd", "gzip"}, Types: []string{"application/json"}, MinSize: 1000},
	}
	moved := &route.Route{Service: "old", Name: "default", Hosts: []string{"old.example.com"}, Path: "/", Port: 80,
		TLS: route.TLSOff, Scheme: route.SchemeHTTP, Return: route.Return{Code: 308, URL: "https://example.com$request_uri"}}
	tab := table(site, moved)
	tests := []struct {
		url, outcome, step string
	}{
		{url: "http://www.example.com/app/x?q=1", outcome: "301 to http://example.com/app/x?q=1"},
		{url: "http://example.com/app/old/a?q=1", outcome: "301 to /app/new/a?q=1"},
		{url: "http://example.com/app/v1/users?id=3", outcome: "forwarded to site/default", step: "HTTP /v2/users?id=3 to port 80"},
		{url: "http://example.com/app/other", outcome: "forwarded to site/default", step: "HTTP /other to port 80"},
		{url: "http://example.com/app/x", step: "sets X-Real-Ip: $remote_addr"},
		{url: "http://example.com/app/x", step: "compresses (zstd or gzip) application/json from 1000 bytes"},
		{url: "http://old.example.com/a/b?c", outcome: "308 to https://example.com/a/b?c"},
	}
	for _, tc := range tests {
		e, err := Explain(tab, tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if tc.outcome != "" && !strings.HasPrefix(e.Outcome, tc.outcome) {
			t.Errorf("%s: outcome %q, want %q", tc.url, e.Outcome, tc.outcome)
		}
		if tc.step != "" {
			found := false
			for _, s := range e.Steps {
				found = found || strings.Contains(s.Effect, tc.step)
			}
			if !found {
				t.Errorf("%s: no step says %q: %+v", tc.url, tc.step, e.Steps)
			}
		}
		// The handler agrees with the explanation of a redirect.
		if code, loc, ok := strings.Cut(e.Outcome, " to "); ok && strings.HasPrefix(code, "30") {
			f := newFixture(t, Config{}, tab)
			u, _ := url.Parse(tc.url)
			res, err := f.noFollow().Do(f.newRequest(t, http.MethodGet, u.Host, u.RequestURI(), nil))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if strconv.Itoa(res.StatusCode) != code || res.Header.Get("Location") != loc {
				t.Errorf("%s: the handler answers %d %q, explain says %s", tc.url, res.StatusCode, res.Header.Get("Location"), e.Outcome)
			}
		}
	}
}

// TestRequestIDToForwardAuth: the auth service of auth.forward sees the
// request's id (the one the upstream and the client get), never one an
// untrusted client chose.
func TestRequestIDToForwardAuth(t *testing.T) {
	authSaw := make(chan string, 1)
	auth := backend(t, func(w http.ResponseWriter, r *http.Request) {
		authSaw <- r.Header.Get("X-Request-Id")
	})
	srv, got := echoBackend(t)
	rt := testRoute("app.test", addrOf(t, srv))
	rt.ForwardAuth = route.ForwardAuth{URL: auth.URL + "/check"}
	f := newFixture(t, Config{}, table(rt))
	req := f.newRequest(t, http.MethodGet, "app.test", "/x", nil)
	req.Header.Set("X-Request-ID", "spoofed")
	res := f.do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	id := res.Header.Get("X-Request-Id")
	if a, u := <-authSaw, upstreamSaw(t, got).Header.Get("X-Request-Id"); a != id || u != id || id == "spoofed" {
		t.Fatalf("client %q, auth service %q, upstream %q: want one id, not the client's", id, a, u)
	}
}
