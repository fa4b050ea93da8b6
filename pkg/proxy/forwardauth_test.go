package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// authSeen is what the auth service was asked.
type authSeen struct {
	method string
	header http.Header
	body   string
}

// TestForwardAuth: auth.forward through the proxy, against an auth service
// that accepts the cookie session=good (200 with X-Auth-User), sends
// browsers to a login page (302 with Location and Set-Cookie) and refuses
// others (401 with a body), and 403s /forbidden.
func TestForwardAuth(t *testing.T) {
	var mu sync.Mutex
	var seen []authSeen
	auth := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, authSeen{r.Method, r.Header.Clone(), string(b)})
		mu.Unlock()
		switch {
		case strings.HasPrefix(r.Header.Get("X-Forwarded-Uri"), "/forbidden"):
			http.Error(w, "forbidden by policy", http.StatusForbidden)
		case strings.Contains(r.Header.Get("Cookie"), "session=good"):
			w.Header().Set("X-Auth-User", "alice")
			w.Header().Set("X-Auth-Email", "alice@example.test")
			w.Header().Set("X-Not-Listed", "1")
			w.Write([]byte("ok body, never relayed"))
		case strings.Contains(r.Header.Get("Accept"), "text/html"):
			w.Header().Set("Location", "https://login.test/?rd="+r.Header.Get("X-Forwarded-Host")+r.Header.Get("X-Forwarded-Uri"))
			w.Header().Add("Set-Cookie", "csrf=abc; Path=/")
			w.WriteHeader(http.StatusFound)
			w.Write([]byte("to the login page"))
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
		}
	})
	type upSeen struct {
		method, uri, body string
		header            http.Header
	}
	ups := make(chan upSeen, 10)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ups <- upSeen{r.Method, r.RequestURI, string(b), r.Header.Clone()}
		w.Write([]byte("upstream"))
	})
	rt := testRoute("a.test", addrOf(t, up))
	rt.ForwardAuth = route.ForwardAuth{URL: auth.URL + "/oauth2/auth?x=1", Headers: []string{"X-Auth-Email", "X-Auth-User"}}
	rt.Headers = []route.Header{{Name: "Strict-Transport-Security", Value: "max-age=1"}}
	f := newFixture(t, Config{}, table(rt))
	lastAuth := func() authSeen {
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	noUpstream := func() {
		t.Helper()
		select {
		case u := <-ups:
			t.Fatalf("the upstream was reached: %+v", u)
		default:
		}
	}

	t.Run("allowed: headers copied, the client's spoofed ones replaced", func(t *testing.T) {
		req := f.newRequest(t, "POST", "a.test", "/api/x?q=1", strings.NewReader("payload"))
		req.Header.Set("Cookie", "session=good")
		req.Header.Set("Authorization", "Bearer t0k")
		req.Header.Set("X-Auth-User", "mallory")
		req.Header.Set("X-Forwarded-Uri", "/spoofed")
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("X-Hop", "only for the next hop")
		res := f.do(t, req)
		if body := readAll(t, res.Body); res.StatusCode != 200 || body != "upstream" {
			t.Fatalf("status %d body %q", res.StatusCode, body)
		}
		a := lastAuth()
		if a.method != "GET" || a.body != "" {
			t.Errorf("sub-request %s with body %q, want GET without body", a.method, a.body)
		}
		for k, want := range map[string]string{
			"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/api/x?q=1", "X-Forwarded-Host": "a.test",
			"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1", "Cookie": "session=good",
			"Authorization": "Bearer t0k", "Content-Length": "", "X-Auth-User": "mallory", "X-Hop": "",
		} {
			if got := a.header.Get(k); got != want {
				t.Errorf("auth service got %s %q, want %q", k, got, want)
			}
		}
		u := <-ups
		if u.method != "POST" || u.uri != "/api/x?q=1" || u.body != "payload" {
			t.Errorf("upstream got %s %s %q", u.method, u.uri, u.body)
		}
		if u.header.Get("X-Auth-User") != "alice" || u.header.Get("X-Auth-Email") != "alice@example.test" ||
			u.header.Get("X-Not-Listed") != "" || u.header.Get("Authorization") != "Bearer t0k" {
			t.Errorf("upstream headers %v", u.header)
		}
	})

	t.Run("allowed without the header: the client's value is removed", func(t *testing.T) {
		req := f.newRequest(t, "GET", "a.test", "/", nil)
		req.Header.Set("Cookie", "session=good")
		req.Header.Set("X-Auth-Email", "forged@example.test")
		res := f.do(t, req)
		readAll(t, res.Body)
		u := <-ups
		if got := u.header.Get("X-Auth-Email"); got != "alice@example.test" {
			t.Errorf("X-Auth-Email %q", got)
		}
	})

	t.Run("browser sent to login: 302 with Location, Set-Cookie and body as sent", func(t *testing.T) {
		req := f.newRequest(t, "GET", "a.test", "/%61pi/page", nil)
		req.Header.Set("Accept", "text/html")
		client := *f.front.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body := readAll(t, res.Body)
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://login.test/?rd=a.test/api/page" ||
			res.Header.Get("Set-Cookie") != "csrf=abc; Path=/" || body != "to the login page" ||
			res.Header.Get("Strict-Transport-Security") != "max-age=1" {
			t.Fatalf("got %d %v %q", res.StatusCode, res.Header, body)
		}
		if got := lastAuth().header.Get("X-Forwarded-Uri"); got != "/api/page" {
			t.Errorf("X-Forwarded-Uri %q, want the canonical /api/page", got)
		}
		noUpstream()
	})

	t.Run("refused: 401 with its header and body", func(t *testing.T) {
		res := f.do(t, f.newRequest(t, "GET", "a.test", "/api", nil))
		body := readAll(t, res.Body)
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != `Bearer realm="x"` || body != "who are you\n" {
			t.Fatalf("got %d %v %q", res.StatusCode, res.Header, body)
		}
		noUpstream()
	})

	t.Run("forbidden: 403 as sent, even with a good session", func(t *testing.T) {
		req := f.newRequest(t, "GET", "a.test", "/forbidden", nil)
		req.Header.Set("Cookie", "session=good")
		res := f.do(t, req)
		if body := readAll(t, res.Body); res.StatusCode != http.StatusForbidden || body != "forbidden by policy\n" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		noUpstream()
	})
}

// TestForwardAuthUnreachable: an auth service that refuses connections or
// does not answer in time closes the route: 503, the upstream untouched.
func TestForwardAuthUnreachable(t *testing.T) {
	reached := make(chan struct{}, 1)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { reached <- struct{}{} })
	release := make(chan struct{})
	slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	for name, url := range map[string]string{
		"refused": "http://" + deadAddr(t).String() + "/auth",
		"slow":    slow.URL + "/auth",
	} {
		t.Run(name, func(t *testing.T) {
			rt := testRoute("a.test", addrOf(t, up))
			rt.ForwardAuth.URL = url
			var logs syncBuffer
			h := New(Config{Logger: newLogger(&logs)})
			h.acc.authWait = 200 * time.Millisecond // the hang guard of this test, not a measurement
			h.SetTable(table(rt))
			front := httptest.NewServer(h)
			defer front.Close()
			res, err := front.Client().Do(newRequest(t, "GET", front.URL+"/", "a.test", nil))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", res.StatusCode)
			}
			select {
			case <-reached:
				t.Fatal("the upstream was reached")
			default:
			}
			if !strings.Contains(logs.String(), "forward auth: no answer") {
				t.Errorf("not logged: %s", logs.String())
			}
		})
	}
}
