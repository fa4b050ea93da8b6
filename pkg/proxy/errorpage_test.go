package proxy

import (
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestErrorPages: a route's pages replace the plain-text body of the
// errors the ingress answers itself: 502 from a file (read again when it
// changes), 503 from a URL (fetched once, kept a minute) for maintenance,
// which answers 503 with Retry-After without reaching the upstream. A 502
// the upstream sends is passed on as it is. A page that cannot be had
// leaves the plain text.
func TestErrorPages(t *testing.T) {
	dir := t.TempDir()
	file502 := filepath.Join(dir, "502.html")
	replaceFile(t, file502, "<h1>we are fixing it</h1>")
	var fetches atomic.Int32
	pages := backend(t, func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path == "/broken" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<h1>maintenance until noon</h1>"))
	})
	var reached atomic.Int32
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		http.Error(w, "the upstream's own 502", http.StatusBadGateway)
	})
	c := newClock()
	hdr := []route.Header{{Name: "X-Route", Value: "r"}}
	dead := testRoute("dead.test", deadAddr(t))
	dead.ErrorPages = []route.ErrorPage{{Code: 502, Source: file502}}
	dead.Headers = hdr
	down := testRoute("down.test", addrOf(t, up))
	down.Name = "down"
	down.Maintenance = true
	down.ErrorPages = []route.ErrorPage{{Code: 503, Source: pages.URL + "/503.html"}}
	bad := testRoute("bad.test", addrOf(t, up))
	bad.Name = "bad"
	bad.Maintenance = true
	bad.ErrorPages = []route.ErrorPage{{Code: 503, Source: pages.URL + "/broken"}}
	own := testRoute("own.test", addrOf(t, up))
	own.Name = "own"
	own.ErrorPages = []route.ErrorPage{{Code: 502, Source: file502}}
	f := newFixture(t, Config{Now: c.Now}, table(dead, down, bad, own))

	get := func(host string) (*http.Response, string) {
		res := f.do(t, f.newRequest(t, "GET", host, "/", nil))
		return res, readAll(t, res.Body)
	}
	res, body := get("dead.test")
	if res.StatusCode != 502 || body != "<h1>we are fixing it</h1>" || res.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		res.Header.Get("X-Route") != "r" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("502 page: %d %v %q", res.StatusCode, res.Header, body)
	}
	replaceFile(t, file502, "<h1>almost there</h1>")
	c.Add(filePollInterval)
	if _, body := get("dead.test"); body != "<h1>almost there</h1>" {
		t.Fatalf("the changed page was not read again: %q", body)
	}

	for i := range 3 {
		res, body := get("down.test")
		if res.StatusCode != 503 || res.Header.Get("Retry-After") != maintenanceRetryAfter || body != "<h1>maintenance until noon</h1>" {
			t.Fatalf("maintenance %d: %d %v %q", i, res.StatusCode, res.Header, body)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the page was fetched %d times, want once (kept %s)", n, pageKeep)
	}
	c.Add(pageKeep)
	get("down.test")
	if n := fetches.Load(); n != 2 {
		t.Fatalf("after %s the page was fetched %d times in all, want 2", pageKeep, n)
	}

	res, body = get("bad.test")
	if res.StatusCode != 503 || body != "Service Unavailable\n" || res.Header.Get("Retry-After") != maintenanceRetryAfter {
		t.Fatalf("a page that cannot be fetched: %d %q", res.StatusCode, body)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("a route in maintenance reached its upstream %d times", n)
	}

	res, body = get("own.test")
	if res.StatusCode != 502 || body != "the upstream's own 502\n" {
		t.Fatalf("the upstream's 502 was replaced: %d %q", res.StatusCode, body)
	}
}

// TestNotFoundPage: Config.NotFoundPage answers requests no route serves,
// with 404; when it cannot be read, the plain text.
func TestNotFoundPage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "404.html")
	replaceFile(t, file, "<h1>nothing here</h1>")
	c := newClock()
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {})
	f := newFixture(t, Config{Now: c.Now, NotFoundPage: file}, table(testRoute("a.test", addrOf(t, up))))
	res := f.do(t, f.newRequest(t, "GET", "other.test", "/", nil))
	if body := readAll(t, res.Body); res.StatusCode != 404 || body != "<h1>nothing here</h1>" || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %v %q", res.StatusCode, res.Header, body)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	c.Add(filePollInterval)
	res = f.do(t, f.newRequest(t, "GET", "other.test", "/", nil))
	if body := readAll(t, res.Body); res.StatusCode != 404 || body != "Not Found\n" {
		t.Fatalf("without the file: %d %q", res.StatusCode, body)
	}
}
